/**
 * The real CLI (`node bin/failover-watch.js`, each run its own OS process) against a real
 * primary: a Watcher in this process on a unique endpoint. Every wait is bounded and driven by
 * the child's output or exit; only processes this file started are killed, by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { commands } from '../../src/cli/commands/index.js';
import { Watcher } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'failover-watch.js');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
/** Bound on one CLI process start and run (tsx compiles the sources on first use). */
const PROCESS_TIMEOUT = 20_000;

const started: ChildProcess[] = [];
const watchers: Watcher[] = [];
const workdirs: string[] = [];

afterEach(async () => {
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }
  await Promise.all(watchers.splice(0).map((w) => w.shutdown()));
  for (const dir of workdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A tcp endpoint on a port that was free a moment ago. */
async function freeTcpEndpoint(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no tcp port');
  return `tcp://127.0.0.1:${address.port}`;
}

function uniqueIpc(): string {
  return `ipc://@fw-cli-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

/** A started primary on `endpoint`, shut down after the test. */
async function startPrimary(endpoint: string, instanceId: string): Promise<Watcher> {
  const workdir = mkdtempSync(join(tmpdir(), 'fw-cli-test-'));
  workdirs.push(workdir);
  const watcher = new Watcher({ endpoint, role: 'primary', instanceId, heartbeatInterval: 50, heartbeatTimeout: 200, workdir });
  watchers.push(watcher);
  await watcher.start();
  return watcher;
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One CLI process: its stdout as lines, its stderr, and its exit. */
class Cli {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  readonly #waiters = new Set<() => void>();

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    started.push(this.child);
    let partial = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      partial += chunk;
      const complete = partial.split('\n');
      partial = complete.pop() ?? '';
      this.lines.push(...complete);
      this.#wake();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise<Exit>((resolve) => {
      this.child.once('close', (code, signal) => {
        resolve({ code, signal });
        this.#wake();
      });
    });
  }

  #wake(): void {
    for (const waiter of this.#waiters) waiter();
  }

  /** Resolves with the first stdout line (from `from` on) that satisfies `predicate`; rejects at the timeout or exit. */
  waitForLine(predicate: (line: string) => boolean, timeout: number, what: string, from = 0): Promise<{ line: string; index: number }> {
    return new Promise((resolve, reject) => {
      let done = false;
      const check = (): void => {
        if (done) return;
        const index = this.lines.findIndex((line, i) => i >= from && predicate(line));
        if (index !== -1) {
          finish();
          resolve({ line: this.lines[index] as string, index });
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          finish();
          reject(new Error(`${what}: the CLI exited first (${this.child.exitCode ?? this.child.signalCode}); stdout=${this.stdout} stderr=${this.stderr}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${what}: not within ${timeout} ms; stdout=${this.stdout} stderr=${this.stderr}`));
      }, timeout);
      const finish = (): void => {
        done = true;
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves with the exit; rejects if it takes longer than `timeout`. */
  waitForExit(timeout: number): Promise<Exit> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      this.exited.finally(() => clearTimeout(timer)),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the CLI did not exit within ${timeout} ms; stdout=${this.stdout} stderr=${this.stderr}`)), timeout);
      }),
    ]);
  }
}

/** Runs the CLI to completion. */
async function runCli(args: readonly string[], timeout = PROCESS_TIMEOUT): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = new Cli(args);
  const exit = await cli.waitForExit(timeout);
  return { ...exit, stdout: cli.stdout, stderr: cli.stderr };
}

