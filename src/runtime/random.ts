/**
 * Seeded randomness: the same seed, the same sequence of draws. For what must replay exactly (the
 * test kit's nodes, the chaos injector); a watcher in production uses `Math.random`.
 *
 * @module
 */

/** mulberry32: uniform draws in [0, 1) from a 32-bit seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
