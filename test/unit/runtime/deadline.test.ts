import { afterEach, describe, expect, it, vi } from 'vitest';
import { withDeadline } from '../../../src/runtime/deadline.js';

describe('withDeadline', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('rejects a call that never answers, at the bound', async () => {
    vi.useFakeTimers();
    const bounded = withDeadline(new Promise<never>(() => undefined), 100);
    const seen = bounded.catch((e: Error) => e.message);
    await vi.advanceTimersByTimeAsync(99);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await seen).toBe('no answer within 100 ms');
  });

  it('passes an answer through and leaves no timer', async () => {
    vi.useFakeTimers();
    expect(await withDeadline(Promise.resolve(7), 100)).toBe(7);
    // A rejection that is not an Error comes back as one.
    await expect(withDeadline(Promise.reject('gone'), 100)).rejects.toThrow('gone');
    expect(vi.getTimerCount()).toBe(0);
  });
});
