/**
 * What a CLI command is: a name, an option table (which gives both its parser and its `--help`),
 * documentation, and a `run` that returns an exit code. Commands are listed in
 * `commands/index.ts`; `main` does the parsing, the help and the usage errors for all of them.
 *
 * To add a command: write `commands/<name>.ts` exporting `defineCommand({...})`, and add it to
 * the list in `commands/index.ts`. Nothing else changes.
 *
 * @module
 */
import type { ExitCodeDoc, OperandSpec, OptionTable, OptionValues } from './args.js';
import type { CliIo } from './io.js';
import type { Style } from './style.js';

/** Exit codes shared by every command. */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** The command ran but the answer is "no" (e.g. no primary), or a runtime failure. */
  failure: 1,
  /** Bad usage: unknown command or option, missing or bad value. */
  usage: 2,
  /** Stopped by SIGINT/SIGTERM before it had an answer (commands that run until a signal return 0). */
  interrupted: 130,
} as const;

/** The documentation row of exit code 2, shared by every command's help. */
export const USAGE_EXIT: ExitCodeDoc = {
  code: EXIT.usage,
  meaning: 'bad usage: unknown command or option, missing or bad value (one line on stderr)',
};

/** What a command's `run` receives besides its arguments. */
export interface CommandContext {
  readonly io: CliIo;
  /** Writes text to stdout as is. */
  out(text: string): void;
  /** Writes one line to stderr, prefixed with `failover-watch: `. */
  warn(line: string): void;
  /** Colors when stdout is a TTY and NO_COLOR is not set; commands pass `json` to turn them off. */
  style(json: boolean): Style;
}

/** A command as written, with its typed option values. */
export interface CommandSpec<T extends OptionTable> {
  readonly name: string;
  /** One line for the command list in the global help. */
  readonly summary: string;
  /** A paragraph for the command's own help. */
  readonly description: string;
  readonly options: T;
  readonly operands?: OperandSpec;
  /** Full command lines, shown under "Examples:" and checked against the parser by the tests. */
  readonly examples: readonly string[];
  readonly exitCodes: readonly ExitCodeDoc[];
  run(args: { readonly values: OptionValues<T>; readonly operands: readonly string[] }, context: CommandContext): Promise<number>;
}

/** A command in the registry, its option types erased. */
export type Command = CommandSpec<OptionTable>;

/** Declares a command; keeps the option table's literal types for `run`. */
export function defineCommand<const T extends OptionTable>(spec: CommandSpec<T>): Command {
  return spec as unknown as Command;
}
