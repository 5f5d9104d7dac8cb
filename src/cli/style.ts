/**
 * ANSI styling that switches off as a whole: with colors disabled every function is the identity,
 * so renderers never branch on color themselves.
 *
 * @module
 */

/** Text styles; identity functions when colors are off. */
export interface Style {
  readonly enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const sgr = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;

const colored: Style = {
  enabled: true,
  bold: sgr(1, 22),
  dim: sgr(2, 22),
  red: sgr(31, 39),
  green: sgr(32, 39),
  yellow: sgr(33, 39),
  cyan: sgr(36, 39),
};

const identity = (text: string): string => text;
const plain: Style = {
  enabled: false,
  bold: identity,
  dim: identity,
  red: identity,
  green: identity,
  yellow: identity,
  cyan: identity,
};

/** The styles to use. */
export function createStyle(enabled: boolean): Style {
  return enabled ? colored : plain;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g;

/** `text` without ANSI escape sequences. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** Cuts `text` to `columns` visible characters, keeping (and closing) its escape sequences. */
export function truncateVisible(text: string, columns: number): string {
  if (stripAnsi(text).length <= columns) return text;
  let out = '';
  let visible = 0;
  for (let i = 0; i < text.length; ) {
    ANSI.lastIndex = i;
    const m = ANSI.exec(text);
    if (m !== null && m.index === i) {
      out += m[0];
      i += m[0].length;
      continue;
    }
    if (visible < columns) {
      out += text[i];
      visible++;
    }
    i++;
  }
  return out.includes('\u001b[') ? `${out}\u001b[0m` : out;
}
