/**
 * CURVE keys of a cluster: their shape, their validation and Z85.
 *
 * The cluster shares one server key pair: whoever is primary binds the endpoint as the CURVE
 * server with it. Each node has its own client key pair; every SUB socket is a CURVE client with
 * that pair and the server's public key, and the primary admits only the client public keys it
 * was given (see `zap.ts`).
 *
 * Keys are secrets (public keys too are kept out of messages, as they identify members): no
 * error, log line or status of this package ever contains one. Validation errors name the option
 * and say what is wrong with the value, never what the value is.
 *
 * @module
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { InvalidOptionError } from '../../errors.js';

/** CURVE settings of a watcher: all keys are 40-character Z85 strings. */
export interface CurveOptions {
  /** The cluster's server public key: every SUB checks the primary against it. */
  readonly serverPublicKey: string;
  /** The cluster's server secret key: used when this node binds the endpoint as primary. */
  readonly serverSecretKey: string;
  /** This node's client public key. */
  readonly publicKey: string;
  /** This node's client secret key. */
  readonly secretKey: string;
  /**
   * Client public keys the primary admits (this node's own public key is always admitted). A
   * connection with any other key is refused during the handshake.
   */
  readonly allowedClientKeys: readonly string[];
}

/** Most entries `allowedClientKeys` may hold. */
export const MAX_ALLOWED_CLIENT_KEYS = 10_000;

const Z85_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_INDEX = new Map<string, number>([...Z85_ALPHABET].map((c, i) => [c, i]));

/** Decodes Z85 (length a multiple of 5); undefined when it is not valid Z85. */
export function z85Decode(text: string): Buffer | undefined {
  if (text.length % 5 !== 0) return undefined;
  const out = Buffer.alloc((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = Z85_INDEX.get(text[i + j] as string);
      if (digit === undefined) return undefined;
      value = value * 85 + digit;
    }
    if (value > 0xffffffff) return undefined;
    out.writeUInt32BE(value, o);
  }
  return out;
}

/** Encodes bytes (length a multiple of 4) as Z85. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError('Z85 encodes a multiple of 4 bytes');
  let out = '';
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < view.length; i += 4) {
    let value = view.readUInt32BE(i);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85_ALPHABET[value % 85] + chunk;
      value = Math.floor(value / 85);
    }
    out += chunk;
  }
  return out;
}

// PKCS#8 wrapping of a raw X25519 private key (RFC 8410).
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** The Z85 public key of a Z85 CURVE secret key (X25519 scalar multiplication of the base point). */
export function curvePublicKey(secretKey: string): string {
  const raw = z85Decode(secretKey);
  if (raw === undefined || raw.length !== 32) throw new RangeError('not a Z85 CURVE key');
  const privateKey = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return z85Encode(spki.subarray(spki.length - 32));
}

/** True when `value` is a 40-character Z85 string (a 32-byte CURVE key). */
export function isZ85Key(value: unknown): value is string {
  return typeof value === 'string' && value.length === 40 && z85Decode(value) !== undefined;
}

/** What a rejected key is shown as: its type and length, never its characters. */
function redacted(value: unknown): string {
  if (typeof value === 'string') return `[a string of ${value.length} characters, not shown]`;
  if (value === undefined || value === null) return String(value);
  return `[a value of type ${Array.isArray(value) ? 'array' : typeof value}, not shown]`;
}

const KEY_EXPECTED = 'a 40-character Z85 CURVE key (see `failover-watch keygen`)';

/**
 * Validates the `curve` option once; throws {@link InvalidOptionError} naming the sub-option
 * (e.g. `curve.secretKey`) and never its value. Returns a frozen copy.
 */
export function resolveCurve(input: unknown): CurveOptions {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidOptionError('curve', 'an object { serverPublicKey, serverSecretKey, publicKey, secretKey, allowedClientKeys }', redacted(input));
  }
  const known = new Set(['serverPublicKey', 'serverSecretKey', 'publicKey', 'secretKey', 'allowedClientKeys']);
  for (const key of Object.keys(input)) {
    if (!known.has(key)) throw new InvalidOptionError(`curve.${key}`, `one of ${[...known].join(', ')}`, key);
  }
  const o = input as Record<string, unknown>;
  for (const name of ['serverPublicKey', 'serverSecretKey', 'publicKey', 'secretKey'] as const) {
    if (!isZ85Key(o[name])) throw new InvalidOptionError(`curve.${name}`, KEY_EXPECTED, redacted(o[name]));
  }
  const serverPublicKey = o.serverPublicKey as string;
  const serverSecretKey = o.serverSecretKey as string;
  const publicKey = o.publicKey as string;
  const secretKey = o.secretKey as string;
  if (curvePublicKey(serverSecretKey) !== serverPublicKey) {
    throw new InvalidOptionError('curve.serverSecretKey', 'the secret key of curve.serverPublicKey (the two do not form a pair)', redacted(serverSecretKey));
  }
  if (curvePublicKey(secretKey) !== publicKey) {
    throw new InvalidOptionError('curve.secretKey', 'the secret key of curve.publicKey (the two do not form a pair)', redacted(secretKey));
  }
  const allowed = o.allowedClientKeys;
  if (!Array.isArray(allowed) || allowed.length > MAX_ALLOWED_CLIENT_KEYS) {
    throw new InvalidOptionError('curve.allowedClientKeys', `an array of at most ${MAX_ALLOWED_CLIENT_KEYS} client public keys`, redacted(allowed));
  }
  allowed.forEach((key: unknown, i: number) => {
    if (!isZ85Key(key)) throw new InvalidOptionError(`curve.allowedClientKeys[${i}]`, KEY_EXPECTED, redacted(key));
  });
  const resolved = {
    serverPublicKey,
    serverSecretKey,
    publicKey,
    secretKey,
    allowedClientKeys: Object.freeze([...(allowed as string[])]),
  };
  // Logging or serializing the resolved options (watcher.options) shows no key.
  const shown = `[CURVE keys: not shown; ${resolved.allowedClientKeys.length} allowed client keys]`;
  Object.defineProperty(resolved, 'toJSON', { value: () => shown, enumerable: false });
  Object.defineProperty(resolved, Symbol.for('nodejs.util.inspect.custom'), { value: () => shown, enumerable: false });
  return Object.freeze(resolved);
}
