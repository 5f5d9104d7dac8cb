/**
 * CURVE key files: what `failover-watch keygen` writes and `readCurveKeys()` reads.
 *
 * A key directory (mode 0700) holds the cluster's server pair and one pair per node:
 *
 * ```
 * DIR/server.key          the cluster's server pair (every node needs it: any node may become primary)
 * DIR/clients/NAME.key    node NAME's client pair
 * DIR/clients/NAME.pub    node NAME's public key only (what the primary admits)
 * ```
 *
 * Every file is written with mode 0600, never over an existing file unless asked, and holds
 * `public-key = "<Z85>"` and, in `.key` files, `secret-key = "<Z85>"` lines (the format of
 * ZeroMQ's zcert, quoted). No error or message of this module contains a key.
 *
 * Reading checks before it trusts (see `private-path.ts`), like ssh does: the key directory and
 * its `clients/` (whose every `.pub` is admitted) must be owned by this user or root and not
 * writable by group or others; every file must be a regular file owned by this user or root, at
 * most {@link MAX_KEY_FILE_BYTES}, that group and others cannot write (nor read, when it holds a
 * secret key). Files are opened with `O_NONBLOCK`, so a FIFO is refused instead of blocking.
 * `keygen` creates directories one level at a time (bounded, unlike a recursive mkdir under
 * `/proc`) and refuses a directory it did not make private.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as zmq from 'zeromq';
import { FailoverError } from '../../errors.js';
import { isZ85Key, type CurveOptions } from './curve.js';
import { keyDirectoryProblem, MAX_PATH_DEPTH, readCheckedFile, type FileRule } from '../../runtime/private-path.js';

/** Largest key file read, in bytes (one holds about 200). */
export const MAX_KEY_FILE_BYTES = 16384;

/** What a file holding a secret key must be: ours (or root's), read by nobody else. */
const SECRET_RULE: FileRule = { maxBytes: MAX_KEY_FILE_BYTES, noFollow: false, rootMayOwn: true, forbiddenMode: 0o077 };
/** What a file holding a public key to admit must be: ours (or root's), changed by nobody else. */
const PUBLIC_RULE: FileRule = { maxBytes: MAX_KEY_FILE_BYTES, noFollow: false, rootMayOwn: true, forbiddenMode: 0o022 };

/** A CURVE key pair, Z85. */
export interface CurveKeyPair {
  readonly publicKey: string;
  readonly secretKey: string;
}

/** Where `readCurveKeys` finds the keys: a key directory and this node's name... */
export interface CurveKeyDirectory {
  /** A directory written by `failover-watch keygen --out DIR`. */
  readonly dir: string;
  /** This node's key name (`--name`): its pair is `DIR/clients/NAME.key`. */
  readonly name: string;
}

/** ...or explicit files. */
export interface CurveKeyFiles {
  /** The cluster's server pair (a `.key` file). */
  readonly serverKeyFile: string;
  /** This node's client pair (a `.key` file). */
  readonly keyFile: string;
  /** Files holding the public keys to admit (`.pub` or `.key`; only the public key is read). */
  readonly allowedClientKeyFiles: readonly string[];
}

/** Names accepted for a node's key files. */
export const KEY_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/** Paths of the files in a key directory. */
export function keyPaths(dir: string, name?: string): { server: string; clients: string; key?: string; pub?: string } {
  const clients = join(dir, 'clients');
  return {
    server: join(dir, 'server.key'),
    clients,
    ...(name === undefined ? {} : { key: join(clients, `${name}.key`), pub: join(clients, `${name}.pub`) }),
  };
}

/** A fresh key pair from libzmq (crypto_box). */
export function generateKeyPair(): CurveKeyPair {
  return zmq.curveKeyPair();
}

