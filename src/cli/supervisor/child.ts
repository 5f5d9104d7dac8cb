/**
 * The supervised command and the hook commands of `failover-watch run`.
 *
 * The child is started only while this node is primary and stopped with SIGTERM, then SIGKILL
 * after `stopTimeout`. Only processes started here are signalled, by their own pid.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** How a child ended. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ChildOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Send the child's stdout to our stderr (so that stdout carries only JSON lines). */
  readonly stdoutToStderr: boolean;
  readonly stopTimeout: number;
}

/** One run of the supervised command. */
export class SupervisedChild {
  readonly process: ChildProcess;
  readonly exited: Promise<ChildExit>;
  #exit: ChildExit | undefined;
  #stopping = false;

  private constructor(child: ChildProcess) {
    this.process = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        resolve(this.#exit);
      });
    });
  }

  /** Starts the command; resolves once it is running, rejects if it cannot be started. */
  static start(options: ChildOptions): Promise<SupervisedChild> {
    const child = spawn(options.command, [...options.args], {
      env: options.env,
      stdio: ['inherit', options.stdoutToStderr ? 'pipe' : 'inherit', 'inherit'],
    });
    if (options.stdoutToStderr) child.stdout?.pipe(process.stderr, { end: false });
    return new Promise((resolve, reject) => {
      child.once('spawn', () => resolve(new SupervisedChild(child)));
      child.once('error', (error) => reject(error));
    });
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** True once `stop()` was called: its exit is not "on its own". */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** SIGTERM, then SIGKILL after `timeout` ms; resolves when it has exited. */
  async stop(timeout: number): Promise<ChildExit> {
    this.#stopping = true;
    if (this.#exit !== undefined) return this.#exit;
    this.#signal('SIGTERM');
    const timer = setTimeout(() => this.#signal('SIGKILL'), timeout);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  #signal(signal: NodeJS.Signals): void {
    if (this.#exit !== undefined || this.process.pid === undefined) return;
    try {
      process.kill(this.process.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Runs a hook command through the shell (like keepalived's notify scripts) with the given
 * environment; its output goes to stderr. Resolves with its exit code; killed after `timeout`.
 */
export function runHook(command: string, env: NodeJS.ProcessEnv, timeout: number): Promise<ChildExit & { error?: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, { shell: true, env, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout?.pipe(process.stderr, { end: false });
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    }, timeout);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, error: error.message });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}
