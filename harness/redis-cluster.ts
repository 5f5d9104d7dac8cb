/**
 * The parent side of {@link ./redis-node.ts}: spawn Redis election nodes as processes, wait for
 * their events with bounded timeouts, kill them by pid. Used by integration tests and benchmarks.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RedisNodeCommand, RedisNodeConfig } from './redis-node.js';

const CHILD = fileURLToPath(new URL('./redis-node.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** An event reported by a child. */
export interface RedisNodeEvent {
  readonly type: string;
  readonly at: number;
  readonly [key: string]: unknown;
}

export type EventPredicate = (e: RedisNodeEvent) => boolean;

/** One election node process. */
export class RedisNodeProcess {
  readonly config: RedisNodeConfig;
  readonly child: ChildProcess;
  readonly events: RedisNodeEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  #waiters = new Set<{ pred: EventPredicate; resolve: (e: RedisNodeEvent) => void }>();
  #exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  /**
   * `env` is added to this process's environment (e.g. `NODE_EXTRA_CA_CERTS`); `script` replaces
   * `redis-node.ts` by another child speaking the same protocol (`safe-redis-leader-node.ts`).
   */
  constructor(config: RedisNodeConfig, env: Readonly<Record<string, string>> = {}, script: string = CHILD) {
    this.config = config;
    this.child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(config)], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < 200_000) this.stderr += chunk;
    });
    this.child.on('message', (raw) => {
      const event = raw as RedisNodeEvent;
      this.events.push(event);
      for (const w of this.#waiters) {
        if (w.pred(event)) {
          this.#waiters.delete(w);
          w.resolve(event);
        }
      }
    });
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.#exitInfo = { code, signal };
        resolve({ code, signal });
      });
    });
  }

  get id(): string {
    return this.config.nodeId;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.#exitInfo === undefined;
  }

  /** Resolves with the first event (already received or future) matching `pred`; rejects after `timeout` ms. */
  waitFor(pred: EventPredicate, timeout: number, what = 'event'): Promise<RedisNodeEvent> {
    const seen = this.events.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return this.#wait(pred, timeout, what);
  }

  /** Like waitFor, but only events arriving from now on. */
  next(pred: EventPredicate, timeout: number, what = 'event'): Promise<RedisNodeEvent> {
    return this.#wait(pred, timeout, what);
  }

  #wait(pred: EventPredicate, timeout: number, what: string): Promise<RedisNodeEvent> {
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (e: RedisNodeEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(
          new Error(
            `${this.id}: no ${what} within ${timeout} ms; events: ${this.events.map((e) => `${e.type}${e.type === 'roleChanged' ? `:${String(e.to)}` : ''}`).join(',')}; stderr: ${this.stderr.slice(-2000)}`,
          ),
        );
      }, timeout);
      this.#waiters.add(waiter);
    });
  }

  send(command: RedisNodeCommand): void {
    if (this.child.connected) this.child.send(command);
  }

  /** Sends a command and waits for the reply event of the same type. */
  async ask(cmd: 'status' | 'liveNodes' | 'events' | 'stats', timeout = 5000): Promise<RedisNodeEvent> {
    const reply = this.next((e) => e.type === cmd, timeout, `${cmd} reply`);
    this.send({ cmd });
    return reply;
  }

  /** Sends a signal to this child only (by its own pid). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.alive && this.child.pid !== undefined) process.kill(this.child.pid, signal);
  }

  /** Asks for a graceful close and waits for the process to end (kills it after `timeout`). */
  async close(timeout = 5000): Promise<void> {
    if (!this.alive) return;
    this.send({ cmd: 'close' });
    const timer = setTimeout(() => this.kill('SIGKILL'), timeout);
    await this.exited;
    clearTimeout(timer);
  }

  /** The latest role this node reported (`starting` before any). */
  get role(): string {
    const last = [...this.events].reverse().find((e) => e.type === 'roleChanged');
    return typeof last?.to === 'string' ? last.to : 'starting';
  }
}

/** Starts nodes; remembers them so `stopAll()` can end every one it started. */
export class RedisNodes {
  readonly nodes: RedisNodeProcess[] = [];

  spawn(config: RedisNodeConfig, env?: Readonly<Record<string, string>>, script?: string): RedisNodeProcess {
    const node = new RedisNodeProcess(config, env, script);
    this.nodes.push(node);
    return node;
  }

  /** Kills every process this group started that is still alive (by pid) and waits for them. */
  async stopAll(): Promise<void> {
    for (const node of this.nodes) node.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.exited));
  }

  /** The live nodes whose latest roleChanged says primary. */
  primaries(): RedisNodeProcess[] {
    return this.nodes.filter((n) => n.alive && n.role === 'primary');
  }
}

/** A project name unique to this test run. */
export function uniqueProject(prefix = 'fw'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
