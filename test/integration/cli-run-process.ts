/**
 * The real `failover-watch` CLI as an OS process for the `run` tests: JSON lines from stdout are
 * parsed as they come, with a bounded waitFor. Every process started here is ended after each
 * test (SIGTERM, so `run` stops its command; SIGKILL if it hangs), then the registered cleanups run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach } from 'vitest';

export const BIN = 'bin/failover-watch.js';
export const started: ChildProcess[] = [];
export const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  const exits: Array<Promise<unknown>> = [];
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const pid = child.pid;
      // SIGTERM first, so `run` stops the command it started; SIGKILL if it hangs.
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000);
      exits.push(new Promise((r) => child.once('exit', r)).finally(() => clearTimeout(timer)));
      process.kill(pid, 'SIGTERM');
    }
  }
  // Their commands and state files live in the work directories: remove those only once they are gone.
  await Promise.all(exits);
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

export interface JsonEvent {
  readonly event: string;
  readonly [key: string]: unknown;
}

/** One CLI process; JSON lines from stdout are parsed as they come. */
export function cli(args: string[]) {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  const events: JsonEvent[] = [];
  const nonJson: string[] = [];
  const waiters = new Set<{ pred: (e: JsonEvent) => boolean; resolve: (e: JsonEvent) => void }>();
  let buffer = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      let event: JsonEvent;
      try {
        event = JSON.parse(line) as JsonEvent;
      } catch {
        nonJson.push(line);
        continue;
      }
      events.push(event);
      for (const w of waiters) if (w.pred(event)) (waiters.delete(w), w.resolve(event));
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  return {
    child,
    events,
    nonJson,
    exited,
    get stderr() {
      return stderr;
    },
    waitFor(pred: (e: JsonEvent) => boolean, timeout = 20_000, what = 'event'): Promise<JsonEvent> {
      const seen = events.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`no ${what} within ${timeout} ms; events: ${events.map((e) => e.event).join(',')}; stderr: ${stderr.slice(-1500)}`));
        }, timeout);
        const waiter = { pred, resolve: (e: JsonEvent) => (clearTimeout(timer), resolve(e)) };
        waiters.add(waiter);
      });
    },
    term(): void {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
    },
  };
}

export type CliProcess = ReturnType<typeof cli>;
export const isPrimary = (e: JsonEvent): boolean => e.event === 'roleChanged' && e.to === 'primary';
export const isSecondary = (e: JsonEvent): boolean => e.event === 'roleChanged' && e.to === 'secondary';
