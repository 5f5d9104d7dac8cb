/**
 * The failover-watch CLI as child processes for integration tests: stdout parsed as JSON lines
 * as they come (`--json`), stderr kept, bounded waits for an event, and a stop of every process
 * started (SIGTERM, so `run` stops its command, then SIGKILL after 5 s; by pid).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT } from './child-runtime.js';

const BIN = 'bin/failover-watch.js';

/** One JSON line of the CLI's stdout. */
export interface CliEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

/** One CLI process. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly events: CliEvent[] = [];
  /** Lines of stdout that were not JSON. */
  readonly nonJson: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #stderr = '';
  #waiters = new Set<{ pred: (e: CliEvent) => boolean; resolve: (e: CliEvent) => void }>();

  /** `bin`: the shim to run (default the checkout's `bin/failover-watch.js`, which runs src/ through tsx). */
  constructor(args: readonly string[], bin: string = BIN) {
    this.child = spawn(process.execPath, [bin, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        let event: CliEvent;
        try {
          event = JSON.parse(line) as CliEvent;
        } catch {
          this.nonJson.push(line);
          continue;
        }
        this.events.push(event);
        for (const w of this.#waiters) if (w.pred(event)) (this.#waiters.delete(w), w.resolve(event));
      }
    });
    this.child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      if (this.#stderr.length < 200_000) this.#stderr += c;
    });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** The first event (already seen, or to come) that matches; rejects after `timeout` ms. */
  waitFor(pred: (e: CliEvent) => boolean, timeout: number, what = 'event'): Promise<CliEvent> {
    const seen = this.events.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`no ${what} within ${timeout} ms; events: ${this.events.map((e) => e.event).join(',')}; stderr: ${this.#stderr.slice(-1500)}`));
      }, timeout);
      const waiter = { pred, resolve: (e: CliEvent) => (clearTimeout(timer), resolve(e)) };
      this.#waiters.add(waiter);
    });
  }
}

/** Starts CLI processes and remembers them, so that `stopAll()` ends every one still running. */
export class CliProcesses {
  readonly #started: CliProcess[] = [];

  spawn(args: readonly string[], bin?: string): CliProcess {
    const p = new CliProcess(args, bin);
    this.#started.push(p);
    return p;
  }

  /** SIGTERM to each process still running (by pid), SIGKILL after 5 s; resolves once all exited. */
  async stopAll(): Promise<void> {
    const exits: Array<Promise<unknown>> = [];
    for (const p of this.#started.splice(0)) {
      const { child } = p;
      if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) continue;
      const pid = child.pid;
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000);
      exits.push(p.exited.finally(() => clearTimeout(timer)));
      process.kill(pid, 'SIGTERM');
    }
    await Promise.all(exits);
  }
}

/** What a CLI run ended with. */
export interface CliExit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to its exit, bounded by `timeout` ms (then SIGKILLed by pid and rejected). */
export function runCli(args: readonly string[], timeout = 20_000): Promise<CliExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      reject(new Error(`failover-watch ${args.join(' ')} did not exit within ${timeout} ms; stderr: ${stderr}`));
    }, timeout);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
