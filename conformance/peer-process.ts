/**
 * The kit's side of the peer contract (docs/CONFORMANCE.md): start a peer from the command
 * template, read its JSON lines, stop it with SIGTERM or crash it with SIGKILL.
 *
 * The template is split into words here (whitespace separates words; `'...'` and `"..."` quote),
 * the placeholders are filled in each word, and the program is started directly, without a
 * shell: the pid the kit signals is the peer's own. Every line the peer writes on stdout that is
 * a JSON object with a string `event` is stamped on arrival with the run's one host clock
 * (harness/child-runtime.ts hostNow); other lines are ignored. stderr is kept for the report.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { hostNow } from '../harness/child-runtime.js';

/** The values the kit puts into a peer's command template. */
export interface PeerConfig {
  readonly endpoint: string;
  readonly id: string;
  readonly priority: number;
  readonly workdir: string;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
}

/** The placeholders of the template, in the order the documentation lists them. */
export const PLACEHOLDERS = ['endpoint', 'id', 'priority', 'workdir', 'heartbeatInterval', 'heartbeatTimeout'] as const;

/** A line from the peer, stamped by the kit. */
export interface PeerEvent {
  readonly event: string;
  /** When the kit read the line, on the host clock (ms). */
  readonly at: number;
  readonly [key: string]: unknown;
}

/** How long a peer has to exit after SIGTERM before the kit kills it (and fails the scenario). */
export const STOP_BOUND_MS = 5000;

/** Splits a command template into words: whitespace separates, `'...'` and `"..."` quote. */
export function splitTemplate(template: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (const ch of template) {
    if (quote !== undefined) {
      if (ch === quote) quote = undefined;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (quote !== undefined) throw new Error(`peer template: unclosed ${quote}`);
  if (inWord) words.push(word);
  if (words.length === 0) throw new Error('peer template: empty');
  return words;
}

/** The template's words with every `{placeholder}` replaced; an unknown `{name}` is an error. */
export function fillTemplate(template: string, config: PeerConfig): string[] {
  return splitTemplate(template).map((word) =>
    word.replace(/\{([A-Za-z]+)\}/g, (whole, name: string) => {
      if (!(PLACEHOLDERS as readonly string[]).includes(name)) throw new Error(`peer template: unknown placeholder ${whole}`);
      return String(config[name as keyof PeerConfig]);
    }),
  );
}

/** One peer process started from the template. */
export class PeerProcess {
  readonly config: PeerConfig;
  readonly argv: readonly string[];
  readonly child: ChildProcess;
  readonly events: PeerEvent[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Settles once the process exited and its stdout and stderr are read to the end. */
  readonly closed: Promise<void>;
  stderr = '';
  #stdoutRest = '';
  #exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #killed = false;
  #waiters = new Set<{ pred: (e: PeerEvent) => boolean; resolve: (e: PeerEvent) => void }>();

  constructor(template: string, config: PeerConfig) {
    this.config = config;
    this.argv = fillTemplate(template, config);
    const [program, ...args] = this.argv as [string, ...string[]];
    this.child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => this.#read(chunk));
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < 100_000) this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => {
      this.child.on('error', (error) => {
        this.stderr += `\n[kit] cannot start ${program}: ${error.message}`;
        this.#exitInfo = { code: null, signal: null };
        resolve(this.#exitInfo);
      });
      this.child.on('exit', (code, signal) => {
        this.#exitInfo = { code, signal };
        resolve({ code, signal });
      });
    });
    this.closed = new Promise((resolve) => {
      this.child.on('close', () => resolve());
      this.child.on('error', () => resolve());
    });
  }

  get id(): string {
    return this.config.id;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** False once it exited or the kit sent it SIGKILL. */
  get alive(): boolean {
    return this.#exitInfo === undefined && !this.#killed;
  }

  get exitInfo(): { code: number | null; signal: NodeJS.Signals | null } | undefined {
    return this.#exitInfo;
  }

  #read(chunk: string): void {
    const text = this.#stdoutRest + chunk;
    const lines = text.split('\n');
    this.#stdoutRest = (lines.pop() ?? '').slice(-65_536);
    const at = hostNow();
    for (const line of lines) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) continue;
      const event = (parsed as { event?: unknown }).event;
      if (typeof event !== 'string') continue;
      const stamped: PeerEvent = { ...(parsed as Record<string, unknown>), event, at };
      this.events.push(stamped);
      for (const w of this.#waiters) {
        if (w.pred(stamped)) {
          this.#waiters.delete(w);
          w.resolve(stamped);
        }
      }
    }
  }

  /**
   * The first event (already read or future) matching `pred`; rejects after `timeout` ms, or as
   * soon as the peer has exited and all it wrote is read without such a line.
   */
  waitFor(pred: (e: PeerEvent) => boolean, timeout: number, what: string): Promise<PeerEvent> {
    const seen = this.events.find(pred);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const fail = (why: string): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        reject(new Error(`peer ${this.id}: no ${what} ${why}; lines: ${this.describeEvents()}${this.#stderrTail()}`));
      };
      const waiter = {
        pred,
        resolve: (e: PeerEvent) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => fail(`within ${timeout} ms`), timeout);
      this.#waiters.add(waiter);
      void this.closed.then(() => {
        if (this.#waiters.has(waiter)) fail(`before it exited (${JSON.stringify(this.#exitInfo)})`);
      });
    });
  }

  /** Its events in short form, for failure messages. */
  describeEvents(): string {
    if (this.events.length === 0) return '(none)';
    return this.events.map(({ event, at: _at, ...rest }) => `${event}${Object.keys(rest).length > 0 ? JSON.stringify(rest) : ''}`).join(' ');
  }

  #stderrTail(): string {
    const tail = this.stderr.trim().slice(-1500);
    return tail === '' ? '' : `; stderr: ${tail}`;
  }

  /** Sends a signal to this peer only, by its pid. */
  signal(signal: 'SIGTERM' | 'SIGKILL'): void {
    if (this.#exitInfo !== undefined || this.child.pid === undefined || this.#killed) return;
    process.kill(this.child.pid, signal);
    if (signal === 'SIGKILL') this.#killed = true;
  }

  /**
   * Graceful stop: SIGTERM, then the peer must write `stopped` and exit within
   * {@link STOP_BOUND_MS}. Returns what went wrong, or undefined; a peer still running at the
   * bound is killed.
   */
  async stop(): Promise<string | undefined> {
    if (!this.alive) return undefined;
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_BOUND_MS))),
    ]);
    clearTimeout(timer);
    if (late) {
      this.signal('SIGKILL');
      await this.exited;
      return `peer ${this.id} did not exit within ${STOP_BOUND_MS} ms of SIGTERM`;
    }
    if (!this.events.some((e) => e.event === 'stopped')) return `peer ${this.id} exited after SIGTERM without a "stopped" line`;
    return undefined;
  }

  /** Crash: SIGKILL, and wait for the exit. */
  async crash(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }
}
