/**
 * Application metadata: a small map of strings a primary announces with its heartbeats (ZeroMQ,
 * PROTOCOL.md section 11) and its lease record (Redis), so that followers learn where the new
 * primary serves (`{ port: '7001' }`) without another discovery channel.
 *
 * One rule for both ends: what `checkMetadata` accepts is what a node may send and what a
 * receiver passes on to its application; anything else is refused whole (an option throws, a
 * peer's field is dropped and counted). Pure: no I/O, never throws.
 *
 * The limits, and why:
 * - at most {@link MAX_METADATA_KEYS} keys: endpoints and a version or two, not a document;
 * - keys of 1-{@link MAX_METADATA_KEY_BYTES} characters of `[A-Za-z0-9._-]`: safe as a CLI
 *   `KEY=VALUE`, a Prometheus label value, a shell variable suffix, and printable in every view;
 * - values of at most {@link MAX_METADATA_VALUE_BYTES} bytes of UTF-8 (empty allowed): a URL fits;
 * - at most {@link MAX_METADATA_BYTES} bytes encoded ({@link metadataSize}): with the other fields
 *   of a heartbeat at their largest (about 900 bytes) the payload stays well within the 4096 bytes
 *   every receiver reads, and a heartbeat every 100 ms stays cheap.
 *
 * @module
 */

/** Application metadata: string keys to string values. */
export type Metadata = Readonly<Record<string, string>>;

/** Most keys in a metadata map. */
export const MAX_METADATA_KEYS = 16;

/** Longest metadata key, in bytes (keys are ASCII: characters too). */
export const MAX_METADATA_KEY_BYTES = 64;

/** Longest metadata value, in bytes of UTF-8. */
export const MAX_METADATA_VALUE_BYTES = 256;

/** Largest metadata map, as counted by {@link metadataSize}. */
export const MAX_METADATA_BYTES = 2048;

/** What a metadata key must match. */
export const METADATA_KEY_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** The key rule, in words (for errors and help). */
export const METADATA_KEY_RULE = `1-${MAX_METADATA_KEY_BYTES} characters of [A-Za-z0-9._-]`;

/** A refusal: which key (undefined for the map as a whole), what was expected, what came. */
export interface MetadataProblem {
  readonly key: string | undefined;
  readonly expected: string;
  readonly received: unknown;
}

/** The outcome of {@link checkMetadata}. */
export type MetadataCheck =
  | { readonly ok: true; readonly metadata: Metadata }
  | ({ readonly ok: false } & MetadataProblem);

/** Bytes of a msgpack `str` header for a string of `bytes` bytes (the smallest width). */
function strHeader(bytes: number): number {
  return bytes <= 31 ? 1 : bytes <= 255 ? 2 : bytes <= 65535 ? 3 : 5;
}

/**
 * The encoded size of a metadata map: a `map 16` header (3 bytes) plus, for every key and every
 * value, its UTF-8 bytes and the smallest msgpack `str` header for them (1 byte up to 31 bytes,
 * 2 up to 255, 3 above). Computed from the strings, not from the bytes a sender chose, so every
 * node counts the same.
 */
export function metadataSize(metadata: Metadata): number {
  let size = 3;
  for (const [key, value] of Object.entries(metadata)) {
    const k = utf8Length(key);
    const v = utf8Length(value);
    size += strHeader(k) + k + strHeader(v) + v;
  }
  return size;
}

/** UTF-8 length of a string (lone surrogates count as the 3 bytes of U+FFFD). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** True for a plain object (`{}` or `Object.create(null)`), not an array, a Map or a class instance. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks a metadata map against the limits above. Returns a frozen copy (keys in the order
 * given) or the first problem. Never throws.
 */
export function checkMetadata(value: unknown): MetadataCheck {
  if (!isPlainObject(value)) {
    return { ok: false, key: undefined, expected: 'a plain object of string keys to string values', received: value };
  }
  const keys = Object.keys(value);
  if (keys.length > MAX_METADATA_KEYS) {
    return { ok: false, key: undefined, expected: `at most ${MAX_METADATA_KEYS} keys`, received: `${keys.length} keys` };
  }
  const copy: Record<string, string> = {};
  for (const key of keys) {
    if (!METADATA_KEY_PATTERN.test(key)) return { ok: false, key, expected: `a key of ${METADATA_KEY_RULE}`, received: key };
    const v = value[key];
    if (typeof v !== 'string') return { ok: false, key, expected: 'a string value', received: v };
    if (utf8Length(v) > MAX_METADATA_VALUE_BYTES) {
      return { ok: false, key, expected: `a value of at most ${MAX_METADATA_VALUE_BYTES} bytes of UTF-8`, received: `${utf8Length(v)} bytes` };
    }
    // A data property even for a key like `__proto__`: never the prototype.
    Object.defineProperty(copy, key, { value: v, enumerable: true, writable: false, configurable: false });
  }
  const size = metadataSize(copy);
  if (size > MAX_METADATA_BYTES) {
    return { ok: false, key: undefined, expected: `at most ${MAX_METADATA_BYTES} bytes encoded`, received: `${size} bytes` };
  }
  return { ok: true, metadata: Object.freeze(copy) };
}

/** Whether two metadata maps (or their absence) hold the same keys and values. */
export function sameMetadata(a: Metadata | undefined, b: Metadata | undefined): boolean {
  if (a === b) return true;
  const ak = a === undefined ? [] : Object.keys(a);
  const bk = b === undefined ? [] : Object.keys(b);
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (!Object.hasOwn(b ?? {}, k) || (b as Metadata)[k] !== (a as Metadata)[k]) return false;
  return true;
}

/** The empty metadata map (frozen). */
export const NO_METADATA: Metadata = Object.freeze({});

/** Renders metadata for people: `port=7001 zone=a`; empty string when there is none. */
export function formatMetadata(metadata: Metadata | undefined): string {
  if (metadata === undefined) return '';
  return Object.entries(metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}
