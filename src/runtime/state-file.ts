/**
 * The state file in `workdir`: the highest epoch taken and who took it, so epochs keep growing
 * across restarts.
 *
 * A takeover writes it before calling `onPromote`, so its speed is the takeover's. It is written
 * in place, in one `pwrite` of a record padded with spaces to whole 512-byte blocks (and to the
 * file's current size at least, so nothing is ever cut), which costs about a tenth of a
 * millisecond on a host that was idle; a temporary file renamed over it cost half a millisecond
 * or more on ext4, on the clock of every crash failover. The data is then flushed to disk
 * (`fdatasync`) in the background.
 *
 * Nothing is read or written before the work directory, every directory above it and the file
 * itself are checked (`private-path.ts`, {@link StateFile.checkDirectory}): another user of the
 * host must not be able to prepare or replace them and so choose the epoch.
 *
 * A record is never torn by a crash of its writer (one write within one page). Only the endpoint's
 * holder writes it, and takeovers read it only after they bound the endpoint, so a takeover never
 * reads while another process writes. Other readers (a node starting up, a person) might: every
 * record carries a checksum of its content, and a read that does not parse or match it is read
 * again, then reported corrupt; a mix of two records is never taken for a record. A corrupt file
 * still gives the highest epoch that can be made out in it ({@link StateFile.epochFloor}).
 *
 * An epoch above 2^53 - 1 (the largest every node accepts on the wire) is never read as a small
 * one: the read fails with ERR_FAILOVER_EPOCH_EXHAUSTED naming the file, and
 * {@link StateFile.epochFloor} gives 2^53 - 1, so the node refuses to promote rather than start
 * again from epoch 1 (fencing tokens never go backwards; the README says how to reset).
 * Records written by earlier versions (no padding, no checksum) are read as before, and replaced
 * once by rename.
 *
 * @module
 */
import { close, closeSync, constants, fdatasync, fstatSync, lstatSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_EPOCH } from '../core/heartbeat-machine.js';
import { FailoverError } from '../errors.js';
import { inDefaultWorkdirParent } from './workdir.js';
import { fileProblem, makeDirectoriesSync, readCheckedFileSync, workDirectoryProblem, type FileRule } from './private-path.js';

/** What the file holds. */
export interface StateRecord {
  readonly epoch: number;
  readonly primary: { readonly instanceId: string; readonly pid: number; readonly host: string } | null;
  readonly updatedAt: number;
}

export const STATE_FILE_NAME = 'failover-watch.state.json';

/** Records are padded with spaces to a multiple of this many bytes. */
export const STATE_RECORD_BLOCK = 512;

/** Never through a symbolic link: whoever could plant one would choose where epochs go. A FIFO cannot block the open. */
const WRITE_FLAGS = constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Largest state file read (a record is one or two 512-byte blocks). */
export const MAX_STATE_FILE_BYTES = 65536;

/** What the state file must be (see `private-path.ts`): ours, a regular file, no link, bounded. */
const STATE_FILE_RULE: FileRule = { maxBytes: MAX_STATE_FILE_BYTES, noFollow: true, rootMayOwn: false, forbiddenMode: 0o022 };

/** How long after a write its flush to disk starts (off the takeover's clock). */
const FLUSH_DELAY_MS = 20;

/** Reads of a record that does not parse or check (a write in progress?) before it is called corrupt. */
const READ_ATTEMPTS = 5;

export class StateFile {
  readonly path: string;
  readonly #dir: string;
  #made = false;
  /** Reads done again because the record did not parse or check (a write in progress, or corruption). */
  rereads = 0;
  readonly #flushes = new Set<{ readonly done: Promise<void>; readonly start: () => void }>();

  /** Writes are flushed to disk (off for a scratch file). */
  readonly #durable: boolean;

  /**
   * The state file of `workdir`; with `scratch`, a private file next to it instead (for dry
   * runs: the same code, never the real record), whose writes are not flushed to disk and which
   * {@link remove} deletes.
   */
  constructor(workdir: string, options: { readonly scratch?: boolean } = {}) {
    this.#dir = workdir;
    const path = join(workdir, STATE_FILE_NAME);
    this.#durable = options.scratch !== true;
    this.path = this.#durable ? path : siblingName(path, 'rehearsal');
  }

