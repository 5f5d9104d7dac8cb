/**
 * The `failover-watch` command line: `main(argv, io)` parses the global options, finds the
 * command in the registry (`commands/index.ts`), handles `--help`, `--version`, `help <command>`
 * and usage errors for all of them, runs the command and returns its exit code. It never calls
 * `process.exit`; the `bin/` shim sets `process.exitCode`.
 *
 * Usage errors print exactly one line on stderr, `failover-watch: <what is wrong>; see --help`,
 * and return 2.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { asksForHelp, defineOptions, HELP_OPTION, parseArgs, renderHelp, suggest, type HelpSpec, type HelpStyle } from './args.js';
import { EXIT, USAGE_EXIT, type Command, type CommandContext } from './command.js';
import { commands, findCommand } from './commands/index.js';
import { colorEnabled, type CliIo } from './io.js';
import { createStyle } from './style.js';

export type { CliIo } from './io.js';
export { processIo } from './io.js';

const PROGRAM = 'failover-watch';

/** Options accepted before the command. */
export const globalOptions = defineOptions({
  ...HELP_OPTION,
  version: { type: 'boolean', alias: 'V', description: 'Print the version and exit.' },
});

/** Runs the CLI with `argv` (the words after the program name); resolves with the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (error) {
    // A bug, not a usage error: say so in one line (the stack with FAILOVER_WATCH_DEBUG set).
    const detail = io.env.FAILOVER_WATCH_DEBUG !== undefined && error instanceof Error ? error.stack : String(error);
    io.stderr(`${PROGRAM}: unexpected error: ${detail}\n`);
    return EXIT.failure;
  }
}

async function dispatch(argv: readonly string[], io: CliIo): Promise<number> {
  const usageError = (what: string): number => {
    io.stderr(`${PROGRAM}: ${what}; see --help\n`);
    return EXIT.usage;
  };
  const helpStyle: HelpStyle = { heading: createStyle(colorEnabled(io, false)).bold };

  const firstWord = argv.findIndex((word) => !word.startsWith('-'));
  const globalWords = firstWord === -1 ? argv : argv.slice(0, firstWord);
  if (asksForHelp(globalOptions, globalWords)) {
    io.stdout(renderHelp(globalHelp(), helpStyle));
    return EXIT.ok;
  }
  const global = parseArgs(globalOptions, argv, { usage: '<command>', description: '', min: 0, max: Infinity, passThrough: true });
  if (!global.ok) return usageError(global.error);
  if (global.values.version) {
    io.stdout(`${version()}\n`);
    return EXIT.ok;
  }

  const [name, ...rest] = global.operands;
  const names = [...commands.map((c) => c.name), 'help'];
  if (name === undefined) return usageError(`missing command (one of: ${names.join(', ')})`);

  if (name === 'help') {
    if (rest.length === 0) {
      io.stdout(renderHelp(globalHelp(), helpStyle));
      return EXIT.ok;
    }
    const topic = rest[0] as string;
    if (rest.length > 1) return usageError(`help takes one command, received ${rest.length}`);
    if (topic === 'help') {
      io.stdout(renderHelp(globalHelp(), helpStyle));
      return EXIT.ok;
    }
    const command = findCommand(topic);
    if (command === undefined) return usageError(unknownCommand(topic, names));
    io.stdout(renderHelp(commandHelp(command), helpStyle));
    return EXIT.ok;
  }

  const command = findCommand(name);
  if (command === undefined) return usageError(unknownCommand(name, names));
  if (asksForHelp(command.options, rest)) {
    io.stdout(renderHelp(commandHelp(command), helpStyle));
    return EXIT.ok;
  }
  const parsed = parseArgs(command.options, rest, command.operands, name);
  if (!parsed.ok) return usageError(parsed.error);

  const context: CommandContext = {
    io,
    out: (text) => io.stdout(text),
    warn: (line) => io.stderr(`${PROGRAM}: ${line}\n`),
    style: (json) => createStyle(colorEnabled(io, json)),
  };
  return command.run({ values: parsed.values, operands: parsed.operands }, context);
}

function unknownCommand(name: string, names: readonly string[]): string {
  return `unknown command ${JSON.stringify(name)}${suggest(name, names, '')}`;
}

/** The help text of one command, generated from its option table. */
export function commandHelp(command: Command): HelpSpec {
  return {
    invocation: `${PROGRAM} ${command.name}`,
    description: command.description,
    options: command.options,
    ...(command.operands === undefined ? {} : { operands: command.operands }),
    examples: command.examples,
    exitCodes: command.exitCodes,
  };
}

/** The program's own help: usage, the command list, global options, exit codes. */
export function globalHelp(): HelpSpec {
  return {
    invocation: PROGRAM,
    usage: [`${PROGRAM} <command> [options]`, `${PROGRAM} help <command>`, `${PROGRAM} --version`],
    description: `${PROGRAM} ${version()}: keep exactly one process of a group primary, and watch who it is.`,
    options: globalOptions,
    sections: [
      {
        title: 'Commands',
        rows: [...commands.map((c) => [c.name, c.summary] as const), ['help', "Show a command's options, examples and exit codes."] as const],
      },
    ],
    examples: [
      `${PROGRAM} status --endpoint tcp://127.0.0.1:5555`,
      `${PROGRAM} watch --endpoint tcp://127.0.0.1:5555`,
      `${PROGRAM} help status`,
    ],
    exitCodes: [
      { code: EXIT.ok, meaning: 'success' },
      { code: EXIT.failure, meaning: "the command's answer is no, or it failed (see the command's help)" },
      USAGE_EXIT,
    ],
  };
}

let cachedVersion: string | undefined;

/** The package's version, from package.json (two levels up from both src/cli and dist/cli). */
export function version(): string {
  cachedVersion ??= (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
  return cachedVersion;
}
