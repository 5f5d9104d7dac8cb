/**
 * How the harness starts its child processes (watcher nodes, comparison nodes).
 *
 * By default a child runs its TypeScript source through tsx, so tests need no build step. When
 * `FW_CHILD_JS_DIR` names a directory holding the compiled harness (the benchmark builds one
 * with `tsconfig.bench.json`), children run that JavaScript on plain node instead: that is how a
 * deployed application runs, and it matters to what is measured. A SIGKILLed process's sockets
 * close only after the kernel has freed its memory, and tsx's loader makes every process about
 * 30 MB larger, which alone adds 2–3 ms to crash detection.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The environment variable naming a directory of compiled harness JavaScript. */
export const CHILD_JS_DIR_ENV = 'FW_CHILD_JS_DIR';

/**
 * The environment variable that sets the watcher children's `rehearsals` option (the bench's
 * `--rehearsals`); unset, they use the library's default.
 */
export const REHEARSALS_ENV = 'FW_CHILD_REHEARSALS';

/** True when children run compiled JavaScript (the bench's default). */
export function childrenCompiled(): boolean {
  return (process.env[CHILD_JS_DIR_ENV] ?? '') !== '';
}

/** Node arguments that run the harness module `tsPath` (an absolute path to a .ts file). */
export function childArgs(tsPath: string): string[] {
  if (childrenCompiled()) {
    const dir = process.env[CHILD_JS_DIR_ENV] as string;
    const js = join(dir, relative(ROOT, tsPath).replace(/\.ts$/, '.js'));
    if (!existsSync(js)) throw new Error(`${CHILD_JS_DIR_ENV}=${dir} has no ${relative(ROOT, js)}: build it with tsconfig.bench.json`);
    return [js];
  }
  return ['--import', 'tsx', tsPath];
}

/** How children run right now, for reports. */
export function childRuntime(): string {
  return childrenCompiled() ? 'node (compiled JavaScript)' : 'node --import tsx (TypeScript source)';
}

/**
 * The environment variable carrying the host clock's offset from the parent to its children
 * (see {@link hostNow}).
 */
export const HOST_CLOCK_ENV = 'FW_HOST_CLOCK_OFFSET';

const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/**
 * One clock for every process of a run, in wall-clock milliseconds: CLOCK_MONOTONIC, which all
 * processes of a host share exactly, plus one offset that the first process computes and its
 * children inherit. `performance.timeOrigin + performance.now()` is not that: each process
 * samples its time origin at start, and on a loaded 2-core host those samples disagree by up to
 * 5 ms between processes (measured: 20 processes started while both cores were busy), which made
 * the chaos checker see a 5 ms "overlap" of two terms that did not overlap.
 */
const inherited = Number(process.env[HOST_CLOCK_ENV]);
const HOST_CLOCK_OFFSET = Number.isFinite(inherited) ? inherited : performance.timeOrigin + performance.now() - monotonicMs();
process.env[HOST_CLOCK_ENV] = String(HOST_CLOCK_OFFSET);

/** Now, on the run's one host clock (see above). */
export const hostNow = (): number => monotonicMs() + HOST_CLOCK_OFFSET;

/**
 * This process's performance clock ahead of the host clock: constant (both are monotonic), but
 * read as two clocks one after the other, and a process descheduled between the two reads gets
 * it wrong by as long as it waited (seen: 6 ms on a loaded host, which made the chaos checker
 * see a graceful handover overlap by 4 ms). So the performance clock is read between two reads
 * of the host clock, a few times, and the tightest pair wins.
 */
function localSkew(): number {
  let best = Number.POSITIVE_INFINITY;
  let skew = 0;
  for (let i = 0; i < 16 && best > 0.05; i++) {
    const before = hostNow();
    const stamp = performance.timeOrigin + performance.now();
    const after = hostNow();
    if (after - before < best) {
      best = after - before;
      skew = stamp - (before + after) / 2;
    }
  }
  return skew;
}
const LOCAL_SKEW = localSkew();

/** A stamp of this process's `performance.timeOrigin + performance.now()` (the library's wallNow), on the host clock. */
export const toHostClock = (stamp: number): number => stamp - LOCAL_SKEW;
