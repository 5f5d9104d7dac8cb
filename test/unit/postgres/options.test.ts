import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import { resolvePostgresOptions, type PostgresElectionOptions } from '../../../src/postgres/options.js';

const resolve = (o: Partial<PostgresElectionOptions>) => resolvePostgresOptions({ project: 'p', ...o }, 'host-1');
const rejects = (o: Record<string, unknown>, option: string) => {
  try {
    resolve(o as Partial<PostgresElectionOptions>);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect((error as InvalidOptionError).option).toBe(option);
    return;
  }
  throw new Error(`${JSON.stringify(o)} was accepted`);
};

describe('PostgreSQL election options', () => {
  it('priority defaults to 1 and keeps a valid value', () => {
    expect(resolve({}).priority).toBe(1);
    expect(resolve({ priority: 0 }).priority).toBe(0);
    expect(resolve({ priority: 1_000_000_000 }).priority).toBe(1_000_000_000);
  });

  it('rejects a priority that is not an integer in range', () => {
    for (const priority of [-1, 1.5, 1_000_000_001, '1', Number.NaN]) rejects({ priority }, 'priority');
  });

  it('the paused-leader bounds are ordered', () => {
    const o = resolve({});
    expect(o.confirmInterval).toBeLessThan(o.maxDrift);
    expect(o.maxDrift).toBeLessThan(o.idleSessionTimeout);
    rejects({ maxDrift: 400, confirmInterval: 500 }, 'maxDrift');
    rejects({ maxDrift: 1500, idleSessionTimeout: 1500 }, 'idleSessionTimeout');
    expect(resolve({ idleSessionTimeout: 0 }).idleSessionTimeout).toBe(0);
  });
});
