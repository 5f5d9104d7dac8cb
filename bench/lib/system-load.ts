/**
 * How busy the whole machine was while a scenario ran: load averages and the share of CPU time
 * (all cores, from the first line of Linux `/proc/stat`) that was not idle. The benchmark's own
 * processes count too, so this is context for reading latencies, not a measurement of others.
 *
 * @module
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

interface CpuTimes {
  readonly busy: number;
  readonly total: number;
}

function readCpuTimes(): CpuTimes | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [label, ...rest] = line.trim().split(/\s+/);
    if (label !== 'cpu') return undefined;
    const v = rest.map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

export interface LoadReport {
  readonly cpus: number;
  readonly loadavgAtStart: readonly number[];
  readonly loadavgAtEnd: readonly number[];
  /** Non-idle CPU time over all CPU time during the span, percent (undefined without /proc). */
  readonly cpuBusyPercent: number | undefined;
}

/** Starts observing; call the result to end the span and get the report. */
export function observeLoad(): () => LoadReport {
  const start = readCpuTimes();
  const loadavgAtStart = loadavg();
  return () => {
    const end = readCpuTimes();
    const busy =
      start !== undefined && end !== undefined && end.total > start.total
        ? Math.round(((end.busy - start.busy) / (end.total - start.total)) * 1000) / 10
        : undefined;
    return { cpus: cpus().length, loadavgAtStart, loadavgAtEnd: loadavg(), cpuBusyPercent: busy };
  };
}

/** A one-line description, with a warning when the machine was loaded beyond its CPU count. */
export function describeLoad(load: LoadReport): string {
  const la = (l: readonly number[]): string => l.map((x) => x.toFixed(2)).join('/');
  const busy = load.cpuBusyPercent === undefined ? '' : `, all-core CPU busy ${load.cpuBusyPercent.toFixed(1)}%`;
  const loaded = Math.max(load.loadavgAtStart[0] ?? 0, load.loadavgAtEnd[0] ?? 0) > load.cpus;
  return `machine load: loadavg ${la(load.loadavgAtStart)} -> ${la(load.loadavgAtEnd)} on ${load.cpus} CPUs${busy}${
    loaded ? ' — WARNING: more runnable work than CPUs; latencies are inflated by other processes' : ''
  }`;
}