  /** Deletes a scratch file (never the real state file). Never throws. */
  remove(): void {
    if (this.#durable) return;
    try {
      rmSync(this.path, { force: true });
    } catch {
      // A leftover scratch file is named after this process and harms nothing.
    }
  }

  /**
   * Reads the record; a missing or empty file is epoch 0. A record that does not parse or whose
   * checksum does not match may be a write in progress: it is read again, a few times, before
   * the file is called corrupt (ERR_FAILOVER_STATE_FILE, with the epoch salvaged from it). A
   * record whose epoch is above 2^53 - 1 fails with ERR_FAILOVER_EPOCH_EXHAUSTED (salvaged epoch
   * 2^53 - 1).
   */
  readSync(): StateRecord {
    // Check, then read: nothing is read from a directory another user could have prepared.
    this.#ensureDirectory();
    let problem: unknown;
    let text = '';
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      if (attempt > 0) this.rereads++;
      try {
        text = readCheckedFileSync(this.path, STATE_FILE_RULE).toString('utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { epoch: 0, primary: null, updatedAt: 0 };
        throw new FailoverError('ERR_FAILOVER_STATE_FILE', `cannot read the state file: ${(error as Error).message}`, { cause: error });
      }
      const parsed = parseRecord(text);
      if (parsed instanceof EpochBeyondCeiling) {
        const error = new FailoverError(
          'ERR_FAILOVER_EPOCH_EXHAUSTED',
          `state file ${this.path} holds epoch ${parsed.epoch}, beyond 2^53 - 1 = ${MAX_EPOCH}, the largest valid epoch: ` +
            'no node can take a higher one; to reset the epoch, stop every node and delete every node\'s state file (README, "Resetting the epoch")',
        );
        throw Object.assign(error, { salvagedEpoch: MAX_EPOCH });
      }
      if (parsed !== 'torn' && !(parsed instanceof Error)) return parsed;
      problem = parsed === 'torn' ? new Error('the checksum does not match the record') : parsed;
    }
    const error = new FailoverError('ERR_FAILOVER_STATE_FILE', `corrupt state file ${this.path}`, { cause: problem });
    throw Object.assign(error, { salvagedEpoch: salvageEpoch(text) });
  }

  /**
   * The epoch to build on: the file's, or, when the file is corrupt, the highest epoch that can
   * still be made out in it (so a damaged file never sends epochs back to 0 when some of it
   * survived); 2^53 - 1 when the file holds a larger one. Never throws; `problem` says what went
   * wrong.
   */
  epochFloor(): { readonly epoch: number; readonly problem?: string } {
    try {
      return { epoch: this.readSync().epoch };
    } catch (error) {
      const salvaged = (error as { salvagedEpoch?: number }).salvagedEpoch ?? 0;
      return { epoch: salvaged, problem: `${(error as Error).message}${salvaged > 0 ? ` (epoch ${salvaged} made out in it)` : ''}` };
    }
  }

  /**
   * Makes and checks the work directory ahead of the first {@link writeSync}, so that a takeover's
   * write is only the write itself, and runs the write's code once on a scratch file next to
   * the state file (removed at once): V8 compiles a function on its first call, which cost a
   * takeover's first write about 0.2 ms. Never throws: a problem found here is reported by the
   * write that needs the directory.
   */
  prepare(): void {
    try {
      this.#ensureDirectory();
      // Open it as a write does (an empty file, if none was there, reads as epoch 0).
      closeSync(openSync(this.path, WRITE_FLAGS, 0o600));
      const scratch = siblingName(this.path, 'warm');
      try {
        this.#writeAt(scratch, { epoch: 0, primary: null, updatedAt: 0 }, false);
      } finally {
        rmSync(scratch, { force: true });
      }
    } catch {
      // The write reports it, with its context.
    }
  }

  /**
   * Writes the record in place (see the module's description). The record is padded to the file's current size at least, so
   * nothing is ever cut (a cut interrupted by a crash would leave a corrupt file). A file in the
   * format of earlier versions is replaced once by rename instead: a reader racing an in-place
   * write over a record without a checksum could take the mix for a record. The data is then
   * flushed to disk (fdatasync) in the background, off the caller's clock.
   */
  writeSync(record: StateRecord): void {
    this.#writeAt(this.path, record, this.#durable);
  }

  /** A write; `flush`: to disk, in the background (not for scratch files). */
  #writeAt(path: string, record: StateRecord, flush: boolean): void {
    try {
      this.#ensureDirectory();
      const fd = openSync(path, WRITE_FLAGS, 0o600);
      let flushing = false;
      try {
        const stats = fstatSync(fd);
        const refused = fileProblem(path, stats, STATE_FILE_RULE);
        if (refused !== undefined) throw new Error(refused);
        const size = stats.size;
        if (size % STATE_RECORD_BLOCK !== 0) {
          this.#replace(path, record);
          return;
        }
        const bytes = formatRecord(record, size);
        const written = writeSync(fd, bytes, 0, bytes.length, 0);
        if (written !== bytes.length) throw new Error(`wrote ${written} of ${bytes.length} bytes`);
        if (flush) {
          this.#flushLater(fd);
          flushing = true;
        }
      } finally {
        if (!flushing) closeSync(fd);
      }
    } catch (error) {
      if (error instanceof FailoverError) throw error;
      throw new FailoverError('ERR_FAILOVER_STATE_FILE', `cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Writes whose flush to disk (fdatasync, in the background) has not finished. */
  get pendingFlushes(): number {
    return this.#flushes.size;
  }

  /** Starts every pending flush now and resolves once all are done and their files closed. */
  async settle(): Promise<void> {
    const flushes = [...this.#flushes];
    for (const f of flushes) f.start();
    await Promise.all(flushes.map((f) => f.done));
  }

  /** fdatasync, then close, `fd` a little later: the disk flush must not compete with the takeover under way. */
  #flushLater(fd: number): void {
    let started = false;
    let finished!: () => void;
    const done = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const flush = {
      done,
      start: (): void => {
        if (started) return;
        started = true;
        clearTimeout(timer);
        fdatasync(fd, () => {
          close(fd, () => {
            this.#flushes.delete(flush);
            finished();
          });
        });
      },
    };
    const timer = setTimeout(flush.start, FLUSH_DELAY_MS);
    this.#flushes.add(flush);
  }

  /** Writes the record to a temporary file and renames it over the state file. */
  #replace(path: string, record: StateRecord): void {
    const tmp = siblingName(path, 'tmp');
    try {
      writeFileSync(tmp, formatRecord(record), { mode: 0o600, flag: 'wx' });
      renameSync(tmp, path);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
  }

  /**
   * Creates the work directory if missing and checks it and every directory above it (see
   * `private-path.ts`), and that an existing state file is a regular file of this user; once per
   * instance. Throws ERR_FAILOVER_STATE_FILE naming the directory or file and the reason. Every
   * read and write runs it first; `Watcher.start()` runs it before it reads anything, and then
   * also creates the state file if missing (empty, which reads as epoch 0), so a directory where
   * it cannot be created is refused at start rather than at the first promotion.
   */
  checkDirectory(): void {
    this.#ensureDirectory();
    if (!this.#durable) return;
    try {
      const fd = openSync(this.path, WRITE_FLAGS, 0o600);
      try {
        const refused = fileProblem(this.path, fstatSync(fd), { ...STATE_FILE_RULE, maxBytes: Number.MAX_SAFE_INTEGER });
        if (refused !== undefined) throw new Error(refused);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      throw new FailoverError('ERR_FAILOVER_STATE_FILE', `work directory refused: cannot create the state file ${this.path}: ${(error as Error).message}`, { cause: error });
    }
  }

  #ensureDirectory(): void {
    if (this.#made) return;
    let problem: string | undefined;
    try {
      makeDirectoriesSync(this.#dir);
      // The default workdir's per-user directory is as private as the workdir itself.
      problem = workDirectoryProblem(this.#dir, { privateParent: inDefaultWorkdirParent(this.#dir) });
    } catch (error) {
      problem = (error as Error).message;
    }
    if (problem === undefined) {
      try {
        problem = fileProblem(this.path, lstatSync(this.path), { ...STATE_FILE_RULE, maxBytes: Number.MAX_SAFE_INTEGER });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') problem = `cannot inspect ${this.path}: ${(error as Error).message}`;
      }
    }
    if (problem !== undefined) throw new FailoverError('ERR_FAILOVER_STATE_FILE', `work directory refused: ${problem}`);
    this.#made = true;
  }
}

/**
 * The record as written: its JSON with a checksum, then spaces up to a whole number of blocks
 * (and at least `minSize` bytes), then a newline.
 */
export function formatRecord(record: StateRecord, minSize = 0): Buffer {
  const content = contentOf(record);
  const json = `${content.slice(0, -1)},"check":"${checksum(content)}"}`;
  const length = Buffer.byteLength(json, 'utf8') + 1;
  const size = Math.max(Math.ceil(length / STATE_RECORD_BLOCK) * STATE_RECORD_BLOCK, minSize);
  const bytes = Buffer.alloc(size, 0x20);
  bytes.write(json, 0, 'utf8');
  bytes[size - 1] = 0x0a;
  return bytes;
}

/**
 * The highest `"epoch":N` that can be made out in a damaged file's text (0 if none); 2^53 - 1
 * when a number above it is there (never a smaller epoch than one the file held).
 */
export function salvageEpoch(text: string): number {
  let best = 0;
  for (const m of text.matchAll(/"epoch"\s*:\s*(\d[\d.eE+-]*)/g)) {
    const n = Number(m[1]);
    if (n > MAX_EPOCH) return MAX_EPOCH;
    if (Number.isSafeInteger(n) && n > best) best = n;
  }
  return best;
}

/** What {@link parseRecord} returns for a record whose epoch is a number above 2^53 - 1. */
export class EpochBeyondCeiling extends Error {
  readonly epoch: number;

  constructor(epoch: number) {
    super(`epoch ${epoch} is above 2^53 - 1`);
    this.name = 'EpochBeyondCeiling';
    this.epoch = epoch;
  }
}

/**
 * Parses a record: the record, 'torn' when its checksum does not match, an
 * {@link EpochBeyondCeiling} when its epoch is a number above 2^53 - 1, or the Error that makes
 * it corrupt.
 */
export function parseRecord(text: string): StateRecord | 'torn' | Error {
  // Created, but its first write never happened (its writer died in between): nothing was taken.
  if (text.trim() === '') return { epoch: 0, primary: null, updatedAt: 0 };
  let value: Partial<StateRecord> & { check?: unknown };
  try {
    value = JSON.parse(text) as typeof value;
  } catch (error) {
    return error as Error;
  }
  if (typeof value !== 'object' || value === null) return new Error('not a JSON object');
  if (typeof value.epoch === 'number' && value.epoch > MAX_EPOCH) {
    if (!checkMatches(text, value)) return 'torn';
    return new EpochBeyondCeiling(value.epoch);
  }
  if (typeof value.epoch !== 'number' || !Number.isSafeInteger(value.epoch) || value.epoch < 0) {
    return new Error('epoch is not a non-negative integer');
  }
  const record: StateRecord = { epoch: value.epoch, primary: value.primary ?? null, updatedAt: Number(value.updatedAt) || 0 };
  if (!checkMatches(text, value)) return 'torn';
  return record;
}

/**
 * Whether a record's `check` (if it has one) matches it. PROTOCOL.md 6.6 defines the check over
 * the record's own text: everything before `,"check":"`, closed with `}`, so that a writer in
 * another language need not reproduce this implementation's JSON spacing or key order. This
 * writer's records also match the older definition (over the re-serialized content), which is
 * the same string for them; both are accepted.
 */
function checkMatches(text: string, value: Partial<StateRecord> & { check?: unknown }): boolean {
  if (value.check === undefined) return true;
  const at = text.indexOf(CHECK_MEMBER);
  if (at > 0 && value.check === checksum(`${text.slice(0, at)}}`)) return true;
  return value.check === checksum(contentOf({ epoch: value.epoch as number, primary: value.primary ?? null, updatedAt: value.updatedAt ?? 0 }));
}

/** How the check member starts in a record's text. */
const CHECK_MEMBER = ',"check":"';

function contentOf(record: StateRecord): string {
  const primary = record.primary === null ? null : { instanceId: record.primary.instanceId, pid: record.primary.pid, host: record.primary.host };
  return JSON.stringify({ epoch: record.epoch, primary, updatedAt: record.updatedAt });
}

/** FNV-1a, 32 bits, over the UTF-16 code units; 8 hex digits. Detects a torn read, not an attacker. */
function checksum(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** A name next to `path` that no other process or call picks: `path.PID.RANDOM.suffix`. */
function siblingName(path: string, suffix: string): string {
  return `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.${suffix}`;
}
