/**
 * Every process the benchmark started and has not yet seen exit (and every temporary directory
 * it made), so an interrupted run (Ctrl-C, SIGTERM, any exit) can end exactly those processes,
 * by pid, and nothing else.
 *
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import type { Cluster } from '../../harness/cluster.js';

const clusters = new Set<Cluster>();
const children = new Set<ChildProcess>();
const cleanups = new Set<() => void>();

/** Registers a synchronous cleanup (e.g. removing a temp directory) to run if the run is cut short. */
export function trackCleanup(cleanup: () => void): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

export function trackCluster(cluster: Cluster): () => void {
  clusters.add(cluster);
  return () => clusters.delete(cluster);
}

export function trackChild(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** SIGKILLs every tracked process still alive, each by its own pid. */
export function killTracked(): void {
  for (const cluster of clusters) for (const node of cluster.nodes) node.kill('SIGKILL');
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
}

/** For an interrupted run: kill what is alive, then run the pending cleanups. Synchronous. */
export function endTracked(): void {
  killTracked();
  for (const cleanup of cleanups) {
    try {
      cleanup();
    } catch {
      // Best effort on the way out.
    }
  }
  cleanups.clear();
}
