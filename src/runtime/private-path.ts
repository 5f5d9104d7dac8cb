/**
 * Checks of the directories and files that hold what another user must not choose: the work
 * directory with its state file (the epoch) and the CURVE key files (who is admitted).
 *
 * Another user of the host can create a name in a shared directory before us (a directory, a
 * symbolic link, a FIFO), or rename what a directory it may write holds. So, before anything is
 * read from it:
 * - the **work directory** (and the per-user directory above the default one) must be a
 *   directory, not a symbolic link (`lstat`), owned by this user, and not writable by group or
 *   others (`mode & 0o022` is 0);
 * - a **key directory** and its `clients/` must be owned by this user or root and not writable
 *   by group or others; a symbolic link to one is followed only when this user or root owns it
 *   (key directories are often installed as links);
 * - every **directory above** the work directory must be owned by this user or root and, when
 *   group or others may write to it, carry the sticky bit (like `/tmp`, where nobody else may
 *   rename what we made); a symbolic link on the way must be owned by this user or root. Both the
 *   path as written and its real path are walked;
 * - a **file** is opened with `O_NONBLOCK` (a FIFO cannot block the open) and, for the state
 *   file, `O_NOFOLLOW`; it must then be a regular file (`fstat`), owned by this user (or root, for
 *   key files that an administrator installed), no larger than a bound, and read whole in one
 *   bounded read.
 *
 * Directories are created one level at a time, each with mode 0700, in a loop bounded by the
 * depth of the path: Node's recursive `mkdir` never ends on a path under `/proc`.
 *
 * Where the platform has no user ids (Windows), the ownership and mode checks are skipped.
 *
 * @module
 */
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readSync, realpathSync, type Stats } from 'node:fs';
import { lstat, open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Deepest path the checks walk or create (a path under Linux's PATH_MAX has fewer levels). */
export const MAX_PATH_DEPTH = 256;

/** The sticky bit: in such a directory only an entry's owner (or the directory's) may rename or remove it. */
const STICKY = 0o1000;

/** The effective user id, or undefined where the platform has none. */
export function effectiveUid(): number | undefined {
  return process.geteuid?.();
}

/** A mode as four octal digits. */
export function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** Why `path` (whose `lstat` is `stats`) is not a private directory of user `uid`; undefined when it is. */
export function privateDirectoryProblem(path: string, stats: Stats, uid: number | undefined): string | undefined {
  if (stats.isSymbolicLink()) return `${path} is a symbolic link, not a directory (whoever made it would choose where the files go)`;
  if (!stats.isDirectory()) return `${path} is not a directory`;
  if (uid === undefined) return undefined;
  if (stats.uid !== uid) return `${path} belongs to uid ${stats.uid}, not to this user (uid ${uid})`;
  if ((stats.mode & 0o022) !== 0) return `${path} has mode ${modeText(stats.mode)}: group or others may write to it`;
  return undefined;
}

/** Why the directory above a private one (its `lstat` is `stats`) would let another user replace it; undefined when it would not. */
function ancestorProblem(path: string, stats: Stats, uid: number): string | undefined {
  if (stats.uid !== uid && stats.uid !== 0) {
    const what = stats.isSymbolicLink() ? 'a symbolic link' : 'a directory above it';
    return `${path} is ${what} owned by uid ${stats.uid}, neither this user (uid ${uid}) nor root`;
  }
  if (stats.isDirectory() && (stats.mode & 0o022) !== 0 && (stats.mode & STICKY) === 0) {
    return `${path} has mode ${modeText(stats.mode)}: group or others may rename what it holds (no sticky bit)`;
  }
  return undefined;
}

/** `path` and every directory above it, up to the root, nearest first (bounded). */
function upward(path: string): string[] {
  const out: string[] = [];
  let p = path;
  for (let depth = 0; depth < MAX_PATH_DEPTH; depth++) {
    out.push(p);
    const up = dirname(p);
    if (up === p) return out;
    p = up;
  }
  throw new Error(`${path} is nested more than ${MAX_PATH_DEPTH} levels deep`);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Creates `dir` and any missing directory above it, one level at a time with mode 0700; an
 * existing entry is left as it is (the checks judge it). Throws an Error naming the level that
 * could not be made.
 */
export function makeDirectoriesSync(dir: string): void {
  const missing: string[] = [];
  for (const p of upward(resolve(dir))) {
    try {
      lstatSync(p);
      break; // exists (as whatever it is)
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cannot inspect ${p}: ${errorText(error)}`, { cause: error });
      missing.push(p);
    }
  }
  for (const p of missing.reverse()) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`cannot create the directory ${p}: ${errorText(error)}`, { cause: error });
    }
  }
}

/**
 * Why `dir` cannot hold private state: the first problem found, as a sentence that names the
 * directory and the reason; undefined when `dir` (and, with `privateParent`, the directory above
 * it too) is a private directory of this user and no directory above it lets another user replace
 * it (see the module's description).
 */
export function workDirectoryProblem(dir: string, options: { readonly privateParent?: boolean } = {}): string | undefined {
  const uid = effectiveUid();
  const leaf = resolve(dir);
  const privates = options.privateParent === true ? [leaf, dirname(leaf)] : [leaf];
  for (const path of privates) {
    let stats: Stats;
    try {
      stats = lstatSync(path);
    } catch (error) {
      return `cannot inspect ${path}: ${errorText(error)}`;
    }
    const own = privateDirectoryProblem(path, stats, uid);
    if (own !== undefined) return own;
  }
  if (uid === undefined) return undefined;
  try {
    const above = dirname(privates.at(-1) as string);
    // As written (each symbolic link on the way must be ours or root's), then as it really is.
    for (const path of [...upward(above), ...upward(realpathSync(above))]) {
      const problem = ancestorProblem(path, lstatSync(path), uid);
      if (problem !== undefined) return problem;
    }
  } catch (error) {
    return `cannot inspect the directories above ${leaf}: ${errorText(error)}`;
  }
  return undefined;
}

/**
 * Why `dir` cannot be trusted with key files: the first problem, naming the directory and the
 * reason; undefined when it is a directory owned by this user or root that group and others
 * cannot write to. A symbolic link is followed when this user or root owns it (key directories
 * are often installed as links), and the directory it leads to is checked.
 */
export async function keyDirectoryProblem(dir: string): Promise<string | undefined> {
  const uid = effectiveUid();
  try {
    const link = await lstat(dir);
    if (link.isSymbolicLink() && uid !== undefined && link.uid !== uid && link.uid !== 0) {
      return `${dir} is a symbolic link owned by uid ${link.uid}, neither this user (uid ${uid}) nor root`;
    }
    const stats = link.isSymbolicLink() ? await stat(dir) : link;
    if (!stats.isDirectory()) return `${dir} is not a directory`;
    if (uid === undefined) return undefined;
    if (stats.uid !== uid && stats.uid !== 0) return `${dir} belongs to uid ${stats.uid}, neither this user (uid ${uid}) nor root`;
    if ((stats.mode & 0o022) !== 0) return `${dir} has mode ${modeText(stats.mode)}: group or others may write to it (and so add or replace keys)`;
    return undefined;
  } catch (error) {
    return `cannot inspect ${dir}: ${errorText(error)}`;
  }
}

/** What {@link readCheckedFile} requires of a file. */
export interface FileRule {
  /** Largest accepted size in bytes. */
  readonly maxBytes: number;
  /** Refuse a symbolic link (`O_NOFOLLOW`) instead of following it. */
  readonly noFollow: boolean;
  /** Also accept a file owned by root (installed by an administrator). */
  readonly rootMayOwn: boolean;
  /** Mode bits that must be clear (e.g. 0o077 for a secret, 0o022 for a file others must not change). */
  readonly forbiddenMode: number;
}

/** Why a file with these `stats` breaks `rule`; undefined when it does not. */
export function fileProblem(path: string, stats: Stats, rule: FileRule): string | undefined {
  if (!stats.isFile()) return `${path} is not a regular file (${kindOf(stats)})`;
  const uid = effectiveUid();
  if (uid !== undefined && stats.uid !== uid && !(rule.rootMayOwn && stats.uid === 0)) {
    return `${path} belongs to uid ${stats.uid}, not to this user (uid ${uid})${rule.rootMayOwn ? ' or root' : ''}`;
  }
  if (uid !== undefined && (stats.mode & rule.forbiddenMode) !== 0) {
    const who = (rule.forbiddenMode & 0o044) !== 0 ? 'group or others may read or write it' : 'group or others may write to it';
    return `${path} has mode ${modeText(stats.mode)}: ${who}`;
  }
  if (stats.size > rule.maxBytes) return `${path} is ${stats.size} bytes, more than the ${rule.maxBytes} allowed`;
  return undefined;
}

function kindOf(stats: Stats): string {
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isDirectory()) return 'a directory';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSymbolicLink()) return 'a symbolic link';
  return 'not a file';
}

/** Open flags of a checked read: a FIFO or device cannot block the open; optionally no symbolic link. */
function readFlags(rule: FileRule): number {
  return constants.O_RDONLY | constants.O_NONBLOCK | (rule.noFollow ? constants.O_NOFOLLOW : 0);
}

function openProblem(path: string, error: unknown, rule: FileRule): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (rule.noFollow && code === 'ELOOP') return Object.assign(new Error(`${path} is a symbolic link (refused)`, { cause: error }), { code });
  return Object.assign(new Error(`cannot open ${path}: ${errorText(error)}`, { cause: error }), { code });
}

/**
 * Reads a file after checking it (see {@link FileRule}), synchronously. Throws an Error whose
 * `code` is the file system's (`ENOENT` for a missing file) or undefined for a refused file.
 */
export function readCheckedFileSync(path: string, rule: FileRule): Buffer {
  let fd: number;
  try {
    fd = openSync(path, readFlags(rule));
  } catch (error) {
    throw openProblem(path, error, rule);
  }
  try {
    const stats = fstatSync(fd);
    const problem = fileProblem(path, stats, rule);
    if (problem !== undefined) throw new Error(problem);
    // One byte more than the file's size, to see it grow; never more than the bound allows.
    const buffer = Buffer.allocUnsafe(Math.min(stats.size, rule.maxBytes) + 1);
    let length = 0;
    // Bounded: at most maxBytes + 1 bytes, and a read of 0 bytes ends it.
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = readSync(fd, buffer, length, buffer.length - length, null);
    if (length > stats.size) throw new Error(`${path} changed while it was read`);
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}

/** {@link readCheckedFileSync}, off the event loop's thread. */
export async function readCheckedFile(path: string, rule: FileRule): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, readFlags(rule));
  } catch (error) {
    throw openProblem(path, error, rule);
  }
  try {
    const stats = await handle.stat();
    const problem = fileProblem(path, stats, rule);
    if (problem !== undefined) throw new Error(problem);
    const buffer = Buffer.allocUnsafe(Math.min(stats.size, rule.maxBytes) + 1);
    let length = 0;
    for (let n = -1; n !== 0 && length < buffer.length; length += n) n = (await handle.read(buffer, length, buffer.length - length, null)).bytesRead;
    if (length > rule.maxBytes || length > stats.size) throw new Error(`${path} changed while it was read`);
    return buffer.subarray(0, length);
  } finally {
    await handle.close();
  }
}
