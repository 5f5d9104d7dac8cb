/**
 * A small seeded PRNG (mulberry32) for the chaos injector: the same seed gives the same
 * sequence of draws, so a run's choices can be replayed with `--seed`.
 *
 * @module
 */
import { seededRandom } from '../src/runtime/random.js';

export interface Prng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [min, max). */
  between(min: number, max: number): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  /** A uniformly chosen element; undefined for an empty list. */
  pick<T>(items: readonly T[]): T | undefined;
  /** A key chosen with probability proportional to its (non-negative) weight; undefined if all are 0. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K | undefined;
}

export function createPrng(seed: number): Prng {
  const next = seededRandom(seed);
  return {
    seed: seed >>> 0,
    next,
    between: (min, max) => min + next() * (max - min),
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    chance: (p) => next() < p,
    pick: (items) => (items.length === 0 ? undefined : items[Math.floor(next() * items.length)]),
    weighted: (weights) => {
      const entries = Object.entries(weights) as Array<[never, number]>;
      const total = entries.reduce((sum, [, w]) => sum + Math.max(0, w), 0);
      if (total <= 0) return undefined;
      let r = next() * total;
      for (const [key, w] of entries) {
        r -= Math.max(0, w);
        if (r < 0) return key;
      }
      return entries.findLast(([, w]) => w > 0)?.[0];
    },
  };
}

/** A fresh random seed (for runs without `--seed`). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff) + 1;
}
