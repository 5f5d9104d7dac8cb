/**
 * The option tables: one table gives both the parser and the help text, and every usage error
 * is exit code 2 with exactly one line on stderr.
 */
import { describe, expect, it } from 'vitest';
import {
  asksForHelp,
  defineOptions,
  describeOption,
  flagName,
  HELP_OPTION,
  parseArgs,
  renderHelp,
  usageLine,
  type OptionTable,
} from '../../../src/cli/args.js';
import { commands } from '../../../src/cli/commands/index.js';
import type { CliIo } from '../../../src/cli/io.js';
import { commandHelp, globalHelp, globalOptions, main } from '../../../src/cli/main.js';
import { stripAnsi } from '../../../src/cli/style.js';
import { metadataOrUsageError } from '../../../src/cli/metadata-options.js';

const table = defineOptions({
  endpoint: { type: 'endpoint', alias: 'e', value: 'E', required: true, description: 'Endpoint.', example: 'tcp://127.0.0.1:5555' },
  timeout: { type: 'integer', alias: 't', value: 'MS', unit: 'milliseconds', min: 1, max: 60_000, default: 3000, description: 'Wait.' },
  heartbeatInterval: { type: 'integer', value: 'MS', unit: 'milliseconds', min: 1, max: 10, description: 'Optional.' },
  name: { type: 'string', value: 'NAME', description: 'A name.' },
  json: { type: 'boolean', description: 'JSON.' },
  ...HELP_OPTION,
});

function fakeIo(options: { isTTY?: boolean; env?: Record<string, string> } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    isTTY: options.isTTY ?? false,
    env: options.env ?? {},
    signal: new AbortController().signal,
  };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

