/**
 * The CLI's only contact with the process: output streams, terminal, environment and signals.
 * `main` takes a {@link CliIo} so tests drive it with strings and an AbortController;
 * {@link processIo} is the real one the `bin/` shim passes in.
 *
 * @module
 */

/** Everything the CLI needs from its process. */
export interface CliIo {
  /** Writes to standard output, as is (no newline added). */
  readonly stdout: (text: string) => void;
  /** Writes to standard error, as is. */
  readonly stderr: (text: string) => void;
  /** Whether stdout is a terminal: enables in-place redraws and (without NO_COLOR) colors. */
  readonly isTTY: boolean;
  /** The environment (`NO_COLOR` is read from here). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Aborts on SIGINT or SIGTERM (the reason is the signal's name), or when stdout is closed. */
  readonly signal: AbortSignal;
  /** The terminal's width in columns, when known. */
  readonly columns?: () => number | undefined;
  /** The operating system commands check what they need against (src/platform.ts). @default process.platform */
  readonly platform?: NodeJS.Platform;
}

/**
 * The real process: `process.stdout`/`stderr`, `process.env`, and an AbortSignal for SIGINT and
 * SIGTERM. The first signal aborts (the command cleans up and returns its exit code); a second
 * one, if cleanup hangs, gets the default action. A closed stdout (`| head`) aborts too.
 */
export function processIo(): CliIo {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (!controller.signal.aborted) {
      controller.abort(signal);
      return;
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.kill(process.pid, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    // EPIPE: the reader went away. Nothing more can be shown; stop like on a signal.
    if (!controller.signal.aborted) controller.abort(error.code ?? 'stdout error');
  });
  return {
    stdout: (text) => {
      if (!process.stdout.destroyed) process.stdout.write(text);
    },
    stderr: (text) => {
      process.stderr.write(text);
    },
    isTTY: process.stdout.isTTY === true,
    env: process.env,
    signal: controller.signal,
    columns: () => process.stdout.columns,
  };
}

/** Whether output may be colored: a terminal, no `NO_COLOR` (whatever its value), not JSON. */
export function colorEnabled(io: CliIo, json: boolean): boolean {
  return io.isTTY && io.env.NO_COLOR === undefined && !json;
}

/** Resolves when `signal` aborts; `dispose()` removes the listener when something else ended the wait first. */
export function aborted(signal: AbortSignal): { promise: Promise<void>; dispose(): void } {
  if (signal.aborted) return { promise: Promise.resolve(), dispose: () => undefined };
  let dispose = (): void => undefined;
  const promise = new Promise<void>((resolve) => {
    const listener = (): void => resolve();
    signal.addEventListener('abort', listener, { once: true });
    dispose = () => signal.removeEventListener('abort', listener);
  });
  return { promise, dispose };
}
