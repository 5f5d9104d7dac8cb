/**
 * The unit record: the successor's fence on the same host.
 *
 * When `failover-watch run` starts its command it writes, atomically (a temporary file renamed
 * over the record, mode 0600, in the cluster's workdir, checked like the state file's: the user's
 * own directory that nobody else can write or replace, see `private-path.ts`),
 * which process group runs it: the group number, the leader's start time, the host, the user and
 * the supervisor's pid. A clean stop removes the record once the group is empty. Before any `run`
 * of the same cluster starts its command, it reads the record: if it names a group on this host
 * that still has a running member, it sends SIGKILL to the group and waits (bounded) until the
 * group is empty, and refuses to start the command while it is not.
 *
 * This holds whatever killed the previous supervisor and its guardian, both at once included: the
 * record is on disk before the command may run (see the start gate in `child.ts`), and it is read
 * by the process about to start the next command. It cannot reach another host: across hosts the
 * guardian (and, after it, the Redis lease's time to live) is the bound.
 *
 * @module
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { inDefaultWorkdirParent } from '../../runtime/workdir.js';
import { effectiveUid, makeDirectoriesSync, readCheckedFileSync, workDirectoryProblem, type FileRule } from '../../runtime/private-path.js';
import { groupGone, liveMembers, signalGroup, waitGroupEmpty, type GroupIdentity } from './process-group.js';

export const UNIT_RECORD_NAME = 'failover-watch.unit.json';

/** A record is small; it must be this user's regular file that nobody else may write. */
const RECORD_RULE: FileRule = { maxBytes: 4096, noFollow: true, rootMayOwn: false, forbiddenMode: 0o022 };

/** How long a fence waits for the killed group to be empty, ms. */
export const FENCE_TIMEOUT = 2000;

export interface UnitRecord extends GroupIdentity {
  /** The cluster: the ZeroMQ endpoint, or the Redis server and project. */
  readonly cluster: string;
  readonly host: string;
  readonly uid: number | undefined;
  readonly supervisorPid: number;
  readonly startedAt: number;
}

/** What a fence found and did. */
export type FenceResult =
  | { readonly action: 'none' }
  | { readonly action: 'killed'; readonly record: UnitRecord; readonly pids: readonly number[] }
  | { readonly action: 'skipped'; readonly record: UnitRecord; readonly detail: string };

export class UnitRecordFile {
  readonly path: string;
  readonly #dir: string;
  readonly #cluster: string;

  constructor(dir: string, cluster: string) {
    this.#dir = dir;
    this.#cluster = cluster;
    this.path = join(dir, UNIT_RECORD_NAME);
  }

  /** Why the directory cannot be trusted with the record (see private-path.ts); undefined when it can. */
  directoryProblem(): string | undefined {
    // The default workdir's per-user directory is as private as the workdir itself.
    return workDirectoryProblem(this.#dir, { privateParent: inDefaultWorkdirParent(this.#dir) });
  }

  /** The record, or undefined if there is none or it cannot be read as one (a file that is not private included). */
  read(): UnitRecord | undefined {
    let value: Partial<UnitRecord>;
    try {
      value = JSON.parse(readCheckedFileSync(this.path, RECORD_RULE).toString('utf8')) as Partial<UnitRecord>;
    } catch {
      return undefined;
    }
    if (typeof value !== 'object' || value === null) return undefined;
    const { pgid, leaderStart, cluster, host, uid, supervisorPid, startedAt } = value;
    if (!Number.isSafeInteger(pgid) || (pgid as number) <= 1) return undefined;
    if (leaderStart !== undefined && leaderStart !== null && !Number.isSafeInteger(leaderStart)) return undefined;
    if (typeof cluster !== 'string' || typeof host !== 'string') return undefined;
    return {
      pgid: pgid as number,
      leaderStart: leaderStart ?? undefined,
      cluster,
      host,
      uid: typeof uid === 'number' ? uid : undefined,
      supervisorPid: Number(supervisorPid) || 0,
      startedAt: Number(startedAt) || 0,
    };
  }

  /** Records `group` as this cluster's running unit. Throws if the directory is not ours or the write fails. */
  write(group: GroupIdentity, startedAt: number): void {
    this.#ensureDirectory();
    const record: UnitRecord = {
      pgid: group.pgid,
      leaderStart: group.leaderStart,
      cluster: this.#cluster,
      host: hostname(),
      uid: effectiveUid(),
      supervisorPid: process.pid,
      startedAt,
    };
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify(record)}\n`, { mode: 0o600, flag: 'wx' });
      renameSync(tmp, this.path);
    } catch (error) {
      rmSync(tmp, { force: true });
      throw error;
    }
  }

  /** Removes the record if it still names `group` (never another unit's). Never throws. */
  remove(group: GroupIdentity): void {
    const record = this.read();
    if (record === undefined || record.pgid !== group.pgid || record.leaderStart !== group.leaderStart) return;
    try {
      rmSync(this.path, { force: true });
    } catch {
      // A leftover record is harmless: the next fence finds its group gone.
    }
  }

  /**
   * If the record names a group of this cluster on this host that still runs, kills it and waits
   * until it is empty. Rejects when it is still not empty after {@link FENCE_TIMEOUT}: the command
   * must then not start.
   */
  async fence(): Promise<FenceResult> {
    // Whoever could write the directory could name any group of ours: never act on such a record.
    if (this.directoryProblem() !== undefined) return { action: 'none' };
    const record = this.read();
    if (record === undefined) return { action: 'none' };
    if (record.cluster !== this.#cluster) return { action: 'skipped', record, detail: `the record is of another cluster (${record.cluster})` };
    if (record.host !== hostname()) return { action: 'skipped', record, detail: `the previous command ran on ${record.host}` };
    const uid = effectiveUid();
    if (record.uid !== uid) return { action: 'skipped', record, detail: `the record was written by uid ${record.uid}, not ${uid}` };
    // Without the leader's start time a reused pid cannot be told apart (off Linux): never guess.
    if (record.leaderStart === undefined) return { action: 'skipped', record, detail: 'no start time to check the process group against' };
    if (groupGone(record)) return { action: 'none' };
    const pids = await liveMembers(record.pgid);
    if (pids.length === 0) return { action: 'none' };
    signalGroup(record.pgid, 'SIGKILL');
    const left = await waitGroupEmpty(record, FENCE_TIMEOUT);
    if (left.length > 0) {
      throw new Error(
        `the previous command's process group ${record.pgid} still runs (pids ${left.join(', ')}) ${FENCE_TIMEOUT} ms after SIGKILL; not starting the command`,
      );
    }
    return { action: 'killed', record, pids };
  }

  /** The workdir is created 0700 and must pass the same checks as the state file's (private-path.ts). */
  #ensureDirectory(): void {
    makeDirectoriesSync(this.#dir);
    const problem = this.directoryProblem();
    if (problem !== undefined) throw new Error(`work directory refused: ${problem}`);
  }
}
