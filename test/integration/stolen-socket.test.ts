/**
 * A filesystem endpoint's socket file taken over behind the primary's back: another process (a
 * Python script here, not Node and not the library) unlinks the path and binds its own socket
 * there, ignoring the path lock. New subscribers would reach it, not the primary. The primary
 * must notice within a heartbeatInterval and say so everywhere: an `endpointStolen` event, its
 * status(), its heartbeats (so `failover-watch watch` shows it) and `run --health`'s /healthz.
 * Real sockets and processes; every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { unlinkSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { CliProcesses } from '../../harness/cli-process.js';
import { tempWorkdir } from '../../harness/cluster.js';
import { Watcher, type EndpointStolenEvent } from '../../src/index.js';

const cli = new CliProcesses();
/** Intruders (python3), stopped by pid. */
const intruders: ChildProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  await cli.stopAll();
  for (const child of intruders.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid, 'SIGKILL');
      await exited;
    }
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

const wallNow = (): number => performance.timeOrigin + performance.now();

/**
 * The intruder: unlinks PATH, binds and listens on a unix socket of its own there, prints
 * `stolen <inode>` and stays until its stdin closes or it is signalled. Resolves with the wall
 * time at which this process read that line (after the theft, so elapsed times measured from it
 * are, if anything, too short).
 */
function steal(path: string): Promise<{ at: number; ino: string }> {
  const script = [
    'import os, socket, sys',
    'path = sys.argv[1]',
    'os.unlink(path)',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
    's.bind(path)',
    's.listen(8)',
    "print('stolen', os.lstat(path).st_ino, flush=True)",
    'sys.stdin.read()',
  ].join('\n');
  const child = spawn('python3', ['-c', script, path], { stdio: ['pipe', 'pipe', 'pipe'] });
  intruders.push(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the intruder did not report within 20 s: ${stderr}`)), 20_000);
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const m = /^stolen (\d+)\n/.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ at: wallNow(), ino: m[1] as string });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the intruder exited (${code}): ${stderr}`));
    });
  });
}

/** Collects a watcher's `endpointStolen` events from now on, so none is missed. */
function collect(watcher: Watcher): EndpointStolenEvent[] {
  const events: EndpointStolenEvent[] = [];
  watcher.on('endpointStolen', (e) => void events.push(e));
  return events;
}

async function until<T>(probe: () => Promise<T | undefined>, timeout: number, what: string): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a stolen filesystem socket', () => {
  it('is reported within heartbeatInterval; primary keeps role', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const path = `${work.path}/x.sock`;
    const heartbeatInterval = 500;
    const errors: string[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (m: string) => void errors.push(m) };
    const primary = new Watcher({ endpoint: `ipc://${path}`, workdir: work.path, role: 'primary', heartbeatInterval, heartbeatTimeout: 2000, logger });
    cleanups.unshift(() => primary.shutdown());
    await primary.start();
    expect(primary.status().endpointStolen).toBeUndefined();
    // One heartbeat tick at least, so the file's identity has been noted.
    await until(async () => (primary.status().heartbeatsSent >= 2 ? true : undefined), 5000, 'two heartbeats');

    const events = collect(primary);
    const theft = await steal(path);
    // Bounded from the theft on (the intruder's own start may take seconds on a loaded host).
    const event = await until(async () => events[0], 5000, 'endpointStolen');
    // Noticed at the next heartbeat tick: within one interval of the theft (plus scheduling slack
    // on a loaded machine; the theft is stamped late, when its report was read here).
    expect(event.at - theft.at).toBeLessThan(heartbeatInterval * 1.5);
    expect(event).toMatchObject({ endpoint: `ipc://${path}`, path, found: 'replaced' });
    expect(event.detail).toContain(`inode ${theft.ino}`);
    expect(errors.filter((m) => m.includes('socket file'))).toHaveLength(1);
    const st = primary.status();
    expect(st.role).toBe('primary');
    expect(st.endpointStolen).toMatchObject({ path, found: 'replaced' });
    expect(primary.formatStatus()).toContain('ENDPOINT STOLEN');
    await primary.shutdown();
    // Reported until the endpoint is given up, not after.
    expect(primary.status().endpointStolen).toBeUndefined();
  }, 60_000);

  it('an unlinked socket file is reported as gone', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const path = `${work.path}/x.sock`;
    const primary = new Watcher({ endpoint: `ipc://${path}`, workdir: work.path, role: 'primary', heartbeatInterval: 100, heartbeatTimeout: 1000 });
    cleanups.unshift(() => primary.shutdown());
    await primary.start();
    await until(async () => (primary.status().heartbeatsSent >= 2 ? true : undefined), 5000, 'two heartbeats');
    const events = collect(primary);
    unlinkSync(path);
    expect(await until(async () => events[0], 5000, 'endpointStolen')).toMatchObject({ path, found: 'gone' });
    expect(primary.status()).toMatchObject({ role: 'primary', endpointStolen: { found: 'gone' } });
  });

  it('shows in run --health (/healthz 503, /status) and in watch', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const path = `${work.path}/x.sock`;
    const endpoint = `ipc://${path}`;
    const run = cli.spawn([
      'run', '--endpoint', endpoint, '--id', 'a', '--workdir', work.path, '--interval', '200', '--timeout', '2000',
      '--json', '--health', '127.0.0.1:0', '--', process.execPath, '-e', 'setInterval(() => {}, 1000)',
    ]);
    // Started together (each CLI process takes seconds to start on a loaded host); the watch
    // connects once the endpoint is bound. A watch connected before the theft keeps its
    // connection to the real primary.
    const watch = cli.spawn(['watch', '--endpoint', endpoint, '--json']);
    const port = (await run.waitFor((e) => e.event === 'healthListening', 30_000)).port as number;
    await run.waitFor((e) => e.event === 'roleChanged' && e.to === 'primary', 30_000);
    const healthz = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      return { status: res.status, text: await res.text() };
    };
    await until(async () => ((await healthz()).status === 200 ? true : undefined), 5000, '/healthz 200');
    await watch.waitFor((e) => e.event === 'heartbeat' && e.instanceId === 'a', 30_000);

    await steal(path);
    const seen = await watch.waitFor((e) => e.event === 'endpointStolen', 5000);
    expect(seen).toMatchObject({ instanceId: 'a', found: 'replaced' });
    const unhealthy = await until(async () => {
      const h = await healthz();
      return h.status === 503 ? h : undefined;
    }, 5000, '/healthz 503');
    expect(unhealthy.text).toContain('endpoint stolen');
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ role: 'primary', endpointStolen: { path, found: 'replaced' } });
    expect(await run.waitFor((e) => e.event === 'endpointStolen', 1000)).toMatchObject({ path, found: 'replaced' });
    await until(async () => (run.stderr.includes("error: the endpoint's socket file was taken") ? true : undefined), 5000, 'the error line on stderr');
  }, 90_000);
});
