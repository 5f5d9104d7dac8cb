/**
 * The guardian: a tiny `/bin/sh` process that kills the supervised command's process group the
 * moment `failover-watch run` dies, however it dies (SIGKILL, the OOM killer, a crash of node).
 *
 * `run` starts it once, in its own session (so a signal to run's process group, such as a
 * terminal's Ctrl-C, does not reach it; it also ignores SIGHUP, SIGINT, SIGQUIT and SIGTERM), with
 * a pipe from `run` as its stdin, and tells it on that pipe which group to guard (`watch PGID
 * START`) and when that group is gone (`release PGID`). Only `run` holds the pipe's write end (it
 * is close-on-exec, so no other child inherits it): when `run` dies the kernel closes it, the
 * guardian reads end-of-file within microseconds and sends SIGKILL to the group it guards, if any,
 * then exits. A normal `run` releases the group once it is empty and closes the pipe, and the
 * guardian exits without signalling anything.
 *
 * It never signals a group that is not ours: if the group's leader pid exists with another start
 * time than the one it was given, the number was reused (Linux frees a group's number only once
 * the group is empty), and it does nothing.
 *
 * Where util-linux `setpriv` is installed, the guardian also has a parent-death signal (SIGURG): a
 * SIGKILLed `run` closes its pipe only once the last of its threads has exited, which takes tens
 * of milliseconds on a busy host, while the signal comes as soon as its main thread is gone.
 *
 * If the guardian itself dies while `run` lives, `run` starts a new one and hands it the group.
 * If both die at the same moment, nothing kills the group at once: the successor's fence on the
 * same host (see `unit-record.ts`) does, before it starts its command.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { findSetpriv, withParentDeathSignal, type GroupIdentity } from './process-group.js';

/**
 * The guardian's script (POSIX sh; builtins only on its path from run's death to the kill).
 * SIGURG is its parent-death signal (when setpriv is there): it comes when run's main thread dies,
 * before the rest of run's threads have exited and closed the pipe. A read it interrupts fails
 * like end-of-file, once; what run wrote before it died is still read first. SIGURG because its
 * default action is to be ignored: one that came before the trap was set would otherwise kill
 * the guardian. "ready" on stdout says the trap is set.
 */
export const GUARDIAN_SCRIPT = [
  ': failover-watch run guardian',
  "trap '' HUP INT QUIT TERM PIPE",
  'g= s= dead= failed=',
  'fire() {',
  '  [ -n "$g" ] || exit 0',
  // Field 22 of the leader's stat (after the command name's last ")"): its start time. A leader
  // already gone leaves the members, whose group number cannot have been reused.
  '  if [ -n "$s" ] && { read -r st; } 2>/dev/null </proc/"$g"/stat; then',
  '    set -- ${st##*) }',
  '    [ "${20}" = "$s" ] || exit 0',
  '  fi',
  '  kill -s KILL -- "-$g" 2>/dev/null',
  '  exit 0',
  '}',
  'trap dead=1 URG',
  'echo ready',
  'while :; do',
  '  if read -r op a b; then',
  '    case $op in',
  '      watch) g=$a s=$b ;;',
  '      release) [ "$a" = "$g" ] && g= s= ;;',
  '    esac',
  '  elif [ -z "$dead" ] || [ -n "$failed" ]; then',
  '    fire',
  '  else',
  '    failed=1',
  '  fi',
  '  [ -z "$dead" ] || [ -z "$g" ] || fire',
  'done',
].join('\n');

/** How long `start()` waits for the guardian's "ready", ms. */
const READY_TIMEOUT = 5000;

/** Resolves true once the guardian printed "ready" (its trap is set), false if it exited or took too long. */
function ready(child: ChildProcess): Promise<boolean> {
  return new Promise((resolve) => {
    let text = '';
    const done = (value: boolean): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      if (text.includes('ready\n')) done(true);
    };
    const onExit = (): void => done(false);
    const timer = setTimeout(() => done(false), READY_TIMEOUT);
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

/** How long `close()` waits for the guardian to exit after closing its pipe, ms. */
const CLOSE_TIMEOUT = 2000;

/** Least time between two starts of the guardian, ms (bounds a respawn loop). */
const RESPAWN_DELAY = 1000;

export class Guardian {
  #child: ChildProcess | undefined;
  #group: GroupIdentity | undefined;
  #closed = false;
  #lastStart = 0;
  #respawn: NodeJS.Timeout | undefined;
  #noted = false;
  readonly #note: (text: string) => void;

  /** `note` receives one line when the guardian is missing or restarted. */
  constructor(note: (text: string) => void) {
    this.#note = note;
  }

  /** The guardian's pid (undefined while none runs). */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the guardian; resolves once it runs (or with a note, if it cannot start). */
  async start(): Promise<void> {
    if (this.#closed || this.#child !== undefined) return;
    this.#lastStart = performance.now();
    if (findSetpriv() === undefined && process.platform === 'linux' && !this.#noted) {
      this.#noted = true;
      this.#note("setpriv (util-linux) not found: the guardian acts once all of run's threads are gone, not its main thread (slower on a busy host)");
    }
    const [file, ...args] = withParentDeathSignal('URG', ['/bin/sh', '-c', GUARDIAN_SCRIPT]);
    const child = spawn(file as string, args, { detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
    // A dead guardian's pipe fails writes with EPIPE: its exit is handled below.
    child.stdin?.on('error', () => undefined);
    this.#child = child;
    const spawned = await new Promise<boolean>((resolve) => {
      child.once('spawn', () => resolve(true));
      child.once('error', (error) => {
        this.#note(`cannot start the guardian (/bin/sh): ${error.message}; the command is not killed at once if run dies`);
        resolve(false);
      });
    });
    if (!spawned) {
      this.#child = undefined;
      return;
    }
    child.once('exit', (code, signal) => this.#onExit(child, code, signal));
    if (!(await ready(child))) this.#note(`the guardian (pid ${child.pid}) did not say ready within ${READY_TIMEOUT} ms; going on`);
    if (this.#group !== undefined) await this.#send(`watch ${this.#group.pgid} ${this.#group.leaderStart ?? ''}`);
  }

  /** Guards `group` from now on; resolves once the line is in the pipe. */
  async watch(group: GroupIdentity): Promise<void> {
    this.#group = group;
    await this.#send(`watch ${group.pgid} ${group.leaderStart ?? ''}`);
  }

  /** `group` is gone: nothing to kill any more. */
  release(group: GroupIdentity): void {
    if (this.#group?.pgid !== group.pgid) return;
    this.#group = undefined;
    void this.#send(`release ${group.pgid}`);
  }

  /** Closes the pipe (the guardian kills a group still guarded) and waits for it to exit. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#respawn);
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT)))]);
    clearTimeout(timer);
  }

  #send(line: string): Promise<void> {
    const stdin = this.#child?.stdin;
    if (stdin === undefined || stdin === null || stdin.destroyed) return Promise.resolve();
    // Resolves once the line was handed to the kernel (or the write failed: the exit handler restarts it).
    return new Promise((resolve) => stdin.write(`${line}\n`, () => resolve()));
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    if (this.#closed) return;
    this.#note(`the guardian (pid ${child.pid}) exited (${signal ?? code}); starting a new one`);
    const wait = Math.max(0, this.#lastStart + RESPAWN_DELAY - performance.now());
    this.#respawn = setTimeout(() => void this.start(), wait);
  }
}
