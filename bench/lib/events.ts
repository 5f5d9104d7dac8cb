/**
 * Bounded waits on watcher-process events that report a timeout as a value (`undefined`) rather
 * than a rejection, and leave no timer or listener behind once settled, so a benchmark can count
 * a timed-out trial as a failure and still exit on its own.
 *
 * @module
 */
import type { NodeEvent, WatcherProcess } from '../../harness/cluster.js';

export type EventPredicate = (e: NodeEvent) => boolean;

/** The first event of `node` (already received, or arriving within `timeout` ms) matching `pred`. */
export function waitEvent(node: WatcherProcess, pred: EventPredicate, timeout: number): Promise<NodeEvent | undefined> {
  const seen = node.events.find(pred);
  if (seen !== undefined) return Promise.resolve(seen);
  return raceEvent([node], pred, timeout).then((hit) => hit?.event);
}

/**
 * The first event arriving from now on, from any of `nodes`, that matches `pred`, with the node
 * that sent it; undefined after `timeout` ms. Register it before triggering what it waits for.
 */
export function raceEvent(
  nodes: readonly WatcherProcess[],
  pred: EventPredicate,
  timeout: number,
): Promise<{ node: WatcherProcess; event: NodeEvent } | undefined> {
  return new Promise((resolve) => {
    const detach: Array<() => void> = [];
    const done = (hit: { node: WatcherProcess; event: NodeEvent } | undefined): void => {
      clearTimeout(timer);
      for (const d of detach) d();
      resolve(hit);
    };
    const timer = setTimeout(() => done(undefined), timeout);
    for (const node of nodes) {
      const listener = (raw: unknown): void => {
        const event = raw as NodeEvent;
        if (pred(event)) done({ node, event });
      };
      node.child.on('message', listener);
      detach.push(() => node.child.off('message', listener));
    }
  });
}

/** The process's exit, or undefined when it did not end within `timeout` ms. */
export function waitExit(
  node: WatcherProcess,
  timeout: number,
): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), timeout);
  });
  return Promise.race([node.exited, late]).finally(() => clearTimeout(timer));
}

/** A bounded pause (used only to let a fresh cluster settle between trials, never to wait for an outcome). */
export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
