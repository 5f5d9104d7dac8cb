/**
 * Command-line options: one table per command produces both the parser and the `--help` text,
 * so the two cannot drift apart.
 *
 * An option table maps a property name (camelCase) to an {@link OptionSpec}; the flag is the
 * kebab-cased name (`heartbeatTimeout` -> `--heartbeat-timeout`), an optional one-letter alias
 * gives `-x`. Accepted forms: `--name value`, `--name=value`, `-x value`, `-xvalue`, `--flag` for
 * booleans, and `--` to end the options. A repeated option keeps its last value, except a `list`
 * option, which collects every value in order (absent: an empty list).
 *
 * Parsing never throws: a usage error comes back as a value with one human sentence, which
 * `main` prints as `failover-watch: <sentence>; see --help` and turns into exit code 2.
 *
 * @module
 */
import { parseEndpoint, type Endpoint } from '../transport/zmq/endpoint.js';

interface OptionBase {
  /** One letter, without the dash: `e` gives `-e`. */
  readonly alias?: string;
  /** What the option does, one or two sentences. */
  readonly description: string;
  /** An example value, shown in `--help`. */
  readonly example?: string;
}

/** A flag without a value: absent is `false`, present is `true`. */
export interface BooleanOption extends OptionBase {
  readonly type: 'boolean';
}

/** A free-form string. */
export interface StringOption extends OptionBase {
  readonly type: 'string';
  /** The value's placeholder in usage and help, e.g. `PATH`. */
  readonly value: string;
  readonly required?: boolean;
  readonly default?: string;
}

/** A whole number within `[min, max]`. */
export interface IntegerOption extends OptionBase {
  readonly type: 'integer';
  /** The value's placeholder in usage and help, e.g. `MS`. */
  readonly value: string;
  /** What the number counts, for error messages: `milliseconds`. */
  readonly unit: string;
  readonly min: number;
  readonly max: number;
  readonly required?: boolean;
  readonly default?: number;
}

/** A cluster endpoint, validated with `parseEndpoint`. */
export interface EndpointOption extends OptionBase {
  readonly type: 'endpoint';
  /** The value's placeholder in usage and help, e.g. `E`. */
  readonly value: string;
  readonly required?: boolean;
  readonly default?: string;
}

/** A repeatable string option: every occurrence adds a value (`--metadata a=1 --metadata b=2`). */
export interface ListOption extends OptionBase {
  readonly type: 'list';
  /** The value's placeholder in usage and help, e.g. `KEY=VALUE`. */
  readonly value: string;
  readonly required?: undefined;
  readonly default?: undefined;
}

/** One row of an option table. */
export type OptionSpec = BooleanOption | StringOption | IntegerOption | EndpointOption | ListOption;

/** An option table: property name -> spec. */
export type OptionTable = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S extends BooleanOption
  ? boolean
  : S extends ListOption
    ? readonly string[]
    : S extends IntegerOption
    ? number
    : S extends EndpointOption
      ? Endpoint
      : string;

type AlwaysPresent<S extends OptionSpec> = S extends BooleanOption | ListOption
  ? true
  : S extends { readonly required: true }
    ? true
    : S extends { readonly default: unknown }
      ? true
      : false;

