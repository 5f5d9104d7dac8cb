/**
 * CPU time and memory of another process, read from Linux `/proc/<pid>/stat` and
 * `/proc/<pid>/status` (all threads of the process; not its children). Nothing is added to the
 * measured process.
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Whether `/proc` can be read here (Linux). */
export const procAvailable = (): boolean => existsSync('/proc/self/stat');

let clockTicks: number | undefined;

/** Kernel clock ticks per second (`getconf CLK_TCK`; 100 when that cannot be run). */
export function clockTicksPerSecond(): number {
  if (clockTicks !== undefined) return clockTicks;
  try {
    const value = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 }).trim());
    clockTicks = Number.isInteger(value) && value > 0 ? value : 100;
  } catch {
    clockTicks = 100;
  }
  return clockTicks;
}

export interface ProcSample {
  /** Wall-clock ms when read. */
  readonly at: number;
  /** utime + stime, in ms. */
  readonly cpuMs: number;
  /** VmRSS in KiB. */
  readonly rssKiB: number;
  /** VmHWM (peak RSS) in KiB. */
  readonly hwmKiB: number;
}

/** Reads one sample; undefined when the process is gone. */
export function readProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15 (proc(5)).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[14 - 3]);
    const stime = Number(fields[15 - 3]);
    return {
      at: performance.timeOrigin + performance.now(),
      cpuMs: ((utime + stime) * 1000) / clockTicksPerSecond(),
      rssKiB: statusKiB(status, 'VmRSS'),
      hwmKiB: statusKiB(status, 'VmHWM'),
    };
  } catch {
    return undefined;
  }
}

function statusKiB(status: string, key: string): number {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

export interface ThreadsSample {
  /** Wall-clock ms when read. */
  readonly at: number;
  /** Time on a CPU of every thread of the process, ms, from `/proc/<pid>/task/<tid>/schedstat` (nanoseconds). */
  readonly cpuMs: number;
  /** Context switches of every thread (voluntary + involuntary): about one per wake-up. */
  readonly switches: number;
  /** Threads read. */
  readonly threads: number;
}

/**
 * Reads the CPU time of every thread of `pid` from schedstat (nanosecond precision, where
 * `/proc/<pid>/stat` counts clock ticks of 10 ms: too coarse for a process that uses 1 % of a
 * core), and its threads' context switches. Undefined when the process is gone or the kernel
 * has no schedstat. A thread that ended between two samples takes its time with it: compare
 * samples of a process whose threads live on (a process at rest).
 */
export function readThreads(pid: number): ThreadsSample | undefined {
  try {
    const at = performance.timeOrigin + performance.now();
    let ns = 0;
    let switches = 0;
    const tids = readdirSync(`/proc/${pid}/task`);
    for (const tid of tids) {
      const sched = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ');
      ns += Number(sched[0]);
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const match of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)/gm)) switches += Number(match[1]);
    }
    if (!Number.isFinite(ns)) return undefined;
    return { at, cpuMs: ns / 1e6, switches, threads: tids.length };
  } catch {
    return undefined;
  }
}

/**
 * CPU time, in ms, of a Node process's helper threads: every thread but its main one and
 * libzmq's (`ZMQbg/...`). At rest that is V8's background compiler (and, rarely, its garbage
 * collector): what it still spends says the process has not reached its steady state yet.
 * Undefined when the process is gone or the kernel has no schedstat.
 */
export function readHelperCpuMs(pid: number): number | undefined {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      if (tid === String(pid)) continue;
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').startsWith('ZMQbg')) continue;
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    }
    return Number.isFinite(ns) ? ns / 1e6 : undefined;
  } catch {
    return undefined;
  }
}
