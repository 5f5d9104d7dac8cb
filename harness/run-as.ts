/**
 * Runs one process under another account of the host (see `os-users.ts`) and collects what it
 * printed, bounded in time: the process is SIGKILLed by pid after `timeout` ms, so a test never
 * waits for ever on a process that hangs (which is what some attacks did).
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnAs, type OsUser } from './os-users.js';

/** How a process ended. */
export interface RunResult {
  /** Exit code, or null when a signal ended it. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from spawn to exit. */
  readonly ms: number;
  /** Whether it had to be killed after `timeout`. */
  readonly timedOut: boolean;
}

/** Waits for `child` to exit, SIGKILLing it (by pid) after `timeout` ms. */
export function collect(child: ChildProcess, timeout: number): Promise<RunResult> {
  const started = performance.now();
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    }, timeout);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started, timedOut });
    });
  });
}

/** Runs `command` as `user` with HOME `home` and TMPDIR `tmp`, and waits (bounded) for it to end. */
export function runAs(
  user: OsUser,
  command: string,
  args: readonly string[],
  options: { readonly home: string; readonly tmp: string; readonly cwd?: string; readonly timeout?: number },
): Promise<RunResult> {
  const child = spawnAs(user, command, args, {
    home: options.home,
    env: { ...process.env, TMPDIR: options.tmp },
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return collect(child, options.timeout ?? 30_000);
}

/**
 * A fresh directory shared by every user, mode 1777 and owned by root like `/tmp`, for tests
 * that point TMPDIR at it: they never touch the real temp directory's names.
 */
export function sharedTmpDir(prefix = 'fw-shared-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o1777);
  return dir;
}
