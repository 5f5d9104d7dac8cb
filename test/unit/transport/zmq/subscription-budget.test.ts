/**
 * The primary's intake budget for what subscribers send up, on a fake clock: a burst at once,
 * then a steady rate, whatever the flood.
 */
import { describe, expect, it } from 'vitest';
import { SUBSCRIPTION_BURST, SUBSCRIPTION_RATE, SubscriptionBudget } from '../../../../src/transport/zmq/subscription-budget.js';

/** Reads as fast as the budget lets a flood through for `ms` (monotonic), waiting when told to. */
function flood(budget: SubscriptionBudget, start: number, ms: number): { read: number; waits: number } {
  let now = start;
  let read = 0;
  let waits = 0;
  while (now < start + ms) {
    const wait = budget.take(now);
    if (wait === 0) read++;
    else {
      waits++;
      now += wait;
    }
  }
  return { read, waits };
}

describe('subscription budget', () => {
  it('takes in a burst at once, then its rate', () => {
    const budget = new SubscriptionBudget(0);
    for (let i = 0; i < SUBSCRIPTION_BURST; i++) expect(budget.take(0)).toBe(0);
    const wait = budget.take(0);
    expect(wait).toBeGreaterThan(0);
    expect(wait).toBeLessThanOrEqual(Math.ceil(1000 / SUBSCRIPTION_RATE));
    expect(budget.take(wait)).toBe(0);
  });

  it('reads at most burst + rate x time under a flood', () => {
    const { read, waits } = flood(new SubscriptionBudget(0), 0, 10_000);
    expect(read).toBeLessThanOrEqual(SUBSCRIPTION_BURST + SUBSCRIPTION_RATE * 10 + 1);
    expect(read).toBeGreaterThanOrEqual(SUBSCRIPTION_BURST + SUBSCRIPTION_RATE * 10 * 0.9);
    expect(waits).toBeGreaterThan(0);
  });

  it('refills the burst after a quiet period, never beyond it', () => {
    const budget = new SubscriptionBudget(0);
    flood(budget, 0, 1000);
    // An hour of quiet refills the burst, not an hour's worth.
    let now = 3_600_000;
    let read = 0;
    while (budget.take(now) === 0) read++;
    expect(read).toBe(SUBSCRIPTION_BURST);
    expect(budget.take(now)).toBeGreaterThan(0);
  });

  it('lets a 1024-node cluster reconnect without waiting', () => {
    // Each SUB sends instance., its presence and at most a probe: 3 per node.
    const budget = new SubscriptionBudget(0);
    for (let i = 0; i < 3 * 1024; i++) expect(budget.take(i / 100)).toBe(0);
  });
});
