/**
 * FakeClock's stepping: `nextAt` and `runNext` let a driver run one timer at a time (with other
 * work between two timers of the same instant), in the order `advance` would.
 */
import { expect, it } from 'vitest';
import { FakeClock } from '../../../src/runtime/clock.js';

it('runNext runs one due timer at a time, in order', () => {
  const clock = new FakeClock();
  const ran: string[] = [];
  clock.setTimer(() => ran.push('b@20'), 20);
  clock.setTimer(() => ran.push('a@10'), 10);
  const cleared = clock.setTimer(() => ran.push('never'), 15);
  clock.setTimer(() => ran.push('c@20'), 20);
  clock.clearTimer(cleared);
  expect(clock.nextAt).toBe(10);
  expect(clock.runNext()).toBe(false); // nothing due at 0
  expect(clock.runNext(20)).toBe(true);
  expect([ran, clock.now()]).toEqual([['a@10'], 10]);
  expect(clock.runNext(20)).toBe(true);
  expect(clock.runNext(20)).toBe(true);
  expect([ran, clock.now(), clock.nextAt, clock.runNext(100)]).toEqual([['a@10', 'b@20', 'c@20'], 20, undefined, false]);
});
