import { describe, expect, it } from 'vitest';
import { callSettled, Deliveries, TermSignals } from '../../../src/election/driver.js';

const settle = (fn: ((a: number) => unknown) | undefined): Promise<{ error: unknown; sync: boolean }> =>
  new Promise((resolve) => {
    let sync = true;
    callSettled(fn, 1, 'onPromote', (error) => resolve({ error, sync }));
    sync = false;
  });

describe('callSettled', () => {
  it('reports a resolution, a rejection and a throw once each', async () => {
    expect(await settle(async () => undefined)).toEqual({ error: undefined, sync: false });
    expect((await settle(() => Promise.reject(new Error('no')))).error).toMatchObject({ message: 'no' });
    const thrown = await settle(() => {
      throw new Error('sync');
    });
    expect(thrown).toMatchObject({ error: { message: 'sync' }, sync: true });
    expect(await settle(undefined)).toEqual({ error: undefined, sync: false });
  });

  it('names the callback when it rejects with nothing', async () => {
    // eslint-disable-next-line prefer-promise-reject-errors
    expect((await settle(() => Promise.reject(undefined))).error).toMatchObject({ message: 'onPromote rejected' });
  });

  it('calls the callback synchronously', () => {
    const calls: number[] = [];
    callSettled((a: number) => void calls.push(a), 7, 'onDemote', () => undefined);
    expect(calls).toEqual([7]);
  });
});

describe('TermSignals', () => {
  it('aborts one term with its reason, and all on abortAll', () => {
    const s = new TermSignals();
    const one = s.open(1);
    const two = s.open(2);
    s.abort(1, 'lost');
    expect([one.aborted, one.reason, two.aborted]).toEqual([true, 'lost', false]);
    s.abort(1, 'again');
    expect(one.reason).toBe('lost');
    s.abortAll();
    expect(two.aborted).toBe(true);
  });
});

describe('Deliveries', () => {
  it('delivers in order after the current step, in one batch', async () => {
    const d = new Deliveries();
    const seen: string[] = [];
    d.push(() => seen.push('a'));
    d.push(() => seen.push('b'));
    seen.push('step');
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['step', 'a', 'b']);
  });
});