/** Splits an example command line into words, up to the first shell operator. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) {
    const word = m[1] ?? m[2] ?? (m[3] as string);
    if (m[3] !== undefined && ['|', '&&', '>', '||', ';'].includes(word)) break;
    words.push(word);
  }
  return words;
}

describe('parseArgs', () => {
  it('reads long flags, aliases, inline values and applies defaults', () => {
    const r = parseArgs(table, ['--endpoint', 'ipc://@x', '-t', '250', '--name=n1', '--json']);
    expect(r).toMatchObject({ ok: true, operands: [] });
    if (!r.ok) return;
    expect(r.values.endpoint).toEqual({ kind: 'ipc-abstract', address: 'ipc://@x', name: 'x' });
    expect(r.values.timeout).toBe(250);
    expect(r.values.name).toBe('n1');
    expect(r.values.json).toBe(true);
    expect(r.values.help).toBe(false);
    expect(r.values.heartbeatInterval).toBeUndefined();
  });

  it('applies the default when the option is absent and keeps the last of repeated options', () => {
    const r = parseArgs(table, ['-e', 'tcp://127.0.0.1:1', '-etcp://127.0.0.1:2', '--timeout=5', '--timeout', '7']);
    expect(r.ok && r.values.endpoint.address).toBe('tcp://127.0.0.1:2');
    expect(r.ok && r.values.timeout).toBe(7);
    const d = parseArgs(table, ['-e', 'tcp://127.0.0.1:1']);
    expect(d.ok && d.values.timeout).toBe(3000);
    expect(d.ok && d.values.json).toBe(false);
  });

  it('kebab-cases camelCase keys into flags', () => {
    expect(flagName('heartbeatInterval')).toBe('heartbeat-interval');
    const r = parseArgs(table, ['-e', 'ipc://@x', '--heartbeat-interval', '9']);
    expect(r.ok && r.values.heartbeatInterval).toBe(9);
  });

  it('treats words after -- as operands, and stops at the first operand with passThrough', () => {
    const spec = { usage: '-- COMMAND [ARGS...]', description: 'x', min: 1, max: Infinity };
    const r = parseArgs(table, ['-e', 'ipc://@x', '--', 'node', '--json'], spec);
    expect(r.ok && r.operands).toEqual(['node', '--json']);
    expect(r.ok && r.values.json).toBe(false);
    const p = parseArgs(table, ['-e', 'ipc://@x', 'node', '--json'], { ...spec, passThrough: true });
    expect(p.ok && p.operands).toEqual(['node', '--json']);
    expect(parseArgs(table, ['-e', 'ipc://@x'], spec)).toEqual({ ok: false, error: 'missing -- COMMAND [ARGS...]' });
  });

  it.each([
    [['--bogus'], 'unknown option --bogus for cmd'],
    [['--jsno'], 'unknown option --jsno for cmd (did you mean --json?)'],
    [['-x'], 'unknown option -x for cmd'],
    [['-e'], 'option -e needs a value (E)'],
    [['--endpoint', '--json'], 'option --endpoint needs a value (E)'],
    [['--endpoint', 'foo'], 'option --endpoint expects an endpoint of the form tcp://HOST:PORT, ipc://@NAME or ipc:///ABSOLUTE/PATH, received "foo"'],
    [['-e', 'tcp://127.0.0.1:99999'], 'option -e expects a tcp port between 1 and 65535, received "tcp://127.0.0.1:99999"'],
    [['-e', 'ipc://@x', '--timeout', 'abc'], 'option --timeout expects a whole number of milliseconds from 1 to 60000, received "abc"'],
    [['-e', 'ipc://@x', '--timeout', '-5'], 'option --timeout expects a whole number of milliseconds from 1 to 60000, received "-5"'],
    [['-e', 'ipc://@x', '--timeout', '1.5'], 'option --timeout expects a whole number of milliseconds from 1 to 60000, received "1.5"'],
    [['-e', 'ipc://@x', '--timeout', '0'], 'option --timeout expects a whole number of milliseconds from 1 to 60000, received "0"'],
    [['-e', 'ipc://@x', '--timeout=60001'], 'option --timeout expects a whole number of milliseconds from 1 to 60000, received "60001"'],
    [['-e', 'ipc://@x', '--timeout', ''], 'option --timeout expects a whole number of milliseconds from 1 to 60000, received ""'],
    [['-e', 'ipc://@x', '--name='], 'option --name needs a non-empty value (NAME)'],
    [['-e', 'ipc://@x', '--json=yes'], 'option --json does not take a value'],
    [['-e', 'ipc://@x', 'extra'], 'unexpected argument "extra" for cmd'],
    [['--json'], 'missing --endpoint E for cmd'],
  ])('rejects %j: %s', (argv, error) => {
    expect(parseArgs(table, argv, undefined, 'cmd')).toEqual({ ok: false, error });
  });

  it('finds --help and -h before --, whatever else is wrong', () => {
    expect(asksForHelp(table, ['--bogus', '-h'])).toBe(true);
    expect(asksForHelp(table, ['--help'])).toBe(true);
    expect(asksForHelp(table, ['--', '--help'])).toBe(false);
    expect(asksForHelp(defineOptions({ json: { type: 'boolean', description: 'x' } }), ['--help'])).toBe(false);
  });
});

describe('help generated from the same table', () => {
  const tables: Array<[string, OptionTable, ReturnType<typeof globalHelp>]> = [
    ['failover-watch', globalOptions, globalHelp()],
    ...commands.map((c) => [`failover-watch ${c.name}`, c.options, commandHelp(c)] as [string, OptionTable, ReturnType<typeof globalHelp>]),
  ];

  it.each(tables)('%s: every option of the table is documented with its alias, value, default and example', (_name, options, spec) => {
    const help = renderHelp(spec);
    const flat = help.replace(/\s+/g, ' ');
    for (const [key, option] of Object.entries(options)) {
      const flag = `--${flagName(key)}`;
      expect(help).toContain(option.type === 'boolean' ? flag : `${flag} ${option.value}`);
      if (option.alias !== undefined) expect(help).toContain(`-${option.alias}, ${flag}`);
      expect(flat).toContain(describeOption(option).replace(/\s+/g, ' '));
      if (option.type !== 'boolean' && option.default !== undefined) expect(flat).toContain(`Default: ${option.default}.`);
      if (option.example !== undefined) expect(flat).toContain(`Example: ${option.example}`);
    }
  });

  it.each(tables)('%s: has a usage line, examples and the exit codes', (_name, _options, spec) => {
    const help = renderHelp(spec);
    expect(help).toMatch(/^Usage: failover-watch/);
    expect(help).toContain('\nExamples:\n');
    expect(help).toContain('\nExit codes:\n');
    for (const { code } of spec.exitCodes) expect(help).toMatch(new RegExp(`\\n  ${code} +\\S`));
    expect(spec.exitCodes.map((e) => e.code)).toContain(2);
  });

  it.each(commands.map((c) => [c.name, c] as const))('%s: the usage line shows required options plainly, the others in brackets', (_n, command) => {
    const usage = usageLine(`failover-watch ${command.name}`, command.options, command.operands);
    expect(renderHelp(commandHelp(command))).toContain(`Usage: ${usage}\n`);
    for (const [key, option] of Object.entries(command.options)) {
      if (key === 'help') continue;
      const text = option.type === 'boolean' ? `--${flagName(key)}` : `--${flagName(key)} ${option.value}`;
      const required = option.type !== 'boolean' && option.required === true;
      expect(usage).toContain(required ? ` ${text}` : `[${text}]`);
    }
  });

  it.each(commands.map((c) => [c.name, c] as const))('%s: every example in its help parses with its table', (_n, command) => {
    for (const example of command.examples) {
      const words = shellWords(example);
      expect(words.slice(0, 2)).toEqual(['failover-watch', command.name]);
      const result = parseArgs(command.options, words.slice(2), command.operands, command.name);
      expect(result, example).toMatchObject({ ok: true });
    }
  });

  it('lists every registered command in the global help', () => {
    const help = renderHelp(globalHelp());
    for (const c of commands) expect(help).toMatch(new RegExp(`\\n  ${c.name} +${c.summary.slice(0, 20).replace(/[?().*+]/g, '\\$&')}`));
  });
});

describe('main: usage errors', () => {
  const errors: string[][] = [
    [],
    ['stats'],
    ['--bogus'],
    ['-x', 'status'],
    ['--version=1'],
    ['help', 'nope'],
    ['help', 'status', 'watch'],
    // The generic cases fit commands that take an endpoint and no operands (status, watch);
    // run and demo would start working on some of them, so they get their own cases below.
    ...commands.filter((c) => 'endpoint' in c.options && c.operands === undefined).flatMap((c) => [
      [c.name, '--bogus'],
      [c.name, '-e'],
      [c.name, '--endpoint'],
      [c.name, '--endpoint', 'localhost:5555'],
      [c.name, '--endpoint', 'tcp://0.0.0.0:5555'],
      [c.name, '--endpoint', 'ipc://relative/path'],
      [c.name, '--json'],
      [c.name, '-e', 'ipc://@x', '--timeout', 'soon'],
      [c.name, '-e', 'ipc://@x', '--timeout', '-1'],
      [c.name, '-e', 'ipc://@x', '--timeout'],
      [c.name, '-e', 'ipc://@x', '--json=true'],
      [c.name, '-e', 'ipc://@x', 'extra'],
      [c.name, '-V'],
    ]),
    ['run', '--bogus', '--', 'true'],
    ['run', '-e', 'ipc://@x'],
    ['run', '-e', 'ipc://@x', '--interval', 'soon', '--', 'true'],
    ['run', '-e', 'ipc://@x', '--on-exit', 'later', '--', 'true'],
    ['run', '--', 'true'],
    ['demo', '--bogus'],
    ['demo', '--interval', '1'],
    ['demo', 'extra'],
    ['keygen'],
  ];

  it.each(errors)('%j exits 2 with one line on stderr and nothing on stdout', async (...argv) => {
    const { io, stdout, stderr } = fakeIo();
    expect(await main(argv, io)).toBe(2);
    expect(stdout()).toBe('');
    expect(stderr()).toMatch(/^failover-watch: [^\n]+; see --help\n$/);
  });

  it('names what is wrong', async () => {
    const run = async (...argv: string[]) => {
      const { io, stderr } = fakeIo();
      await main(argv, io);
      return stderr();
    };
    expect(await run('stauts')).toBe('failover-watch: unknown command "stauts" (did you mean status?); see --help\n');
    expect(await run('status', '-e', 'ipc://@x', '--timeout', 'soon')).toContain('--timeout expects a whole number of milliseconds');
    expect(await run('watch', '--endpoint', 'x')).toContain('--endpoint expects an endpoint of the form');
    expect(await run('watch')).toBe('failover-watch: give exactly one backend: --endpoint E, --redis URL, --etcd URL or --postgres URL; see --help\n');
  });
});

describe('main: help and version', () => {
  it.each([['--help'], ['-h'], ['help'], ['help', 'help'], ['--bogus', '--help']])('%j prints the global help and exits 0', async (...argv) => {
    const { io, stdout, stderr } = fakeIo();
    expect(await main(argv, io)).toBe(0);
    expect(stdout()).toBe(renderHelp(globalHelp()));
    expect(stderr()).toBe('');
  });

  it.each(commands.map((c) => c.name))('%s --help, -h and help %s print the command help and exit 0', async (name) => {
    const command = commands.find((c) => c.name === name);
    const expected = renderHelp(commandHelp(command!));
    for (const argv of [[name, '--help'], [name, '-h'], ['help', name], [name, '--bogus', '--timeout', 'x', '--help']]) {
      const { io, stdout } = fakeIo();
      expect(await main(argv, io)).toBe(0);
      expect(stdout()).toBe(expected);
    }
  });

  it('--version and -V print the version of package.json', async () => {
    const { version } = (await import('../../../package.json', { with: { type: 'json' } })).default;
    for (const flag of ['--version', '-V']) {
      const { io, stdout } = fakeIo();
      expect(await main([flag], io)).toBe(0);
      expect(stdout()).toBe(`${version}\n`);
    }
  });

  it('colors headings only on a TTY without NO_COLOR', async () => {
    const render = async (isTTY: boolean, env: Record<string, string>) => {
      const { io, stdout } = fakeIo({ isTTY, env });
      await main(['help', 'status'], io);
      return stdout();
    };
    const tty = await render(true, {});
    expect(tty).toContain('\u001b[1mUsage:\u001b[22m');
    expect(stripAnsi(tty)).toBe(await render(false, {}));
    expect(await render(true, { NO_COLOR: '' })).not.toContain('\u001b[');
    expect(await render(true, { NO_COLOR: '1' })).not.toContain('\u001b[');
    expect(await render(false, {})).not.toContain('\u001b[');
  });
});

describe('a list option', () => {
  const table = defineOptions({ metadata: { type: 'list', value: 'KEY=VALUE', description: 'Metadata.' } });

  it('collects every value in order; absent is empty', () => {
    const r = parseArgs(table, ['--metadata', 'a=1', '--metadata=b=2']);
    expect(r.ok && r.values.metadata).toEqual(['a=1', 'b=2']);
    const none = parseArgs(table, []);
    expect(none.ok && none.values.metadata).toEqual([]);
    expect(usageLine('x', table)).toBe('x [--metadata KEY=VALUE]...');
  });
});

describe('--metadata KEY=VALUE', () => {
  it('builds the map and names the key it refuses', () => {
    expect(metadataOrUsageError(['port=7001', 'url=http://h:1/a=b', 'empty='])).toEqual({ metadata: { port: '7001', url: 'http://h:1/a=b', empty: '' } });
    expect(metadataOrUsageError(['port'])).toEqual({ error: '--metadata expects KEY=VALUE, received "port"' });
    expect(metadataOrUsageError(['port=1', 'port=2'])).toEqual({ error: '--metadata port is given twice' });
    expect(metadataOrUsageError(['bad key=1'])).toMatchObject({ error: expect.stringMatching(/^--metadata bad key: expected a key of .* received "bad key"$/) });
    expect(metadataOrUsageError([`big=${'x'.repeat(257)}`])).toMatchObject({ error: expect.stringMatching(/^--metadata big: expected a value of at most 256 bytes/) });
    const many = Array.from({ length: 17 }, (_, i) => `k${i}=v`);
    expect(metadataOrUsageError(many)).toMatchObject({ error: expect.stringMatching(/^--metadata: expected at most 16 keys/) });
    expect(metadataOrUsageError(['__proto__=x'])).toEqual({ metadata: { ['__proto__']: 'x' } });
  });
});
