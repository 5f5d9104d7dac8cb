/**
 * Application metadata: the limits of `protocol/metadata.ts`, the `metadata` option and
 * `setMetadata()` errors, and the codec carrying it (a bad field is dropped alone, never the
 * message).
 */
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../src/errors.js';
import { resolveMetadata } from '../../../src/metadata-option.js';
import { resolveOptions } from '../../../src/options.js';
import { decode, encode } from '../../../src/protocol/codec.js';
import { MAX_PAYLOAD_BYTES, type Payload } from '../../../src/protocol/messages.js';
import {
  checkMetadata,
  MAX_METADATA_BYTES,
  metadataSize,
  sameMetadata,
  utf8Length,
} from '../../../src/protocol/metadata.js';

function thrown(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected an InvalidOptionError');
}

const keys = (n: number, value = 'v'): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, value]));

const BASE: Payload = { version: 1, instanceId: 'a', epoch: 7, seq: 3, sentAt: 1_700_000_000_000.5, pid: 4242, host: 'host-1' };

/** A payload written by msgpackr with arbitrary extra fields (a foreign peer). */
function raw(extra: Record<string, unknown>): Buffer[] {
  const packr = new Packr({ useRecords: false, moreTypes: false });
  return [Buffer.from('instance.heartbeat'), packr.pack({ ...BASE, ...extra })];
}

describe('metadata limits', () => {
  it('accepts 16 keys, 64-byte keys, 256-byte values', () => {
    expect(checkMetadata(keys(16)).ok).toBe(true);
    expect(checkMetadata({ ['a'.repeat(64)]: 'x' }).ok).toBe(true);
    expect(checkMetadata({ v: 'é'.repeat(128) }).ok).toBe(true);
    expect(checkMetadata({ 'A.b_c-9': '' }).ok).toBe(true);
    expect(checkMetadata({}).ok).toBe(true);
  });

  it('refuses 17 keys, long or odd keys, long values', () => {
    expect(checkMetadata(keys(17))).toMatchObject({ ok: false, key: undefined, expected: 'at most 16 keys' });
    expect(checkMetadata({ ['a'.repeat(65)]: 'x' })).toMatchObject({ ok: false, key: 'a'.repeat(65) });
    for (const key of ['', 'a b', 'ü', 'a=b', 'a/b']) expect(checkMetadata({ [key]: 'x' })).toMatchObject({ ok: false, key });
    expect(checkMetadata({ v: 'é'.repeat(129) })).toMatchObject({ ok: false, key: 'v', received: '258 bytes' });
  });

  it('refuses what is not a map of strings', () => {
    for (const bad of [null, 'port=1', 42, ['a'], new Map([['a', 'b']]), new Date()]) {
      expect(checkMetadata(bad)).toMatchObject({ ok: false, key: undefined });
    }
    expect(checkMetadata({ port: 7001 })).toMatchObject({ ok: false, key: 'port', expected: 'a string value', received: 7001 });
    expect(checkMetadata({ port: null })).toMatchObject({ ok: false, key: 'port' });
  });

  it('refuses more than 2048 bytes encoded', () => {
    // 8 keys of 2 bytes with 250-byte values: 3 + 8 * (1 + 2 + 2 + 250) = 2043 bytes.
    const fits = keys(8, 'x'.repeat(250));
    expect(metadataSize(fits)).toBe(2043);
    expect(checkMetadata(fits).ok).toBe(true);
    const over = { ...fits, k8: 'x'.repeat(10) };
    expect(metadataSize(over)).toBeGreaterThan(MAX_METADATA_BYTES);
    expect(checkMetadata(over)).toMatchObject({ ok: false, key: undefined, expected: 'at most 2048 bytes encoded' });
  });

  it('counts the size as msgpack writes the map', () => {
    const packr = new Packr({ useRecords: false, moreTypes: false });
    for (const m of [{}, { a: '' }, keys(16, 'x'.repeat(31)), keys(5, 'y'.repeat(32)), { k: 'é'.repeat(128) }, { ['k'.repeat(64)]: 'z'.repeat(255) }]) {
      expect(metadataSize(m)).toBe(packr.pack(m).byteLength);
    }
    expect(utf8Length('a€😀')).toBe(1 + 3 + 4);
  });

  it('compares maps by content, in any key order', () => {
    expect(sameMetadata({ a: '1', b: '2' }, { b: '2', a: '1' })).toBe(true);
    expect(sameMetadata({ a: '1' }, { a: '2' })).toBe(false);
    expect(sameMetadata(undefined, {})).toBe(true);
    expect(sameMetadata({ a: '1' }, undefined)).toBe(false);
  });

  it('returns a frozen copy, never the caller object', () => {
    const input = { port: '7001' };
    const checked = checkMetadata(input);
    expect(checked.ok && Object.isFrozen(checked.metadata)).toBe(true);
    input.port = '1';
    expect(checked.ok && checked.metadata.port).toBe('7001');
  });
});

