/** The chaos runner's command line (chaos/run.ts): parsed once, errors name the option. */
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../chaos/run.js';
import { createPrng } from '../../chaos/prng.js';

describe('chaos runner arguments', () => {
  it('defaults to 60 s, 5 nodes, a random seed and the 250 ms bounds', () => {
    const a = parseArgs([]);
    expect(a).toMatchObject({ seed: undefined, durationMs: 60_000, nodes: 5, heartbeatInterval: 50, heartbeatTimeout: 400, transport: 'random' });
    expect(a.bounds).toMatchObject({ crashBound: 250, shutdownBound: 250, tolerance: 1 });
  });

  it('reads --duration in seconds, --seed, bounds and flags, with or without =', () => {
    const a = parseArgs(['--duration', '600', '--seed=42', '--crash-bound', '100', '--transport', 'ipc', '--no-priorities', '--verbose']);
    expect(a).toMatchObject({ durationMs: 600_000, seed: 42, transport: 'ipc', priorities: false, verbose: true });
    expect(a.bounds.crashBound).toBe(100);
  });

  it('takes a lease backend with its own node count and bounds', () => {
    const a = parseArgs(['--backend', 'etcd', '--server-faults']);
    expect(a).toMatchObject({ backend: 'etcd', nodes: 4, serverFaults: true });
    expect(a.bounds).toMatchObject({ crashBound: 3500, shutdownBound: 600, wakeBound: 1000 });
    expect(parseArgs(['--backend=postgres', '--crash-bound', '900']).bounds.crashBound).toBe(900);
    expect(() => parseArgs(['--backend', 'consul'])).toThrow(/--backend expects zmq, etcd, postgres or redis/);
    expect(() => parseArgs(['--backend', 'redis', '--nodes', '3'])).toThrow(/--nodes expects a number >= 4/);
  });

  it('rejects what it does not understand, naming the option', () => {
    expect(() => parseArgs(['--nodes', '3'])).toThrow(/--nodes expects a number >= 5/);
    expect(() => parseArgs(['--duration'])).toThrow(/--duration expects a value/);
    expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown argument/);
    expect(() => parseArgs(['--transport', 'udp'])).toThrow(/--transport expects tcp or ipc/);
    expect(() => parseArgs(['--heartbeat-timeout', '40'])).toThrow(/must exceed --heartbeat-interval/);
  });
});

describe('the injector PRNG', () => {
  it('replays the same draws from the same seed', () => {
    const a = createPrng(7);
    const b = createPrng(7);
    const draws = (p: ReturnType<typeof createPrng>) => Array.from({ length: 20 }, () => p.next());
    expect(draws(a)).toEqual(draws(b));
    expect(draws(createPrng(8))).not.toEqual(draws(createPrng(7)));
  });

  it('draws weighted keys in proportion and never a zero weight', () => {
    const p = createPrng(1);
    const counts = { a: 0, b: 0, never: 0 };
    for (let i = 0; i < 10_000; i++) counts[p.weighted({ a: 3, b: 1, never: 0 })!]++;
    expect(counts.never).toBe(0);
    expect(counts.a / counts.b).toBeGreaterThan(2.5);
    expect(counts.a / counts.b).toBeLessThan(3.5);
    expect(p.weighted({ x: 0 })).toBeUndefined();
  });
});