describe('failover-watch status', () => {
  it('exits 0 and names the primary when one is heartbeating', async () => {
    const endpoint = await freeTcpEndpoint();
    await startPrimary(endpoint, 'cli-primary-1');
    const r = await runCli(['status', '--endpoint', endpoint]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^primary cli-primary-1 \(pid \d+ on .+\), epoch \d+, seq \d+, heartbeat every 50 ms\n$/);
    expect(r.stdout).toContain(`(pid ${process.pid} on `);
  });

  it('prints one JSON object with the primary instanceId and epoch with --json', async () => {
    const endpoint = uniqueIpc();
    const primary = await startPrimary(endpoint, 'cli-primary-json');
    const r = await runCli(['status', '-e', endpoint, '--json']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0] as string) as Record<string, unknown>;
    expect(parsed).toMatchObject({ ok: true, instanceId: 'cli-primary-json', epoch: primary.epoch, pid: process.pid, heartbeatInterval: 50, endpoint });
  });

  it('exits 1 when no primary heartbeats within --timeout', async () => {
    const endpoint = await freeTcpEndpoint();
    const r = await runCli(['status', '--endpoint', endpoint, '--timeout', '300']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`no primary heartbeat on ${endpoint} within 300 ms\n`);
    expect(r.stderr).toBe('');
  });

  it.each([
    [['status', '--endpoint', 'localhost:5555'], 'option --endpoint expects'],
    [['status', '--endpoint', 'tcp://127.0.0.1:70000'], 'option --endpoint expects a tcp port'],
    [['status', '--endpoint', 'ipc://@x', '--bogus'], 'unknown option --bogus'],
    [['status', '--endpoint', 'ipc://@x', '--timeout', 'soon'], 'option --timeout expects a whole number'],
    [['status'], 'give exactly one backend: --endpoint E, --redis URL, --etcd URL or --postgres URL'],
  ])('%j exits 2 with one line on stderr', async (args, what) => {
    const r = await runCli(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^failover-watch: [^\n]+; see --help\n$/);
    expect(r.stderr).toContain(what);
  });
});

describe('failover-watch watch', () => {
  it('prints heartbeats as JSON lines, then the shutdown of the primary, and exits 0 at --timeout', async () => {
    const endpoint = await freeTcpEndpoint();
    const primary = await startPrimary(endpoint, 'cli-primary-watch');
    const epoch = primary.epoch;
    const cli = new Cli(['watch', '--endpoint', endpoint, '--json', '--timeout', '600']);

    const isEvent = (event: string) => (line: string) => (JSON.parse(line) as { event: string }).event === event;
    const first = await cli.waitForLine(isEvent('heartbeat'), PROCESS_TIMEOUT, 'first heartbeat line');
    await primary.shutdown();
    const shutdown = await cli.waitForLine(isEvent('shutdown'), 5000, 'shutdown line', first.index);
    const exit = await cli.waitForExit(5000);

    expect(exit).toEqual({ code: 0, signal: null });
    expect(cli.stderr).toBe('');
    const events = cli.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const heartbeats = events.filter((e) => e.event === 'heartbeat');
    expect(heartbeats.length).toBeGreaterThan(0);
    for (const e of heartbeats) {
      expect(e).toMatchObject({ instanceId: 'cli-primary-watch', epoch, pid: process.pid, heartbeatInterval: 50 });
      expect(typeof e.seq).toBe('number');
      expect(typeof e.host).toBe('string');
      expect(Math.abs((e.at as number) - Date.now())).toBeLessThan(60_000);
    }
    expect(JSON.parse(shutdown.line)).toMatchObject({ event: 'shutdown', instanceId: 'cli-primary-watch', epoch, pid: process.pid });
    // Sequence numbers of one process only grow.
    const seqs = events.filter((e) => e.instanceId === 'cli-primary-watch').map((e) => e.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('prints one plain line per event without --json and exits 0 on SIGTERM', async () => {
    const endpoint = uniqueIpc();
    await startPrimary(endpoint, 'cli-primary-plain');
    const cli = new Cli(['watch', '-e', endpoint]);
    await cli.waitForLine((l) => l.includes(' heartbeat cli-primary-plain epoch '), PROCESS_TIMEOUT, 'plain heartbeat line');
    process.kill(cli.child.pid!, 'SIGTERM');
    expect(await cli.waitForExit(5000)).toEqual({ code: 0, signal: null });
    expect(cli.lines.filter((l) => l !== '').every((l) => /^\d{4}-\d\d-\d\dT[\d:.]+Z \w+ /.test(l))).toBe(true);
    expect(cli.stderr).toBe(`failover-watch: watching ${endpoint}; Ctrl-C to stop\n`);
  });

  it('exits 2 with one line on an unknown flag', async () => {
    const r = await runCli(['watch', '--endpoint', 'ipc://@x', '--follow']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('failover-watch: unknown option --follow for watch; see --help\n');
  });
});

describe('failover-watch --help and --version', () => {
  it("--version prints package.json's version", async () => {
    const r = await runCli(['--version']);
    expect(r).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  const helpRuns = [['--help'], ...commands.map((c) => [c.name, '--help']), ...commands.map((c) => ['help', c.name])];
  it.each(helpRuns.map((args) => ({ args, title: args.join(' ') })))(
    'failover-watch $title exits 0 with a usage line',
    async ({ args }) => {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^Usage: failover-watch/);
      expect(r.stdout).toContain('Exit codes:');
    },
  );
});
