/**
 * The parent side of {@link ./watcher-node.ts}: spawn watcher processes, wait for their events
 * with bounded timeouts, kill them by pid. Used by integration tests, benchmarks and chaos.
 *
 * @module
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childArgs, hostNow, ROOT } from './child-runtime.js';
import { spawnAs, type OsUser } from './os-users.js';
import type { Command, NodeConfig } from './watcher-node.js';

const CHILD = fileURLToPath(new URL('./watcher-node.ts', import.meta.url));

/** An event reported by a child. */
export interface NodeEvent {
  readonly type: string;
  readonly at: number;
  readonly [key: string]: unknown;
}

/** Now, on the run's one host clock, which the children's reports use too (child-runtime.ts). */
export const wallNow = hostNow;

/** Another account to run a watcher process as, with a directory it owns for HOME and TMPDIR. */
export interface RunAs {
  readonly user: OsUser;
  readonly home: string;
}

/** One watcher process. */
export class WatcherProcess {
  readonly config: NodeConfig;
  readonly child: ChildProcess;
  readonly events: NodeEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  #waiters = new Set<{ pred: (e: NodeEvent) => boolean; resolve: (e: NodeEvent) => void }>();
  #exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #sigkilled = false;

  /** `runAs`: start it under another account (two-user tests; see os-users.ts). */
  constructor(config: NodeConfig, runAs?: RunAs) {
    this.config = config;
    const args = [...childArgs(CHILD), JSON.stringify(config)];
    const options: SpawnOptions = { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] };
    this.child =
      runAs === undefined
        ? spawn(process.execPath, args, options)
        : spawnAs(runAs.user, process.execPath, args, { ...options, home: runAs.home, env: { ...process.env, TMPDIR: runAs.home } });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < 200_000) this.stderr += chunk;
    });
    this.child.on('message', (raw) => {
      const event = raw as NodeEvent;
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
    return this.config.instanceId;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /**
   * False once it exited, or once this harness sent it SIGKILL: the kernel may take a few ms to
   * tear it down (and the parent to hear of it), but it runs no more code from the kill on.
   */
  get alive(): boolean {
    return this.#exitInfo === undefined && !this.#sigkilled;
  }

  /** Resolves with the first event (already received or future) matching `pred`; rejects after `timeout` ms. */
  waitFor(pred: (e: NodeEvent) => boolean, timeout: number, what = 'event'): Promise<NodeEvent> {
    const seen = this.events.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return this.#wait(pred, timeout, what);
  }

  /** Like waitFor, but only events arriving from now on. */
  next(pred: (e: NodeEvent) => boolean, timeout: number, what = 'event'): Promise<NodeEvent> {
    return this.#wait(pred, timeout, what);
  }

  #wait(pred: (e: NodeEvent) => boolean, timeout: number, what: string): Promise<NodeEvent> {
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (e: NodeEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(
          new Error(
            `${this.id}: no ${what} within ${timeout} ms; events: ${this.events.map((e) => e.type).join(',')}; stderr: ${this.stderr.slice(-2000)}`,
          ),
        );
      }, timeout);
      this.#waiters.add(waiter);
    });
  }

  send(command: Command): void {
    // With a callback, a send that races the child's exit (EPIPE) is dropped, not thrown.
    if (this.child.connected) this.child.send(command, () => undefined);
  }

  /** Sends a signal to this child only (by its own pid). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.#exitInfo !== undefined || this.child.pid === undefined) return;
    process.kill(this.child.pid, signal);
    if (signal === 'SIGKILL') this.#sigkilled = true;
  }

  /** Asks for a graceful shutdown and waits for the process to end (kills it after `timeout`). */
  async stop(timeout = 5000): Promise<void> {
    if (!this.alive) return;
    this.send({ cmd: 'shutdown' });
    const timer = setTimeout(() => this.kill('SIGKILL'), timeout);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A free tcp port on 127.0.0.1 (bound to port 0, read back and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A unique abstract ipc endpoint. */
export function uniqueIpc(prefix = 'fw'): string {
  return `ipc://@${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A fresh private work directory; `cleanup()` removes it. */
export function tempWorkdir(prefix = 'fw-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Starts nodes; remembers them so `stopAll()` can end every one it started. */
export class Cluster {
  readonly nodes: WatcherProcess[] = [];

  spawn(config: NodeConfig): WatcherProcess {
    const node = new WatcherProcess(config);
    this.nodes.push(node);
    return node;
  }

  /** Kills every process this cluster started that is still alive (by pid) and waits for them. */
  async stopAll(): Promise<void> {
    for (const node of this.nodes) node.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.exited));
  }

  /** The nodes whose latest roleChanged says primary. */
  primaries(): WatcherProcess[] {
    return this.nodes.filter((n) => {
      if (!n.alive) return false;
      const last = [...n.events].reverse().find((e) => e.type === 'roleChanged');
      return last?.to === 'primary';
    });
  }
}

/** Waits for a node's `ready` (process start under load, tsx included, takes a while). */
export const waitReady = (n: WatcherProcess, timeout = 20_000): Promise<NodeEvent> =>
  n.waitFor((e) => e.type === 'ready', timeout, 'ready');

/** Waits for a node's (first) change to primary, optionally of a given epoch. */
export const waitPrimary = (n: WatcherProcess, timeout = 5000, epoch?: number): Promise<NodeEvent> =>
  n.waitFor(
    (e) => e.type === 'roleChanged' && e.to === 'primary' && (epoch === undefined || e.epoch === epoch),
    timeout,
    'roleChanged to primary',
  );

/** Waits until a node follows the primary `id`. */
export const waitFollows = (n: WatcherProcess, id: string, timeout = 5000): Promise<NodeEvent> =>
  n.waitFor((e) => e.type === 'primaryChanged' && e.instanceId === id, timeout, `primaryChanged to ${id}`);
