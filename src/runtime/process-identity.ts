/**
 * Process identity for fencing: a pid alone can be reused by another program after the original
 * dies, so a process is identified by its pid together with its start time (Linux:
 * `/proc/<pid>/stat` field 22, clock ticks since boot) and the host name.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';

/**
 * The fields of a `/proc/<pid>/stat` text from field 3 (state) on, so that field N is at index
 * N - 3; undefined if it has no command name. The name may contain spaces and parentheses.
 */
export function statFields(stat: string): string[] | undefined {
  const close = stat.lastIndexOf(')');
  return close < 0 ? undefined : stat.slice(close + 2).split(' ');
}

/** Field 22 of a `/proc/<pid>/stat` text, or undefined. */
export function parseProcStart(stat: string): number | undefined {
  const value = Number(statFields(stat)?.[19]);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** The start time of `pid` (or of this process), or undefined if it does not exist or off Linux. Synchronous: one small read. */
export function procStartOf(pid: number | 'self'): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    return parseProcStart(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** This process's start time, or undefined off Linux. */
export function ownProcStart(): number | undefined {
  return procStartOf('self');
}

/**
 * Sends SIGKILL to `pid` only if it is on this host and is still the very process that started
 * at `procStart`. Returns what it did, never throws.
 */
export async function fenceProcess(target: { pid: number; host: string; procStart: number }): Promise<{ ok: boolean; detail: string }> {
  if (process.platform !== 'linux') return { ok: false, detail: 'fencing needs Linux /proc' };
  if (target.host !== hostname()) return { ok: false, detail: `primary runs on ${target.host}, not on this host` };
  if (target.pid === process.pid || target.pid <= 1) return { ok: false, detail: `refusing to signal pid ${target.pid}` };
  let stat: string;
  try {
    stat = await readFile(`/proc/${target.pid}/stat`, 'utf8');
  } catch {
    return { ok: false, detail: `pid ${target.pid} no longer exists` };
  }
  const start = parseProcStart(stat);
  if (start !== target.procStart) {
    return { ok: false, detail: `pid ${target.pid} is another process now (started at ${start}, not ${target.procStart})` };
  }
  try {
    process.kill(target.pid, 'SIGKILL');
    return { ok: true, detail: `sent SIGKILL to pid ${target.pid}` };
  } catch (error) {
    return { ok: false, detail: `cannot signal pid ${target.pid}: ${(error as Error).message}` };
  }
}
