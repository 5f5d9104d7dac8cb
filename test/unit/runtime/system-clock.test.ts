/**
 * The system clock's timers never fire before their instant (an early fire costs a watcher at
 * rest a second wake-up per heartbeat). Real timers, a few fractional delays of ~20 ms.
 */
import { expect, it } from 'vitest';
import { systemClock } from '../../../src/runtime/clock.js';

it('fires fractional timers at or after their instant', async () => {
  const early: number[] = [];
  for (const ms of [19.3, 20.7, 21.5, 19.9, 20.1]) {
    const due = systemClock.now() + ms;
    const firedAt = await new Promise<number>((resolve) => {
      const keep = setTimeout(() => undefined, 1000); // the clock's timers are unref'd
      systemClock.setTimer(() => {
        clearTimeout(keep);
        resolve(systemClock.now());
      }, ms);
    });
    if (firedAt < due) early.push(due - firedAt);
  }
  expect(early).toEqual([]);
});
