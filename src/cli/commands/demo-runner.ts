/**
 * `failover-watch demo`: a 3-node cluster on a private local endpoint, each node its own
 * process; shows the cluster live, crashes the primary (SIGKILL), restarts it, then stops the
 * next primary gracefully, and prints each takeover with its measured latency. Ends by itself.
 *
 * Every wait is bounded; only the processes the demo started are signalled, by pid.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WatcherStatus } from '../../watcher.js';

/** What the demo writes to. */
export interface DemoIo {
  out(text: string): void;
  err(text: string): void;
  readonly isTTY: boolean;
  readonly color: boolean;
}

export interface DemoOptions {
  readonly json: boolean;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
}

/** One takeover the demo measured. */
export interface Takeover {
  readonly cause: 'crash' | 'graceful';
  readonly from: string;
  readonly to: string;
  readonly epoch: number;
  readonly reason: string;
  readonly latencyMs: number;
}

interface Message {
  readonly type: string;
  readonly at: number;
  readonly [key: string]: unknown;
}

const wall = (): number => performance.timeOrigin + performance.now();

class DemoNode {
  readonly id: string;
  readonly child: ChildProcess;
  status: WatcherStatus | undefined;
  exited = false;
  readonly #listeners = new Set<(m: Message) => void>();

  constructor(id: string, config: object) {
    this.id = id;
    const self = fileURLToPath(import.meta.url);
    const fromSource = self.endsWith('.ts');
    const entry = fileURLToPath(new URL(`../demo-node.${fromSource ? 'ts' : 'js'}`, import.meta.url));
    const execArgv = fromSource ? ['--import', import.meta.resolve('tsx')] : [];
    this.child = spawn(process.execPath, [...execArgv, entry, JSON.stringify({ ...config, instanceId: id })], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    this.child.on('message', (raw) => {
      const m = raw as Message;
      if (m.type === 'status') this.status = m.status as WatcherStatus;
      for (const l of this.#listeners) l(m);
    });
    this.child.on('exit', () => {
      this.exited = true;
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** The first message matching `pred`, or undefined after `timeout` ms. */
  waitFor(pred: (m: Message) => boolean, timeout: number): Promise<Message | undefined> {
    return new Promise((resolve) => {
      const listener = (m: Message): void => {
        if (!pred(m)) return;
        done(m);
      };
      const timer = setTimeout(() => done(undefined), timeout);
      const done = (m: Message | undefined): void => {
        clearTimeout(timer);
        this.#listeners.delete(listener);
        resolve(m);
      };
      this.#listeners.add(listener);
    });
  }

  kill(signal: NodeJS.Signals): void {
    if (!this.exited && this.child.pid !== undefined) process.kill(this.child.pid, signal);
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    if (this.child.connected) this.child.send({ cmd: 'shutdown' });
    const timer = setTimeout(() => this.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  }
}

/** Runs the demo; resolves with the exit code. */
export async function runDemo(options: DemoOptions, io: DemoIo): Promise<number> {
  const started = wall();
  const workdir = mkdtempSync(join(tmpdir(), 'failover-watch-demo-'));
  const endpoint =
    process.platform === 'linux'
      ? `ipc://@failover-watch-demo-${process.pid}-${Math.random().toString(36).slice(2, 8)}`
      : `ipc://${join(workdir, 'cluster.sock')}`;
  const base = {
    endpoint,
    workdir,
    heartbeatInterval: options.heartbeatInterval,
    heartbeatTimeout: options.heartbeatTimeout,
  };
  const nodes: DemoNode[] = [];
  const log: string[] = [];
  const takeovers: Takeover[] = [];
  const c = (code: string, text: string): string => (io.color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const since = (): string => `+${((wall() - started) / 1000).toFixed(1)}s`;

  const emit = (event: Record<string, unknown>): void => {
    if (options.json) io.out(`${JSON.stringify({ ...event, at: wall() })}\n`);
  };
  const say = (line: string): void => {
    if (options.json) return;
    log.push(`${c('2', since())} ${line}`);
    if (!io.isTTY) io.out(`${log.at(-1)}\n`);
  };

  let drawn = 0;
  const draw = (): void => {
    if (options.json || !io.isTTY) return;
    const lines = [c('1', `failover-watch demo: 3 nodes on ${endpoint}`), '', ...table(nodes, c), '', ...log.slice(-8)];
    io.out(`${drawn > 0 ? `\u001b[${drawn}A` : ''}${lines.map((l) => `\u001b[2K${l}`).join('\n')}\n`);
    drawn = lines.length;
  };
  const ticker = io.isTTY && !options.json ? setInterval(draw, 150) : undefined;

  const add = async (id: string): Promise<DemoNode | undefined> => {
    const node = new DemoNode(id, base);
    nodes.push(node);
    const ready = await node.waitFor((m) => m.type === 'ready', 10_000);
    if (ready === undefined) return undefined;
    emit({ event: 'nodeStarted', instanceId: id, pid: node.pid, role: ready.role });
    say(`${id} started (pid ${node.pid}) as ${String(ready.role)}`);
    return node;
  };

  /** Waits for any live node but `except` to be promoted; the takeover and its latency. */
  const takeover = async (except: DemoNode, cause: Takeover['cause'], since: number): Promise<Takeover | undefined> => {
    const others = nodes.filter((n) => n !== except && !n.exited);
    const promoted = await Promise.race(
      others.map((n) => n.waitFor((m) => m.type === 'promote', 5000).then((m) => (m === undefined ? undefined : { n, m }))),
    );
    if (promoted === undefined) return undefined;
    const t: Takeover = {
      cause,
      from: except.id,
      to: promoted.n.id,
      epoch: promoted.m.epoch as number,
      reason: promoted.m.reason as string,
      latencyMs: Math.round(((promoted.m.promoteAt as number) - since) * 100) / 100,
    };
    takeovers.push(t);
    return t;
  };

  const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  let code = 0;
  try {
    emit({ event: 'started', endpoint, heartbeatInterval: base.heartbeatInterval, heartbeatTimeout: base.heartbeatTimeout });
    say(`cluster endpoint ${endpoint}; heartbeat every ${base.heartbeatInterval} ms, timeout ${base.heartbeatTimeout} ms`);
    const n1 = await add('n1');
    if ((await add('n2')) === undefined || (await add('n3')) === undefined || n1 === undefined) {
      throw new Error('a demo node did not start within 10 s');
    }
    await pause(1500); // let people look at the steady state

    say(c('31', `crashing the primary n1 (SIGKILL, pid ${n1.pid})`));
    const killAt = wall();
    n1.kill('SIGKILL');
    const t1 = await takeover(n1, 'crash', killAt);
    if (t1 === undefined) throw new Error('no takeover within 5 s of the crash');
    emit({ event: 'takeover', ...t1 });
    say(c('32', `${t1.to} took over in ${t1.latencyMs.toFixed(2)} ms (reason ${t1.reason}, epoch ${t1.epoch})`));

    await pause(1000);
    nodes.splice(nodes.indexOf(n1), 1);
    say('restarting n1: it joins as a secondary');
    if ((await add('n1')) === undefined) throw new Error('n1 did not restart within 10 s');
    await pause(1500);

    const primary = nodes.find((n) => n.status?.role === 'primary' && !n.exited);
    if (primary === undefined) throw new Error('no primary to stop');
    say(c('33', `stopping the primary ${primary.id} gracefully (shutdown)`));
    const stopAt = wall();
    const stopping = primary.stop();
    const t2 = await takeover(primary, 'graceful', stopAt);
    await stopping;
    if (t2 === undefined) throw new Error('no takeover within 5 s of the graceful stop');
    emit({ event: 'takeover', ...t2 });
    say(c('32', `${t2.to} took over in ${t2.latencyMs.toFixed(2)} ms (reason ${t2.reason}, epoch ${t2.epoch})`));
    await pause(1500);
  } catch (error) {
    code = 1;
    const message = error instanceof Error ? error.message : String(error);
    emit({ event: 'failed', message });
    io.err(`failover-watch demo: ${message}\n`);
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    draw();
    await Promise.all(nodes.map((n) => n.stop()));
    rmSync(workdir, { recursive: true, force: true });
  }
  emit({ event: 'summary', takeovers, ok: code === 0, durationMs: Math.round(wall() - started) });
  if (!options.json) {
    io.out('\n');
    for (const t of takeovers) {
      io.out(`${t.cause === 'crash' ? 'crash   ' : 'graceful'}  ${t.from} -> ${t.to}  ${t.latencyMs.toFixed(2)} ms  (${t.reason}, epoch ${t.epoch})\n`);
    }
    io.out(code === 0 ? 'demo finished: every node stopped, nothing left running.\n' : 'demo failed.\n');
  }
  return code;
}

function table(nodes: readonly DemoNode[], c: (code: string, text: string) => string): string[] {
  const rows = [['NODE', 'PID', 'ROLE', 'EPOCH', 'LAST HEARTBEAT']];
  for (const n of nodes) {
    const st = n.status;
    const role = n.exited ? 'gone' : (st?.role ?? 'starting');
    const age = n.exited ? '' : st?.role === 'primary' ? 'sending' : st?.primary ? `${Math.round(st.primary.ageMs)} ms ago` : '-';
    rows.push([n.id, String(n.pid), role, String(st?.epoch ?? '-'), age]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r, i) => {
    const line = r.map((cell, j) => cell.padEnd(widths[j]!)).join('  ');
    if (i === 0) return c('2', line);
    return r[2] === 'primary' ? c('1;32', line) : r[2] === 'gone' ? c('2', line) : line;
  });
}
