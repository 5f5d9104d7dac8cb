/**
 * The supervised command and the hook commands of `failover-watch run`.
 *
 * The command runs as one unit: it is started as the leader of its own session and process group,
 * so everything it forks (a shell script's commands, `sh -c 'a & b; wait'`, an npm script's
 * children) is in that group. Stopping it signals the whole group: SIGTERM, then SIGKILL after
 * `stopTimeout`. The command has ended when its leader has exited and no member of the group runs
 * any more; when the leader exits on its own, members it left behind are stopped the same way (as
 * systemd does with a service's leftover processes). A process that leaves the group on purpose
 * (`setsid`, a daemon that detaches) is no longer part of the unit.
 *
 * The command starts behind a gate: `/bin/sh` is spawned first, as the group's leader, and waits
 * on a pipe from the supervisor before it `exec`s the command (same pid, same group). The
 * supervisor opens the gate ({@link SupervisedChild.release}) only after the guardian guards the
 * group and the unit record names it; if the supervisor dies before, the gate reads end-of-file and
 * exits, and the command never runs. So no instant exists where the command runs unguarded.
 *
 * Where util-linux `setpriv` is installed, the leader also has SIGKILL as its parent-death signal:
 * it dies with run's main thread even if the guardian is gone too (its forks are the guardian's
 * and the successor's business).
 *
 * Only groups started here are signalled, by their number.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { procStartOf } from '../../runtime/process-identity.js';
import { signalGroup, waitGroupEmpty, withParentDeathSignal, type GroupIdentity } from './process-group.js';

/** How a child ended. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Members of the group still running after SIGKILL and {@link KILL_WAIT} (none, normally). */
  readonly lingering: readonly number[];
}

export interface ChildOptions {
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Send the child's stdout to our stderr (so that stdout carries only JSON lines). */
  readonly stdoutToStderr: boolean;
  readonly stopTimeout: number;
  /** Called once the unit is over (leader exited, group empty or given up on), before `exited` resolves. */
  readonly onEnd?: (exit: ChildExit, group: GroupIdentity) => void;
}

/** How long the group may take to be empty after SIGKILL before the stop gives up on it, ms. */
export const KILL_WAIT = 2000;

/** The gate: wait for "go" on fd 3, close it, become the command. Exit 125 if the supervisor went away. */
const GATE = 'IFS= read -r go <&3 && [ "$go" = go ] || exit 125; exec 3<&-; exec "$@"';

/** One run of the supervised command. */
export class SupervisedChild {
  readonly process: ChildProcess;
  /** The unit: the process group the command leads. */
  readonly group: GroupIdentity;
  /** Resolves once the leader has exited and no member of its group runs. */
  readonly exited: Promise<ChildExit>;
  #exit: ChildExit | undefined;
  #stopping = false;
  #killTimer: NodeJS.Timeout | undefined;
  #killed = false;
  readonly #stopTimeout: number;

  private constructor(child: ChildProcess, options: ChildOptions) {
    this.process = child;
    const pid = child.pid as number;
    this.group = { pgid: pid, leaderStart: procStartOf(pid) };
    this.#stopTimeout = options.stopTimeout;
    // A gate whose reader is gone fails writes with EPIPE: the exit is handled below.
    (child.stdio[3] as NodeJS.ReadWriteStream | null)?.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        void this.#drain().then((lingering) => {
          clearTimeout(this.#killTimer);
          this.#exit = { code, signal, lingering };
          options.onEnd?.(this.#exit, this.group);
          resolve(this.#exit);
        });
      });
    });
  }

  /**
   * Spawns the gate as the leader of a new session; resolves once it runs (the command itself
   * waits for {@link release}), rejects if the command cannot be found or the gate cannot start.
   */
  static async start(options: ChildOptions): Promise<SupervisedChild> {
    findExecutable(options.command, options.env.PATH);
    // With setpriv, the leader also gets SIGKILL the moment run's main thread dies.
    const [file, ...argv] = withParentDeathSignal('KILL', ['/bin/sh', '-c', GATE, 'failover-watch', options.command, ...options.args]);
    const child = spawn(file as string, argv, {
      env: options.env,
      detached: true,
      stdio: ['inherit', options.stdoutToStderr ? 'pipe' : 'inherit', 'inherit', 'pipe'],
    });
    if (options.stdoutToStderr) child.stdout?.pipe(process.stderr, { end: false });
    return await new Promise((resolve, reject) => {
      child.once('spawn', () => resolve(new SupervisedChild(child, options)));
      child.once('error', (error) => reject(error));
    });
  }

  /** Opens the gate: the command runs from now on. */
  release(): void {
    this.#gate()?.end('go\n');
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

  /** SIGTERM to the group, then SIGKILL after `timeout` ms; resolves when the unit is over. */
  async stop(timeout: number): Promise<ChildExit> {
    this.#stopping = true;
    if (this.#exit !== undefined) return this.#exit;
    // A gate never opened: its end-of-file makes it exit without running the command.
    this.#gate()?.destroy();
    this.#terminate(timeout);
    return this.exited;
  }

  #gate(): (NodeJS.WritableStream & { destroy(): void }) | undefined {
    return (this.process.stdio[3] as (NodeJS.WritableStream & { destroy(): void }) | null) ?? undefined;
  }

  #terminate(timeout: number): void {
    if (this.#killTimer !== undefined || this.#killed) return;
    signalGroup(this.group.pgid, 'SIGTERM');
    this.#killTimer = setTimeout(() => this.#kill(), timeout);
  }

  #kill(): void {
    this.#killed = true;
    signalGroup(this.group.pgid, 'SIGKILL');
  }

  /** After the leader exited: what is left of the group stops too (SIGTERM, SIGKILL after stopTimeout). */
  async #drain(): Promise<readonly number[]> {
    let left = await waitGroupEmpty(this.group, 0);
    if (left.length === 0) return left;
    this.#terminate(this.#stopTimeout);
    for (;;) {
      // Until SIGKILL went out (stop timeout), then at most KILL_WAIT more.
      left = await waitGroupEmpty(this.group, this.#killed ? KILL_WAIT : 50);
      if (left.length === 0 || this.#killed) return left;
    }
  }
}

/**
 * Throws like spawn() would (ENOENT, EACCES) when `command` is not an executable file, on PATH or
 * as a path: the gate would otherwise start and exit 127, a command that "ran".
 */
export function findExecutable(command: string, path: string | undefined): string {
  const candidates = command.includes('/')
    ? [resolve(command)]
    : (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).map((dir) => (isAbsolute(dir) ? join(dir, command) : resolve(dir, command)));
  let denied = false;
  for (const file of candidates) {
    try {
      if (!statSync(file).isFile()) continue;
      accessSync(file, constants.X_OK);
      return file;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EACCES') denied = true;
    }
  }
  const code = denied ? 'EACCES' : 'ENOENT';
  throw Object.assign(new Error(`spawn ${command} ${code}`), { code, errno: code, path: command, syscall: `spawn ${command}` });
}

/**
 * Runs a hook command through the shell (like keepalived's notify scripts) with the given
 * environment; its output goes to stderr. Resolves with its exit code; killed after `timeout`.
 */
export function runHook(command: string, env: NodeJS.ProcessEnv, timeout: number): Promise<Omit<ChildExit, 'lingering'> & { error?: string }> {
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