/** The parsed values of a table: required and defaulted options are never undefined. */
export type OptionValues<T extends OptionTable> = {
  readonly [K in keyof T]: AlwaysPresent<T[K]> extends true ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

/** What a command accepts besides options. */
export interface OperandSpec {
  /** As shown in the usage line, e.g. `-- COMMAND [ARGS...]`. */
  readonly usage: string;
  readonly description: string;
  readonly min: number;
  readonly max: number;
  /** Stop parsing options at the first operand: everything from it on is an operand. */
  readonly passThrough?: boolean;
}

/** The outcome of parsing: values, or one sentence saying what is wrong. */
export type ParseResult<T extends OptionTable> =
  | { readonly ok: true; readonly values: OptionValues<T>; readonly operands: readonly string[] }
  | { readonly ok: false; readonly error: string };

/** Typed identity: keeps the literal types of a table (`required: true`, defaults). */
export function defineOptions<const T extends OptionTable>(table: T): T {
  return table;
}

/** The option every command has. */
export const HELP_OPTION = defineOptions({
  help: { type: 'boolean', alias: 'h', description: 'Show this help and exit.' },
});

/** `heartbeatTimeout` -> `heartbeat-timeout`. */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** `--endpoint E` or `--json`: how an option is written in usage lines and messages. */
export function flagWithValue(key: string, spec: OptionSpec): string {
  return spec.type === 'boolean' ? `--${flagName(key)}` : `--${flagName(key)} ${spec.value}`;
}

/**
 * Parses `argv` (the words after the command name) against `table`. Never throws.
 *
 * @example
 * const r = parseArgs(defineOptions({ json: { type: 'boolean', description: 'JSON' } }), ['--json']);
 * // r.ok && r.values.json === true
 */
export function parseArgs<const T extends OptionTable>(
  table: T,
  argv: readonly string[],
  operandSpec?: OperandSpec,
  context?: string,
): ParseResult<T> {
  const where = context === undefined ? '' : ` for ${context}`;
  const byFlag = new Map<string, string>();
  const byAlias = new Map<string, string>();
  for (const [key, spec] of Object.entries(table)) {
    byFlag.set(flagName(key), key);
    if (spec.alias !== undefined) byAlias.set(spec.alias, key);
  }

  const values: Record<string, unknown> = {};
  const operands: string[] = [];
  let rest = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as string;
    if (rest) {
      operands.push(word);
      continue;
    }
    if (word === '--') {
      rest = true;
      continue;
    }

    let key: string | undefined;
    let inline: string | undefined;
    let written: string;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq === -1 ? word.slice(2) : word.slice(2, eq);
      inline = eq === -1 ? undefined : word.slice(eq + 1);
      written = `--${name}`;
      key = byFlag.get(name);
      if (key === undefined) {
        return fail(`unknown option ${written}${where}${suggest(name, [...byFlag.keys()], '--')}`);
      }
    } else if (word.startsWith('-') && word.length > 1 && !isNegativeNumber(word)) {
      const letter = word.slice(1, 2);
      written = `-${letter}`;
      key = byAlias.get(letter);
      if (key === undefined) return fail(`unknown option ${written}${where}`);
      if (word.length > 2) inline = word.slice(word[2] === '=' ? 3 : 2);
    } else {
      operands.push(word);
      if (operandSpec?.passThrough === true) rest = true;
      continue;
    }

    const spec = table[key] as OptionSpec;
    if (spec.type === 'boolean') {
      if (inline !== undefined) return fail(`option ${written} does not take a value`);
      values[key] = true;
      continue;
    }
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next === '--' || (next.startsWith('-') && next.length > 1 && !isNegativeNumber(next))) {
        return fail(`option ${written} needs a value (${spec.value})`);
      }
      raw = next;
      i++;
    }
    const converted = convert(spec, raw, written);
    if (!converted.ok) return converted;
    values[key] = spec.type === 'list' ? [...((values[key] as string[] | undefined) ?? []), converted.value as string] : converted.value;
  }

  for (const [key, spec] of Object.entries(table)) {
    if (values[key] !== undefined) continue;
    if (spec.type === 'boolean') {
      values[key] = false;
    } else if (spec.type === 'list') {
      values[key] = [];
    } else if (spec.default !== undefined) {
      const converted = convert(spec, String(spec.default), `--${flagName(key)}`);
      // A default that fails its own validation is a bug in the table, not a usage error.
      if (!converted.ok) throw new Error(`bad default of --${flagName(key)}: ${converted.error}`);
      values[key] = converted.value;
    } else if (spec.required === true) {
      return fail(`missing ${flagWithValue(key, spec)}${where}`);
    }
  }

  const min = operandSpec?.min ?? 0;
  const max = operandSpec?.max ?? 0;
  if (operands.length > max) {
    const extra = operands[max] as string;
    return fail(`unexpected argument ${JSON.stringify(extra)}${where}`);
  }
  if (operands.length < min) {
    return fail(`missing ${operandSpec?.usage ?? 'arguments'}${where}`);
  }
  return { ok: true, values: values as OptionValues<T>, operands };
}

/** True when `--help`/`-h` (as the table spells it) appears before `--`: help wins over other errors. */
export function asksForHelp(table: OptionTable, argv: readonly string[]): boolean {
  const spec = table.help;
  if (spec === undefined) return false;
  const forms = new Set(['--help', ...(spec.alias === undefined ? [] : [`-${spec.alias}`])]);
  for (const word of argv) {
    if (word === '--') return false;
    if (forms.has(word)) return true;
  }
  return false;
}

function convert(
  spec: Exclude<OptionSpec, BooleanOption>,
  raw: string,
  written: string,
): { ok: true; value: unknown } | { ok: false; error: string } {
  switch (spec.type) {
    case 'string':
    case 'list':
      if (raw.length === 0) return fail(`option ${written} needs a non-empty value (${spec.value})`);
      return { ok: true, value: raw };
    case 'integer': {
      const n = /^\d{1,16}$/.test(raw) ? Number(raw) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) {
        return fail(
          `option ${written} expects a whole number of ${spec.unit} from ${spec.min} to ${spec.max}, received ${JSON.stringify(raw)}`,
        );
      }
      return { ok: true, value: n };
    }
    case 'endpoint': {
      const parsed = parseEndpoint(raw);
      if (typeof parsed === 'string') {
        return fail(`option ${written} expects ${parsed}, received ${JSON.stringify(raw)}`);
      }
      return { ok: true, value: parsed };
    }
  }
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

function isNegativeNumber(word: string): boolean {
  return /^-\d/.test(word);
}