describe('metadata option', () => {
  it('names the key, expected and received', () => {
    const e = thrown(() => resolveMetadata({ port: 7001 }));
    expect(e.option).toBe('metadata.port');
    expect(e.expected).toBe('a string value');
    expect(e.received).toBe(7001);
    expect(e.message).toBe('Invalid option `metadata.port`: expected a string value, received number 7001');
    expect(thrown(() => resolveMetadata({ 'bad key': 'x' })).option).toBe('metadata.bad key');
    expect(thrown(() => resolveMetadata(keys(17))).option).toBe('metadata');
    expect(thrown(() => resolveMetadata('port=1')).option).toBe('metadata');
  });

  it('is validated with the watcher options', () => {
    const options = { endpoint: 'tcp://127.0.0.1:5555', workdir: '/tmp/x' };
    expect(resolveOptions({ ...options, metadata: { port: '7001' } }).metadata).toEqual({ port: '7001' });
    expect(resolveOptions(options).metadata).toEqual({});
    const e = thrown(() => resolveOptions({ ...options, metadata: { port: 'x'.repeat(257) } }));
    expect(e.option).toBe('metadata.port');
    expect(e.expected).toBe('a value of at most 256 bytes of UTF-8');
  });
});

describe('metadata on the wire', () => {
  it('round-trips metadata on a heartbeat', () => {
    const frames = encode('instance.heartbeat', { ...BASE, metadata: { port: '7001', proto: 'http' } });
    const result = decode(frames);
    expect(result.ok && result.message.metadata).toEqual({ port: '7001', proto: 'http' });
    expect(result.ok && result.message.metadataRejected).toBeUndefined();
  });

  it('leaves an empty map off the wire', () => {
    const without = encode('instance.heartbeat', BASE)[1];
    expect(encode('instance.heartbeat', { ...BASE, metadata: {} })[1].equals(without)).toBe(true);
    const result = decode([Buffer.from('instance.heartbeat'), without]);
    expect(result.ok && 'metadata' in result.message).toBe(false);
  });

  it('keeps the message but drops bad metadata', () => {
    const cases: Array<[unknown, string]> = [
      [keys(17), 'at most 16 keys'],
      [{ 'a b': 'x' }, 'key "a b"'],
      [{ port: 7001 }, 'key "port"'],
      ['port=7001', 'a plain object'],
      [['port', '7001'], 'a plain object'],
      [null, 'a plain object'],
      [keys(8, 'x'.repeat(256)), 'at most 2048 bytes'],
    ];
    for (const [metadata, detail] of cases) {
      const result = decode(raw({ metadata }));
      expect(result.ok).toBe(true);
      if (!result.ok) continue;
      expect(result.message.metadata).toBeUndefined();
      expect(result.message.metadataRejected).toContain(detail);
      expect(result.message).toMatchObject({ instanceId: 'a', epoch: 7, seq: 3 });
    }
  });

  it('still fits 4096 bytes with full metadata and members', () => {
    const metadata = keys(8, 'x'.repeat(250));
    const members = Array.from({ length: 64 }, (_, i) => [`${'m'.repeat(250)}${i}`, i] as const);
    const [, payload] = encode('instance.heartbeat', { ...BASE, instanceId: 'i'.repeat(256), host: 'h'.repeat(256), members, metadata });
    expect(payload.byteLength).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    const result = decode([Buffer.from('instance.heartbeat'), payload]);
    expect(result.ok && result.message.metadata).toEqual(metadata);
  });
});
