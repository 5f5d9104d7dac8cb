/**
 * The pure readers of stored metadata on the lease backends: etcd's campaign line and
 * PostgreSQL's metadata column. Bad metadata is dropped, never thrown; the node stays in line.
 */
import { describe, expect, it } from 'vitest';
import { campaignLine } from '../../src/etcd.js';
import { parseStoredMetadata } from '../../src/postgres/election.js';

const kv = (key: string, value: unknown, rev: number, mod = rev) => ({
  key: Buffer.from(key),
  value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  create_revision: String(rev),
  mod_revision: String(mod),
  lease: '7',
});

describe('etcd campaignLine metadata', () => {
  it('reads metadata; none is {}', () => {
    const line = campaignLine([kv('/k/a', { nodeId: 'a', priority: 1, metadata: { port: '7001' } }, 5), kv('/k/b', { nodeId: 'b', priority: 2 }, 6)]);
    expect(line.map((k) => [k.nodeId, k.metadata, k.metadataInvalid])).toEqual([
      ['a', { port: '7001' }, undefined],
      ['b', {}, undefined],
    ]);
    expect(line[0]?.modRevision).toBe(5);
  });

  it('keeps a key with bad metadata, marked, without it', () => {
    const bad = [{ port: 7 }, { 'bad key': 'x' }, ['port'], 'text', { v: 'x'.repeat(300) }];
    for (const metadata of bad) {
      const line = campaignLine([kv('/k/a', { nodeId: 'a', priority: 1, metadata }, 5)]);
      expect(line).toHaveLength(1);
      expect(line[0]).toMatchObject({ nodeId: 'a', createRevision: 5, metadataInvalid: true });
      expect(line[0]?.metadata).toBeUndefined();
    }
  });
});

describe('postgres parseStoredMetadata', () => {
  it('NULL is {}, a good map is frozen', () => {
    expect(parseStoredMetadata(null)).toEqual({});
    const m = parseStoredMetadata('{"port":"7001"}');
    expect(m).toEqual({ port: '7001' });
    expect(Object.isFrozen(m)).toBe(true);
  });

  it('anything else is invalid, never thrown', () => {
    for (const text of ['{', '{"port":7}', '[]', '"x"', '{"bad key":"x"}', 42, `{"k":"${'x'.repeat(300)}"}`]) {
      expect(parseStoredMetadata(text)).toBe('invalid');
    }
  });
});