/** ` (did you mean --json?)` when a known name is within two edits of `name`. */
export function suggest(name: string, known: readonly string[], prefix: string): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = editDistance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best === undefined ? '' : ` (did you mean ${prefix}${best}?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
    }
    previous = current;
  }
  return previous[b.length] as number;
}

// ---------------------------------------------------------------------------------------------
// Help text

/** One documented exit code. */
export interface ExitCodeDoc {
  readonly code: number;
  readonly meaning: string;
}

/** Everything `--help` shows for one command (or for the program itself). */
export interface HelpSpec {
  /** `failover-watch status`, or `failover-watch` for the global help. */
  readonly invocation: string;
  readonly description: string;
  readonly options: OptionTable;
  readonly operands?: OperandSpec;
  /** Extra sections placed after the options (e.g. the command list), in order. */
  readonly sections?: ReadonlyArray<{ readonly title: string; readonly rows: ReadonlyArray<readonly [string, string]> }>;
  /** Full command lines. */
  readonly examples: readonly string[];
  readonly exitCodes: readonly ExitCodeDoc[];
  /** Overrides the generated usage line(s). */
  readonly usage?: readonly string[];
}

/** Formatting hooks for help text (bold headings on a color terminal). */
export interface HelpStyle {
  heading(text: string): string;
}

const plainHelpStyle: HelpStyle = { heading: (t) => t };

/** The usage line generated from a table: required options plainly, the rest in brackets. */
export function usageLine(invocation: string, table: OptionTable, operands?: OperandSpec): string {
  const parts = [invocation];
  for (const [key, spec] of Object.entries(table)) {
    if (key === 'help') continue;
    const text = flagWithValue(key, spec);
    parts.push(spec.type !== 'boolean' && spec.required === true ? text : spec.type === 'list' ? `[${text}]...` : `[${text}]`);
  }
  if (operands !== undefined) parts.push(operands.usage);
  return parts.join(' ');
}

/** Renders the `--help` text of a command from its table. Ends with a newline. */
export function renderHelp(spec: HelpSpec, style: HelpStyle = plainHelpStyle, width = 80): string {
  const out: string[] = [];
  const usage = spec.usage ?? [usageLine(spec.invocation, spec.options, spec.operands)];
  out.push(`${style.heading('Usage:')} ${usage[0] ?? ''}`);
  for (const more of usage.slice(1)) out.push(`       ${more}`);
  out.push('', ...wrap(spec.description, width, ''), '');

  const rows: Array<readonly [string, string]> = [];
  if (spec.operands !== undefined) rows.push([spec.operands.usage, spec.operands.description]);
  for (const [key, option] of Object.entries(spec.options)) {
    const name = `${option.alias === undefined ? '    ' : `-${option.alias}, `}${flagWithValue(key, option)}`;
    rows.push([name, describeOption(option)]);
  }
  out.push(style.heading('Options:'), ...table(rows, width), '');

  for (const section of spec.sections ?? []) {
    out.push(style.heading(`${section.title}:`), ...table(section.rows, width), '');
  }
  if (spec.examples.length > 0) {
    out.push(style.heading('Examples:'), ...spec.examples.map((e) => `  ${e}`), '');
  }
  out.push(
    style.heading('Exit codes:'),
    ...table(
      spec.exitCodes.map((e) => [String(e.code), e.meaning] as const),
      width,
    ),
  );
  return `${out.join('\n')}\n`;
}

/** The description of an option followed by what the table knows: required, default, example. */
export function describeOption(spec: OptionSpec): string {
  const notes: string[] = [];
  if (spec.type !== 'boolean' && spec.required === true) notes.push('Required.');
  if (spec.type !== 'boolean' && spec.default !== undefined) notes.push(`Default: ${spec.default}.`);
  if (spec.type === 'integer') notes.push(`Range: ${spec.min}-${spec.max} ${spec.unit}.`);
  if (spec.type === 'list') notes.push('Repeatable.');
  if (spec.example !== undefined) notes.push(`Example: ${spec.example}`);
  return [spec.description, ...notes].join(' ');
}

function table(rows: ReadonlyArray<readonly [string, string]>, width: number): string[] {
  const left = Math.min(28, Math.max(0, ...rows.map(([name]) => name.length)));
  const out: string[] = [];
  for (const [name, text] of rows) {
    const indent = ' '.repeat(2 + left + 2);
    const lines = wrap(text, width, indent);
    const first = (lines[0] ?? '').slice(indent.length);
    if (name.length > left) {
      out.push(`  ${name}`);
      out.push(...lines);
    } else {
      out.push(`  ${name.padEnd(left)}  ${first}`, ...lines.slice(1));
    }
  }
  return out;
}

function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = indent;
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > indent.length && line.length + 1 + word.length > width) {
      lines.push(line);
      line = indent;
    }
    line += line.length > indent.length ? ` ${word}` : word;
  }
  if (line.length > indent.length || lines.length === 0) lines.push(line);
  return lines;
}