/** The text of a key file: the secret line only when `pair` has one. */
export function formatKeyFile(what: string, pair: { publicKey: string; secretKey?: string }): string {
  const lines = [
    `# failover-watch CURVE ${pair.secretKey === undefined ? 'public key' : 'key pair'}: ${what}`,
    pair.secretKey === undefined ? '# Give it to the cluster\'s nodes to admit this one.' : '# Secret: keep this file mode 0600 and never share it.',
    `public-key = "${pair.publicKey}"`,
  ];
  if (pair.secretKey !== undefined) lines.push(`secret-key = "${pair.secretKey}"`);
  return `${lines.join('\n')}\n`;
}

/** Parses a key file's text; undefined fields were absent. Never throws, never echoes the text. */
export function parseKeyFile(text: string): { publicKey?: string; secretKey?: string } {
  const out: { publicKey?: string; secretKey?: string } = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(public-key|secret-key)\s*=\s*"([^"]*)"\s*$/.exec(line);
    if (m === null) continue;
    if (m[1] === 'public-key') out.publicKey = m[2] as string;
    else out.secretKey = m[2] as string;
  }
  return out;
}

/**
 * Writes `text` to `path` with mode 0600. Refuses to replace an existing file unless
 * `overwrite`; then it replaces it atomically (write aside, rename). Throws the file system's
 * error otherwise (the caller names the file).
 * @returns false when the file exists and `overwrite` is off.
 */
