import { describe, expect, it } from 'vitest';
import { backendOrUsageError } from '../../../src/cli/backend-options.js';

const none = { endpoint: undefined, redis: undefined, project: undefined } as const;

describe('backendOrUsageError (etcd, PostgreSQL)', () => {
  it('reads --etcd hosts, the default prefix and the cluster name', () => {
    expect(backendOrUsageError({ ...none, etcd: 'http://a:2379, https://u:pw@b:2379', project: 'p' })).toEqual({
      kind: 'etcd',
      hosts: ['http://a:2379', 'https://u:pw@b:2379'],
      prefix: '/failover-watch',
      project: 'p',
      cluster: 'http://a:2379,https://u:***@b:2379 /failover-watch/p',
    });
  });

  it('reads --postgres with and without --table-prefix', () => {
    expect(backendOrUsageError({ ...none, postgres: 'postgres://u:pw@db/app', project: 'p' })).toEqual({
      kind: 'postgres',
      url: 'postgres://u:pw@db/app',
      tablePrefix: undefined,
      project: 'p',
      cluster: 'postgres://u:***@db/app p',
    });
    expect(backendOrUsageError({ ...none, postgres: 'postgresql://db/app', project: 'p', 'table-prefix': 'ops.fw' })).toMatchObject({ tablePrefix: 'ops.fw' });
  });

  it.each([
    ['etcd without project', { etcd: 'http://a:2379' }, '--etcd needs --project NAME'],
    ['postgres without project', { postgres: 'postgres://db/app' }, '--postgres needs --project NAME'],
    ['two backends', { etcd: 'http://a:2379', postgres: 'postgres://db', project: 'p' }, 'give exactly one backend'],
    ['an etcd URL with a path', { etcd: 'http://a:2379/v3', project: 'p' }, '--etcd expects http:// or https:// client URLs'],
    ['a relative etcd prefix', { etcd: 'http://a:2379', project: 'p', 'etcd-prefix': 'fw/' }, '--etcd-prefix expects a key prefix starting with /'],
    ['not a postgres URL', { postgres: 'http://db', project: 'p' }, '--postgres must be a postgres:// or postgresql:// URL'],
    ['table prefix with redis', { redis: 'redis://r', project: 'p', 'table-prefix': 'x' }, '--table-prefix is for the PostgreSQL backend'],
    ['etcd prefix with postgres', { postgres: 'postgres://db', project: 'p', 'etcd-prefix': '/x' }, '--etcd-prefix is for the etcd backend'],
    ['curve keys with postgres', { postgres: 'postgres://db', project: 'p', 'curve-dir': '/k' }, '--curve-dir is for the ZeroMQ backend'],
  ])('refuses %s', (_name, values, message) => {
    const r = backendOrUsageError({ ...none, ...values });
    expect('error' in r && r.error).toContain(message);
  });
});
