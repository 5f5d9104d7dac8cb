/**
 * EtcdElection's options: defaults as status() reports them, and invalid values rejected with
 * InvalidOptionError. No etcd: the client connects on first use, and these nodes never start.
 */
import { describe, expect, it } from 'vitest';
import { EtcdElection, type EtcdElectionOptions } from '../../../src/etcd.js';
import { InvalidOptionError } from '../../../src/errors.js';

async function settings(options: EtcdElectionOptions): Promise<{ leaseTTL: number; maxDrift: number }> {
  const e = new EtcdElection(options);
  const { leaseTTL, maxDrift } = e.status().etcd;
  await e.shutdown();
  return { leaseTTL, maxDrift };
}

function rejected(options: Partial<EtcdElectionOptions>): InvalidOptionError {
  try {
    new EtcdElection({ project: 'p', ...options });
  } catch (error) {
    if (error instanceof InvalidOptionError) return error;
    throw error;
  }
  throw new Error('accepted');
}

describe('etcd options', () => {
  it('defaults leave room for an etcd raft re-election', async () => {
    expect(await settings({ project: 'p' })).toEqual({ leaseTTL: 6000, maxDrift: 4200 });
  });

  it('default maxDrift is valid for every valid TTL and interval', async () => {
    expect(await settings({ project: 'p', leaseTTL: 2000 })).toEqual({ leaseTTL: 2000, maxDrift: 1400 });
    // 0.7 x 2000 would leave less than a keepalive interval before the lease expires.
    expect(await settings({ project: 'p', leaseTTL: 2000, keepAliveInterval: 900 })).toEqual({ leaseTTL: 2000, maxDrift: 1100 });
  });

  it('rejects a maxDrift the lease cannot cover', () => {
    const error = rejected({ leaseTTL: 3000, keepAliveInterval: 500, maxDrift: 2800 });
    expect(error).toMatchObject({ option: 'maxDrift', received: 2800 });
    expect(error.expected).toContain('2500');
  });

  it('rejects a TTL that is not whole seconds', () => {
    expect(rejected({ leaseTTL: 2500 })).toMatchObject({ option: 'leaseTTL', received: 2500 });
  });

  it('rejects an eventHistory out of range', () => {
    expect(rejected({ eventHistory: -1 })).toMatchObject({ option: 'eventHistory', received: -1 });
  });

  it('rejects hosts that are not URLs', () => {
    expect(rejected({ hosts: ['127.0.0.1:2379'] })).toMatchObject({ option: 'hosts' });
  });
});