export async function writeSecretFile(path: string, text: string, overwrite: boolean): Promise<boolean> {
  const target = overwrite ? `${path}.${randomBytes(6).toString('hex')}.tmp` : path;
  let handle;
  try {
    handle = await open(target, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST' && !overwrite) return false;
    throw error;
  }
  try {
    await handle.chmod(0o600); // whatever the umask
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  if (overwrite) {
    try {
      await rename(target, path);
    } catch (error) {
      await unlink(target).catch(() => undefined);
      throw error;
    }
  }
  return true;
}

/**
 * Creates a directory only this user can enter (0700), and any missing parent, one level at a
 * time (a bounded loop: Node's recursive mkdir never returns under `/proc`); tightens an existing
 * one to 0700. Throws when the directory is not one this user may trust with keys (owned by
 * another user, a link owned by another user, or open to group or others).
 */
export async function makePrivateDirectory(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let p = resolve(dir), depth = 0; ; p = dirname(p), depth++) {
    if (depth >= MAX_PATH_DEPTH) throw new Error(`${dir} is nested more than ${MAX_PATH_DEPTH} levels deep`);
    try {
      await lstat(p);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      missing.push(p);
      if (dirname(p) === p) break;
    }
  }
  for (const p of missing.reverse()) {
    try {
      await mkdir(p, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  await chmod(dir, 0o700);
  const problem = await keyDirectoryProblem(dir);
  if (problem !== undefined) throw new Error(problem);
}

async function readKeyFile(path: string, needSecret: boolean): Promise<{ publicKey: string; secretKey?: string }> {
  let text: string;
  try {
    text = (await readCheckedFile(path, needSecret ? SECRET_RULE : PUBLIC_RULE)).toString('utf8');
  } catch (error) {
    const message = (error as Error).message;
    const hint = needSecret && message.includes(' has mode ') ? ' (it holds a secret key); run `chmod 600` on it' : '';
    throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', `cannot use the CURVE key file: ${message}${hint}`, {
      cause: error,
    });
  }
  const parsed = parseKeyFile(text);
  if (!isZ85Key(parsed.publicKey)) {
    throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', `${path} has no valid public-key line (a quoted 40-character Z85 key)`);
  }
  if (needSecret && !isZ85Key(parsed.secretKey)) {
    throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', `${path} has no valid secret-key line (a quoted 40-character Z85 key)`);
  }
  return needSecret ? { publicKey: parsed.publicKey, secretKey: parsed.secretKey as string } : { publicKey: parsed.publicKey };
}

/**
 * Reads a node's CURVE settings (the `curve` watcher option) from key files: from a key
 * directory written by `failover-watch keygen` (every `clients/*.pub` in it is admitted), or from
 * explicit files. Throws `ERR_FAILOVER_INVALID_OPTION` naming the file (never its content) when a
 * file is missing, malformed, or holds a secret key readable by group or others.
 *
 * @example
 * const watcher = new Watcher({
 *   endpoint: 'tcp://10.0.0.5:5555',
 *   curve: await readCurveKeys({ dir: '/etc/myapp/curve', name: 'node-a' }),
 * });
 */
export async function readCurveKeys(source: CurveKeyDirectory | CurveKeyFiles): Promise<CurveOptions> {
  let files: CurveKeyFiles;
  if ('dir' in source) {
    if (typeof source.name !== 'string' || !KEY_NAME.test(source.name)) {
      throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', `readCurveKeys: name must match ${KEY_NAME}, received ${JSON.stringify(String(source.name)).slice(0, 80)}`);
    }
    const paths = keyPaths(source.dir, source.name);
    // Whoever may write clients/ chooses who is admitted: check both directories before listing.
    for (const dir of [source.dir, paths.clients]) {
      const problem = await keyDirectoryProblem(dir);
      if (problem !== undefined) throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', `cannot use the CURVE key directory: ${problem}`);
    }
    let entries: string[];
    try {
      entries = await readdir(paths.clients);
    } catch (error) {
      throw new FailoverError('ERR_FAILOVER_INVALID_OPTION', `cannot list the CURVE key directory ${paths.clients}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    files = {
      serverKeyFile: paths.server,
      keyFile: paths.key as string,
      allowedClientKeyFiles: entries.filter((e) => e.endsWith('.pub')).sort().map((e) => join(paths.clients, e)),
    };
  } else {
    files = source;
  }
  const serverPair = await readKeyFile(files.serverKeyFile, true);
  const own = await readKeyFile(files.keyFile, true);
  const allowed: string[] = [];
  for (const file of files.allowedClientKeyFiles) allowed.push((await readKeyFile(file, false)).publicKey);
  return {
    serverPublicKey: serverPair.publicKey,
    serverSecretKey: serverPair.secretKey as string,
    publicKey: own.publicKey,
    secretKey: own.secretKey as string,
    allowedClientKeys: allowed,
  };
}

/** What one {@link writeCurveKeys} call did to each file. */
export interface CurveKeysWritten {
  readonly dir: string;
  readonly files: ReadonlyArray<{
    readonly path: string;
    readonly kind: 'server pair' | 'client pair' | 'client public key';
    readonly action: 'written' | 'kept';
  }>;
}

/**
 * What `failover-watch keygen` does: makes `dir` (0700) with the cluster's server pair if it has
 * none (an existing one is kept), and with `name` that node's client pair and public key file.
 * Returns `{ exists }` when the node's pair exists and `force` is off; throws file system errors.
 */
export async function writeCurveKeys(dir: string, name: string | undefined, force: boolean): Promise<CurveKeysWritten | { exists: string }> {
  if (name !== undefined && !KEY_NAME.test(name)) throw new RangeError(`key name must match ${KEY_NAME}`);
  const paths = keyPaths(dir, name);
  await makePrivateDirectory(dir);
  await makePrivateDirectory(paths.clients);
  const files: Array<CurveKeysWritten['files'][number]> = [];
  if (name !== undefined) {
    const key = paths.key as string;
    const pub = paths.pub as string;
    const pair = generateKeyPair();
    if (!(await writeSecretFile(key, formatKeyFile(`client ${name}`, pair), force))) return { exists: key };
    files.push({ path: key, kind: 'client pair', action: 'written' });
    await writeSecretFile(pub, formatKeyFile(`client ${name}`, { publicKey: pair.publicKey }), true);
    files.push({ path: pub, kind: 'client public key', action: 'written' });
  }
  const wroteServer = await writeSecretFile(paths.server, formatKeyFile('server (shared by the cluster)', generateKeyPair()), false);
  files.unshift({ path: paths.server, kind: 'server pair', action: wroteServer ? 'written' : 'kept' });
  return { dir, files };
}
