/**
 * The supervised command as one unit: a process group (the command runs as the leader of its own
 * session, so everything it forks shares its group unless it leaves on purpose with setsid).
 *
 * A group is named by its number (the leader's pid) and the leader's start time (Linux:
 * `/proc/<pid>/stat` field 22). Linux keeps a group's number allocated while any member lives,
 * leader gone or not, so `kill(-pgid)` reaches only our processes as long as the group is not
 * empty; once it is empty the number may be reused, and a process that then holds the leader's
 * pid with another start time shows that the group we knew is gone ({@link groupGone}).
 *
 * A group is empty when none of its members runs: a zombie (dead, not yet reaped by whoever
 * inherited it, which some container init processes never do) does not count, so emptiness is read
 * from `/proc`, not from `kill(-pgid, 0)` alone.
 *
 * @module
 */
import { accessSync, constants } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { procStartOf, statFields } from '../../runtime/process-identity.js';

/** A process group as the supervisor knows it. */
export interface GroupIdentity {
  /** The group's number: its leader's pid. */
  readonly pgid: number;
  /** The leader's start time (clock ticks since boot), or undefined off Linux. */
  readonly leaderStart: number | undefined;
}

/** Sends `signal` to every member of the group. True if any member was signalled; never throws. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  // Never 0 or 1 (our own group, every process), never a negative number.
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** State (field 3) and process group (field 5) of a `/proc/<pid>/stat` text. */
export function parseStateAndGroup(stat: string): { state: string; pgrp: number } | undefined {
  const fields = statFields(stat);
  if (fields === undefined) return undefined;
  const state = fields[0];
  const pgrp = Number(fields[2]);
  if (state === undefined || state.length !== 1 || !Number.isSafeInteger(pgrp)) return undefined;
  return { state, pgrp };
}

/** False only when the kernel says the group has no member at all (ESRCH); EPERM means members of another user. */
function mayHaveMembers(pgid: number): boolean {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

const DEAD_STATES = new Set(['Z', 'X', 'x']);

/**
 * The pids of the group's members that still run (zombies left out), in ascending order. Reads
 * `/proc` only when `kill(-pgid, 0)` says the group has members; off Linux that answer is all.
 */
export async function liveMembers(pgid: number): Promise<number[]> {
  if (!mayHaveMembers(pgid)) return [];
  if (process.platform !== 'linux') return [pgid];
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [pgid];
  }
  const live: number[] = [];
  await Promise.all(
    entries.map(async (name) => {
      if (!/^\d+$/.test(name)) return;
      let stat: string;
      try {
        stat = await readFile(`/proc/${name}/stat`, 'utf8');
      } catch {
        return; // gone meanwhile
      }
      const parsed = parseStateAndGroup(stat);
      if (parsed !== undefined && parsed.pgrp === pgid && !DEAD_STATES.has(parsed.state)) live.push(Number(name));
    }),
  );
  return live.sort((a, b) => a - b);
}

/**
 * True when the group we knew can no longer have a member: its number is free, or its leader's
 * pid now belongs to another process (reused, which Linux allows only once the group was empty).
 */
export function groupGone(group: GroupIdentity): boolean {
  if (!mayHaveMembers(group.pgid)) return true;
  if (group.leaderStart === undefined) return false;
  const start = procStartOf(group.pgid);
  return start !== undefined && start !== group.leaderStart;
}

/**
 * Waits until no member of the group runs, polling `/proc` (1 ms at first, then every 16 ms at
 * most). Resolves with the members still running when `timeout` ms have passed (empty: gone).
 */
export async function waitGroupEmpty(group: GroupIdentity, timeout: number): Promise<number[]> {
  const deadline = performance.now() + timeout;
  let pause = 1;
  for (;;) {
    if (groupGone(group)) return [];
    const live = await liveMembers(group.pgid);
    if (live.length === 0) return [];
    if (performance.now() >= deadline) return live;
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 16);
  }
}

let setpriv: string | null | undefined;

/** util-linux `setpriv`, or undefined when it is not installed (looked up once, Linux only). */
export function findSetpriv(): string | undefined {
  if (setpriv === undefined) {
    setpriv = null;
    if (process.platform === 'linux') {
      const dirs = [...(process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/')), '/usr/bin', '/bin'];
      for (const dir of dirs) {
        try {
          accessSync(`${dir}/setpriv`, constants.X_OK);
          setpriv = `${dir}/setpriv`;
          break;
        } catch {
          // not here
        }
      }
    }
  }
  return setpriv ?? undefined;
}

/**
 * `argv` run through `setpriv --pdeathsig SIGNAL`, so that the process gets SIGNAL when the
 * thread that spawned it (run's main thread) dies; `argv` unchanged when setpriv is missing.
 */
export function withParentDeathSignal(signal: 'KILL' | 'URG', argv: readonly string[]): string[] {
  const path = findSetpriv();
  return path === undefined ? [...argv] : [path, '--pdeathsig', signal, '--', ...argv];
}
