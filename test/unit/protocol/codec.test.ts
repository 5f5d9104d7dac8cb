/**
 * The wire codec, by example: what it round-trips, what it accepts from other msgpack encoders,
 * and which reject reason each kind of bad input gets. Payloads for the decoder are built with a
 * small msgpack writer below (not msgpackr), choosing every format byte by hand, so these tests
 * check interoperability with encoders other than our own.
 *
 * The last group checks docs/PROTOCOL.md: its hex examples decode to the documented values and
 * are byte for byte what the encoder produces, so the contract cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decode, encode } from '../../../src/protocol/codec.js';
import {
  MAX_MEMBERS,
  MAX_PAYLOAD_BYTES,
  MAX_TOPIC_BYTES,
  REJECT_REASONS,
  TOPICS,
  type DecodeResult,
  type Payload,
  type RejectReason,
  type Topic,
  type WireMessage,
} from '../../../src/protocol/messages.js';

// --- a hand-written msgpack writer ---------------------------------------------------------------

const cat = (...parts: Array<Buffer | number>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : p)));

function fixed(tag: number, size: number, write: (b: Buffer) => void): Buffer {
  const b = Buffer.alloc(1 + size);
  b[0] = tag;
  write(b);
  return b;
}

/** Every msgpack format the tests need, each writing exactly the format its name says. */
const mp = {
  nil: () => cat(0xc0),
  bool: (v: boolean) => cat(v ? 0xc3 : 0xc2),
  fixint: (n: number) => {
    if (!Number.isInteger(n) || n < 0 || n > 0x7f) throw new RangeError(`fixint ${n}`);
    return cat(n);
  },
  negFixint: (n: number) => {
    if (!Number.isInteger(n) || n < -32 || n > -1) throw new RangeError(`negative fixint ${n}`);
    return cat(n & 0xff);
  },
  u8: (n: number) => fixed(0xcc, 1, (b) => b.writeUInt8(n, 1)),
  u16: (n: number) => fixed(0xcd, 2, (b) => b.writeUInt16BE(n, 1)),
  u32: (n: number) => fixed(0xce, 4, (b) => b.writeUInt32BE(n, 1)),
  u64: (n: number | bigint) => fixed(0xcf, 8, (b) => b.writeBigUInt64BE(BigInt(n), 1)),
  i8: (n: number) => fixed(0xd0, 1, (b) => b.writeInt8(n, 1)),
  i16: (n: number) => fixed(0xd1, 2, (b) => b.writeInt16BE(n, 1)),
  i32: (n: number) => fixed(0xd2, 4, (b) => b.writeInt32BE(n, 1)),
  i64: (n: number | bigint) => fixed(0xd3, 8, (b) => b.writeBigInt64BE(BigInt(n), 1)),
  f32: (n: number) => fixed(0xca, 4, (b) => b.writeFloatBE(n, 1)),
  f64: (n: number) => fixed(0xcb, 8, (b) => b.writeDoubleBE(n, 1)),
  fixstr: (s: string | Buffer) => {
    const bytes = Buffer.from(s);
    if (bytes.length > 31) throw new RangeError('fixstr longer than 31 bytes');
    return cat(0xa0 | bytes.length, bytes);
  },
  str8: (s: string | Buffer) => {
    const bytes = Buffer.from(s);
    return cat(fixed(0xd9, 1, (b) => b.writeUInt8(bytes.length, 1)), bytes);
  },
  str16: (s: string | Buffer) => {
    const bytes = Buffer.from(s);
    return cat(fixed(0xda, 2, (b) => b.writeUInt16BE(bytes.length, 1)), bytes);
  },
  str32: (s: string | Buffer) => {
    const bytes = Buffer.from(s);
    return cat(fixed(0xdb, 4, (b) => b.writeUInt32BE(bytes.length, 1)), bytes);
  },
  bin8: (bytes: Buffer) => cat(fixed(0xc4, 1, (b) => b.writeUInt8(bytes.length, 1)), bytes),
  fixarray: (items: Buffer[]) => cat(0x90 | items.length, ...items),
  array16: (items: Buffer[]) => cat(fixed(0xdc, 2, (b) => b.writeUInt16BE(items.length, 1)), ...items),
  array32: (items: Buffer[]) => cat(fixed(0xdd, 4, (b) => b.writeUInt32BE(items.length, 1)), ...items),
  fixmap: (entries: Entry[]) => cat(0x80 | entries.length, ...entries.flat()),
  map16: (entries: Entry[]) => cat(fixed(0xde, 2, (b) => b.writeUInt16BE(entries.length, 1)), ...entries.flat()),
  map32: (entries: Entry[]) => cat(fixed(0xdf, 4, (b) => b.writeUInt32BE(entries.length, 1)), ...entries.flat()),
  /** fixext 4 of `type` (e.g. -1, a timestamp). */
  fixext4: (type: number, data: Buffer) => cat(0xd6, type & 0xff, data),
};

type Entry = [key: Buffer, value: Buffer];
type MapFormat = 'fixmap' | 'map16' | 'map32';

/** The encoded fields of a valid payload, in order; keys are plain field names (fixstr). */
type Fields = Array<[string, Buffer]>;

const VALID: Omit<WireMessage, 'topic'> = {
  version: 1,
  instanceId: 'node-a',
  epoch: 3,
  seq: 9,
  sentAt: 1700000000000.5,
  pid: 4242,
  host: 'host-a',
};

function validFields(): Fields {
  return [
    ['version', mp.fixint(1)],
    ['instanceId', mp.fixstr('node-a')],
    ['epoch', mp.fixint(3)],
    ['seq', mp.fixint(9)],
    ['sentAt', mp.f64(1700000000000.5)],
    ['pid', mp.u16(4242)],
    ['host', mp.fixstr('host-a')],
  ];
}

/** The valid fields with some replaced (a Buffer), removed (null) or added at the end. */
function fieldsWith(changes: Record<string, Buffer | null>): Fields {
  const out: Fields = [];
  for (const [name, value] of validFields()) {
    if (!Object.hasOwn(changes, name)) out.push([name, value]);
    else if (changes[name] !== null) out.push([name, changes[name] as Buffer]);
  }
  for (const [name, value] of Object.entries(changes)) {
    if (value !== null && !out.some(([n]) => n === name)) out.push([name, value]);
  }
  return out;
}

function payload(fields: Fields, format: MapFormat = 'fixmap'): Buffer {
  const entries: Entry[] = fields.map(([name, value]) => [Buffer.byteLength(name) <= 31 ? mp.fixstr(name) : mp.str8(name), value]);
  return mp[format](entries);
}

const HEARTBEAT = Buffer.from('instance.heartbeat', 'utf8');

/** Decodes a heartbeat with `payloadFrame`. */
const decodePayload = (payloadFrame: Uint8Array): DecodeResult => decode([HEARTBEAT, payloadFrame]);

function expectReject(result: DecodeResult, reason: RejectReason): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.reason).toBe(reason);
  expect(result.detail).toEqual(expect.any(String));
  expect(result.detail.length).toBeGreaterThan(0);
}

function expectMessage(result: DecodeResult): WireMessage {
  if (!result.ok) throw new Error(`expected a message, got ${result.reason}: ${result.detail}`);
  return result.message;
}

const full: Payload = {
  version: 1,
  instanceId: 'api-1',
  epoch: 12,
  seq: 345,
  sentAt: 1767225600123.25,
  pid: 777,
  host: 'web-01',
  heartbeatInterval: 250,
  priority: 3,
  procStart: 98765,
  members: [
    ['api-2', 1],
    ['api-3', 7],
  ],
};

// --- round trips --------------------------------------------------------------------------------

describe('encode then decode', () => {
  it.each(TOPICS)('round-trips a %s with every field', (topic) => {
    const frames = encode(topic, full);
    expect(frames).toHaveLength(2);
    expect(frames[0].toString('utf8')).toBe(topic);
    expect(expectMessage(decode(frames))).toEqual({ topic, ...full });
  });

  it.each(TOPICS)('round-trips a %s with only the required fields and leaves the optional ones undefined', (topic) => {
    const message = expectMessage(decode(encode(topic, VALID)));
    expect(message).toEqual({ topic, ...VALID });
    expect(message.heartbeatInterval).toBeUndefined();
    expect(message.priority).toBeUndefined();
    expect(message.procStart).toBeUndefined();
    expect(message.members).toBeUndefined();
  });

  it('round-trips the extremes of every range', () => {
    const extremes: Payload = {
      version: 1,
      instanceId: 'i'.repeat(256),
      epoch: Number.MAX_SAFE_INTEGER,
      seq: 0,
      sentAt: -1.5,
      pid: 1,
      host: '\u{1F600}'.repeat(128), // 256 UTF-16 code units
      heartbeatInterval: 1,
      priority: 0,
      procStart: 0,
      members: [],
    };
    expect(expectMessage(decode(encode('instance.heartbeat', extremes)))).toEqual({
      topic: 'instance.heartbeat',
      ...extremes,
    });
  });

  it('writes the map with a map 16 header and the fields in the documented order', () => {
    const [, body] = encode('instance.heartbeat', full);
    expect(body[0]).toBe(0xde);
    expect(body.readUInt16BE(1)).toBe(11);
    const order = [
      'version', 'instanceId', 'epoch', 'seq', 'sentAt', 'pid', 'host',
      'heartbeatInterval', 'priority', 'procStart', 'members',
    ];
    const offsets = order.map((key) => body.indexOf(mp.fixstr(key)));
    expect(offsets.every((offset) => offset > 0)).toBe(true);
    expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
  });

  it('writes integers of 2^32 and above as float 64, as PROTOCOL.md warns', () => {
    const [, body] = encode('instance.heartbeat', { ...VALID, epoch: 2 ** 32 });
    expect(body.includes(Buffer.from('a565706f6368cb41f0000000000000', 'hex'))).toBe(true);
    expect(expectMessage(decode([HEARTBEAT, body])).epoch).toBe(2 ** 32);
  });

  it(`lists at most ${MAX_MEMBERS} members`, () => {
    const members = Array.from({ length: MAX_MEMBERS + 5 }, (_, i) => [`m${i}`, i] as const);
    const message = expectMessage(decode(encode('instance.heartbeat', { ...VALID, members })));
    expect(message.members).toEqual(members.slice(0, MAX_MEMBERS));
  });

  it(`drops members from the end of the list until the payload fits in ${MAX_PAYLOAD_BYTES} bytes`, () => {
    const members = Array.from({ length: MAX_MEMBERS }, (_, i) => [`${i}-`.padEnd(256, 'x'), i] as const);
    const frames = encode('instance.heartbeat', { ...VALID, instanceId: 'p'.repeat(256), members });
    expect(frames[1].byteLength).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
    const listed = expectMessage(decode(frames)).members ?? [];
    expect(listed.length).toBeGreaterThan(0);
    expect(listed).toEqual(members.slice(0, listed.length));
    // As many as fit: each pair takes about 260 bytes, so less than that is left over.
    expect(frames[1].byteLength).toBeGreaterThan(MAX_PAYLOAD_BYTES - 260);
  });

  it('returns a message whose prototype is Object.prototype', () => {
    const message = expectMessage(decode(encode('instance.heartbeat', full)));
    expect(Object.getPrototypeOf(message)).toBe(Object.prototype);
  });
});

// --- frames, topic and size ---------------------------------------------------------------------

describe('frames, topics and sizes', () => {
  const valid = payload(validFields());

  it.each([0, 1, 3, 5])('drops a message of %i frames as frames', (count) => {
    const frames = [HEARTBEAT, valid, valid, valid, valid].slice(0, count);
    expectReject(decode(frames), 'frames');
  });

  it('drops a three-frame message even when its first two frames are a valid message', () => {
    expectReject(decode([HEARTBEAT, valid, Buffer.alloc(0)]), 'frames');
  });

  it.each([
    ['an unknown topic under the prefix', 'instance.nonsense'],
    ['the bare prefix', 'instance.'],
    ['an empty topic', ''],
    ['a topic in another case', 'instance.Heartbeat'],
    ['a topic with a trailing NUL', 'instance.heartbeat\0'],
    ['a topic with a trailing space', 'instance.heartbeat '],
    ['a presence topic', 'presence.1.node-a'],
    ['a probe topic', 'probe.node-a.1'],
  ])('drops %s as topic', (_name, topic) => {
    expectReject(decode([Buffer.from(topic, 'utf8'), valid]), 'topic');
  });

  it('drops a topic frame that is not valid UTF-8 as topic', () => {
    expectReject(decode([Buffer.from([0x69, 0xff, 0xfe]), valid]), 'topic');
  });

  it(`drops a topic frame of ${MAX_TOPIC_BYTES + 1} bytes as oversize, even one that starts with a topic`, () => {
    const topic = Buffer.from('instance.heartbeat'.padEnd(MAX_TOPIC_BYTES + 1, '.'), 'utf8');
    expectReject(decode([topic, valid]), 'oversize');
  });

  it(`checks a topic frame of exactly ${MAX_TOPIC_BYTES} bytes against the topics (topic, not oversize)`, () => {
    expectReject(decode([Buffer.alloc(MAX_TOPIC_BYTES, 0x61), valid]), 'topic');
  });

  it(`drops a payload frame of ${MAX_PAYLOAD_BYTES + 1} bytes as oversize without parsing it`, () => {
    // A valid map padded with an unknown field to one byte over the limit.
    const pad = (n: number) => payload(fieldsWith({ padding: mp.str16('x'.repeat(n)) }));
    const base = pad(0).length;
    const over = pad(MAX_PAYLOAD_BYTES + 1 - base);
    expect(over.length).toBe(MAX_PAYLOAD_BYTES + 1);
    expectReject(decodePayload(over), 'oversize');
    expectReject(decodePayload(Buffer.alloc(1 << 20, 0xc1)), 'oversize');
  });

  it(`accepts a valid payload of exactly ${MAX_PAYLOAD_BYTES} bytes`, () => {
    const pad = (n: number) => payload(fieldsWith({ padding: mp.str16('x'.repeat(n)) }));
    const exact = pad(MAX_PAYLOAD_BYTES - pad(0).length);
    expect(exact.length).toBe(MAX_PAYLOAD_BYTES);
    expect(expectMessage(decodePayload(exact))).toEqual({ topic: 'instance.heartbeat', ...VALID });
  });

  it('checks the frame count before sizes, and sizes before the topic', () => {
    expectReject(decode([Buffer.alloc(100, 0x61)]), 'frames');
    expectReject(decode([Buffer.alloc(100, 0x61), valid]), 'oversize');
    expectReject(decode([Buffer.from('nope'), Buffer.alloc(MAX_PAYLOAD_BYTES + 1)]), 'oversize');
  });

  it('reads frames that are Uint8Array views at an offset into a larger buffer', () => {
    const backing = new Uint8Array(300);
    backing.set(HEARTBEAT, 7);
    backing.set(valid, 100);
    const topic = backing.subarray(7, 7 + HEARTBEAT.length);
    const body = backing.subarray(100, 100 + valid.length);
    expect(expectMessage(decode([topic, body]))).toEqual({ topic: 'instance.heartbeat', ...VALID });
  });

  it.each(TOPICS)('decodes the %s topic', (topic) => {
    expect(expectMessage(decode([Buffer.from(topic), valid])).topic).toBe(topic);
  });
});

// --- msgpack ------------------------------------------------------------------------------------

describe('payloads that are not one msgpack value', () => {
  const valid = payload(validFields());

  it('drops an empty payload as msgpack', () => {
    expectReject(decodePayload(Buffer.alloc(0)), 'msgpack');
  });

  it('drops text that is not msgpack as msgpack', () => {
    expectReject(decodePayload(Buffer.from('{"version":1}', 'utf8')), 'msgpack');
    expectReject(decodePayload(Buffer.from('hello, world', 'utf8')), 'msgpack');
  });

  it('drops trailing bytes after a valid map as msgpack', () => {
    expectReject(decodePayload(cat(valid, 0x00)), 'msgpack');
    expectReject(decodePayload(cat(valid, valid)), 'msgpack');
  });

  it('drops every truncation of a valid map as msgpack', () => {
    for (let length = 1; length < valid.length; length++) {
      expectReject(decodePayload(valid.subarray(0, length)), 'msgpack');
    }
  });

  it('drops a map header that promises more entries than follow as msgpack', () => {
    const fields = validFields();
    const entries: Entry[] = fields.map(([n, v]) => [mp.fixstr(n), v]);
    expectReject(decodePayload(cat(0x88, ...entries.flat())), 'msgpack');
    expectReject(decodePayload(Buffer.from('dfffffffff', 'hex')), 'msgpack'); // map 32 of 4 G entries
  });

  it('drops strings, arrays and binaries whose length runs past the end as msgpack', () => {
    expectReject(decodePayload(Buffer.from('dbffffffff41', 'hex')), 'msgpack'); // str 32 of 4 GiB
    expectReject(decodePayload(Buffer.from('ddffffffff01', 'hex')), 'msgpack'); // array 32 of 4 G items
    expectReject(decodePayload(Buffer.from('c6ffffffff00', 'hex')), 'msgpack'); // bin 32 of 4 GiB
    expectReject(decodePayload(Buffer.from('d9', 'hex')), 'msgpack'); // str 8 without its length
  });

  it('drops an extension type it does not know as msgpack', () => {
    expectReject(decodePayload(payload(fieldsWith({ extra: cat(0xd4, 0x10, 0x00) }))), 'msgpack');
  });

  it('drops a map whose key is a map or an array as msgpack', () => {
    expectReject(decodePayload(mp.fixmap([[mp.fixmap([]), mp.fixint(1)]])), 'msgpack');
    expectReject(decodePayload(mp.fixmap([[mp.fixarray([mp.fixint(1)]), mp.fixint(1)]])), 'msgpack');
  });

  it('drops msgpackr structured-clone references as msgpack instead of expanding them', () => {
    // id extension 0x69 then pointer extension 0x70: a value referenced twice, nested deeply,
    // would expand exponentially when msgpackr describes trailing bytes in its error.
    const id = (n: number) => mp.fixext4(0x69, Buffer.from([0, 0, 0, n]));
    const ptr = (n: number) => mp.fixext4(0x70, Buffer.from([0, 0, 0, n]));
    let value = cat(id(1), mp.fixarray([mp.fixint(1), mp.fixint(2)]));
    for (let i = 2; i <= 60; i++) value = cat(id(i), 0x92, value, ptr(i - 1));
    const started = performance.now();
    expectReject(decodePayload(cat(value, 0x00)), 'msgpack');
    expectReject(decodePayload(payload(fieldsWith({ extra: value }))), 'msgpack');
    expect(performance.now() - started).toBeLessThan(200);
  });
});

// --- shape --------------------------------------------------------------------------------------

describe('payloads of the wrong shape', () => {
  it.each([
    ['an array', mp.fixarray([mp.fixint(1), mp.fixstr('node-a')])],
    ['an array holding the valid map', mp.fixarray([payload(validFields())])],
    ['an integer', mp.fixint(1)],
    ['a string', mp.fixstr('instance')],
    ['nil', mp.nil()],
    ['true', mp.bool(true)],
    ['a binary', mp.bin8(payload(validFields()))],
    ['a timestamp', mp.fixext4(-1, Buffer.from([0, 0, 0, 1]))],
    ['an empty map', mp.fixmap([])],
  ])('drops %s instead of a map as shape', (_name, body) => {
    expectReject(decodePayload(body), 'shape');
  });

  it.each(['version', 'instanceId', 'epoch', 'seq', 'sentAt', 'pid', 'host'])(
    'drops a payload without %s as shape',
    (name) => {
      expectReject(decodePayload(payload(fieldsWith({ [name]: null }))), 'shape');
    },
  );

  it.each([
    ['version', 'a string', mp.fixstr('1')],
    ['version', 'nil', mp.nil()],
    ['version', 'a fraction', mp.f64(1.5)],
    ['instanceId', 'an integer', mp.fixint(7)],
    ['instanceId', 'a binary', mp.bin8(Buffer.from('node-a'))],
    ['instanceId', 'nil', mp.nil()],
    ['instanceId', 'an array', mp.fixarray([mp.fixstr('node-a')])],
    ['host', 'an integer', mp.fixint(7)],
    ['host', 'a binary', mp.bin8(Buffer.from('host-a'))],
    ['epoch', 'a string', mp.fixstr('3')],
    ['epoch', 'true', mp.bool(true)],
    ['epoch', 'nil', mp.nil()],
    ['seq', 'a string', mp.fixstr('9')],
    ['seq', 'a map', mp.fixmap([])],
    ['seq', 'a negative integer', mp.negFixint(-1)],
    ['pid', 'a string', mp.fixstr('4242')],
    ['pid', 'false', mp.bool(false)],
    ['sentAt', 'a string', mp.fixstr('2026-01-01T00:00:00Z')],
    ['sentAt', 'a timestamp extension', mp.fixext4(-1, Buffer.from([0x69, 0x00, 0x00, 0x00]))],
    ['sentAt', 'NaN', mp.f64(Number.NaN)],
    ['sentAt', 'Infinity', mp.f64(Number.POSITIVE_INFINITY)],
    ['sentAt', '-Infinity', mp.f32(Number.NEGATIVE_INFINITY)],
    ['sentAt', 'nil', mp.nil()],
    ['heartbeatInterval', 'a string', mp.fixstr('1000')],
    ['heartbeatInterval', 'zero', mp.fixint(0)],
    ['heartbeatInterval', 'a fraction', mp.f64(0.5)],
    ['heartbeatInterval', 'nil', mp.nil()],
    ['priority', 'a string', mp.fixstr('1')],
    ['priority', 'a negative integer', mp.i8(-5)],
    ['priority', 'nil', mp.nil()],
    ['procStart', 'a string', mp.fixstr('123')],
    ['procStart', 'a fraction', mp.f64(1.25)],
    ['procStart', 'nil', mp.nil()],
    ['members', 'a map', mp.fixmap([[mp.fixstr('api-2'), mp.fixint(1)]])],
    ['members', 'a string', mp.fixstr('api-2')],
    ['members', 'nil', mp.nil()],
    ['members', 'an array of strings', mp.fixarray([mp.fixstr('api-2')])],
    ['members', 'a pair of three elements', mp.fixarray([mp.fixarray([mp.fixstr('a'), mp.fixint(1), mp.fixint(2)])])],
    ['members', 'a pair with an empty id', mp.fixarray([mp.fixarray([mp.fixstr(''), mp.fixint(1)])])],
    ['members', 'a pair with a negative priority', mp.fixarray([mp.fixarray([mp.fixstr('a'), mp.negFixint(-1)])])],
    ['members', 'a pair in the wrong order', mp.fixarray([mp.fixarray([mp.fixint(1), mp.fixstr('a')])])],
  ])('drops a payload whose %s is %s as shape', (name, _what, value) => {
    expectReject(decodePayload(payload(fieldsWith({ [name]: value }))), 'shape');
  });

  it.each([
    ['a negative fixint', mp.negFixint(-1)],
    ['a negative int 8', mp.i8(-100)],
    ['a negative int 64', mp.i64(-(2n ** 40n))],
    ['a negative float', mp.f64(-3)],
  ])('drops a payload whose epoch is negative (%s) as shape', (_what, value) => {
    expectReject(decodePayload(payload(fieldsWith({ epoch: value }))), 'shape');
  });

  it.each([
    ['1.5 as float 64', mp.f64(1.5)],
    ['0.1 as float 32', mp.f32(0.1)],
    ['NaN', mp.f64(Number.NaN)],
    ['Infinity', mp.f64(Number.POSITIVE_INFINITY)],
  ])('drops a payload whose epoch is not an integer (%s) as shape', (_what, value) => {
    expectReject(decodePayload(payload(fieldsWith({ epoch: value }))), 'shape');
  });

  it.each([
    ['2^53 as uint 64', mp.u64(2n ** 53n)],
    ['2^53 + 1 as uint 64', mp.u64(2n ** 53n + 1n)],
    ['2^64 - 1 as uint 64', mp.u64(2n ** 64n - 1n)],
    ['2^53 as int 64', mp.i64(2n ** 53n)],
    ['2^53 as float 64', mp.f64(2 ** 53)],
    ['1e300 as float 64', mp.f64(1e300)],
  ])('drops a payload whose epoch is an unsafe integer (%s) as shape', (_what, value) => {
    expectReject(decodePayload(payload(fieldsWith({ epoch: value }))), 'shape');
  });

  it('drops a payload whose pid is 0 as shape', () => {
    expectReject(decodePayload(payload(fieldsWith({ pid: mp.fixint(0) }))), 'shape');
  });

  it('drops a payload whose instanceId is empty as shape', () => {
    expectReject(decodePayload(payload(fieldsWith({ instanceId: mp.fixstr('') }))), 'shape');
  });

  it('drops a payload whose instanceId has 257 characters as shape', () => {
    expectReject(decodePayload(payload(fieldsWith({ instanceId: mp.str16('x'.repeat(257)) }))), 'shape');
  });

  it('counts instanceId length in UTF-16 code units: 128 emoji pass, 129 are dropped as shape', () => {
    const ok = decodePayload(payload(fieldsWith({ instanceId: mp.str16('\u{1F600}'.repeat(128)) })));
    expect(expectMessage(ok).instanceId).toHaveLength(256);
    expectReject(decodePayload(payload(fieldsWith({ instanceId: mp.str16('\u{1F600}'.repeat(129)) }))), 'shape');
  });

  it('drops a payload whose host is empty or has 257 characters as shape', () => {
    expectReject(decodePayload(payload(fieldsWith({ host: mp.fixstr('') }))), 'shape');
    expectReject(decodePayload(payload(fieldsWith({ host: mp.str16('h'.repeat(257)) }))), 'shape');
  });

  it(`drops a payload with ${MAX_MEMBERS + 1} members as shape`, () => {
    const pair = (i: number) => mp.fixarray([mp.fixstr(`m${i}`), mp.fixint(i % 100)]);
    const ok = Array.from({ length: MAX_MEMBERS }, (_, i) => pair(i));
    expect(expectMessage(decodePayload(payload(fieldsWith({ members: mp.array16(ok) })))).members).toHaveLength(MAX_MEMBERS);
    const tooMany = Array.from({ length: MAX_MEMBERS + 1 }, (_, i) => pair(i));
    expectReject(decodePayload(payload(fieldsWith({ members: mp.array16(tooMany) }))), 'shape');
  });

  it('names the failing field in the detail', () => {
    const result = decodePayload(payload(fieldsWith({ seq: mp.fixstr('x') })));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.detail).toContain('seq');
  });
});

// --- version ------------------------------------------------------------------------------------

describe('versions', () => {
  it.each([
    ['2', mp.fixint(2)],
    ['0', mp.fixint(0)],
    ['2 as uint 64', mp.u64(2)],
    ['1000', mp.u16(1000)],
  ])('drops a payload whose version is %s as version', (_what, value) => {
    expectReject(decodePayload(payload(fieldsWith({ version: value }))), 'version');
  });

  it('checks the version before every other field', () => {
    const onlyVersion2 = mp.fixmap([[mp.fixstr('version'), mp.fixint(2)]]);
    expectReject(decodePayload(onlyVersion2), 'version');
    const garbage = payload(fieldsWith({ version: mp.fixint(2), epoch: mp.fixstr('x'), pid: null }));
    expectReject(decodePayload(garbage), 'version');
  });

  it('drops a payload whose version is missing, negative or a string as shape, not version', () => {
    expectReject(decodePayload(payload(fieldsWith({ version: null }))), 'shape');
    expectReject(decodePayload(payload(fieldsWith({ version: mp.negFixint(-1) }))), 'shape');
    expectReject(decodePayload(payload(fieldsWith({ version: mp.fixstr('2') }))), 'shape');
  });
});

// --- interop: what other encoders may write -----------------------------------------------------

describe('payloads from other msgpack encoders', () => {
  it('ignores unknown fields of any type and leaves them out of the message', () => {
    const body = payload(
      fieldsWith({
        future: mp.fixmap([[mp.fixstr('nested'), mp.fixarray([mp.nil(), mp.bool(true)])]]),
        zz: mp.nil(),
        blob: mp.bin8(Buffer.from([1, 2, 3])),
        when: mp.fixext4(-1, Buffer.from([0, 0, 0, 1])),
        version2: mp.fixint(2),
      }),
    );
    const message = expectMessage(decodePayload(body));
    expect(message).toEqual({ topic: 'instance.heartbeat', ...VALID });
    expect(Object.keys(message)).not.toContain('future');
    expect(Object.keys(message)).not.toContain('zz');
  });

  it('ignores integer, boolean and nil keys', () => {
    const entries: Entry[] = [
      ...validFields().map(([n, v]): Entry => [mp.fixstr(n), v]),
      [mp.fixint(5), mp.fixint(1)],
      [mp.bool(true), mp.fixint(1)],
      [mp.nil(), mp.fixint(1)],
    ];
    expect(expectMessage(decodePayload(mp.map16(entries)))).toEqual({ topic: 'instance.heartbeat', ...VALID });
  });

  it.each<MapFormat>(['fixmap', 'map16', 'map32'])('accepts the map as %s', (format) => {
    expect(expectMessage(decodePayload(payload(validFields(), format)))).toEqual({ topic: 'instance.heartbeat', ...VALID });
  });

  it('accepts the fields in any order', () => {
    const reversed = payload(validFields().reverse());
    expect(expectMessage(decodePayload(reversed))).toEqual({ topic: 'instance.heartbeat', ...VALID });
  });

  it('keeps the last value of a repeated key', () => {
    const body = payload([...validFields(), ['epoch', mp.fixint(4)]]);
    expect(expectMessage(decodePayload(body)).epoch).toBe(4);
  });

  const integerWidths: Array<[string, (n: number) => Buffer, number]> = [
    ['positive fixint', mp.fixint, 5],
    ['uint 8', mp.u8, 200],
    ['uint 16', mp.u16, 60000],
    ['uint 32', mp.u32, 4000000000],
    ['uint 64', (n) => mp.u64(n), 5],
    ['uint 64 (large)', (n) => mp.u64(n), Number.MAX_SAFE_INTEGER],
    ['int 8', mp.i8, 100],
    ['int 16', mp.i16, 30000],
    ['int 32', mp.i32, 2000000000],
    ['int 64', (n) => mp.i64(n), 2 ** 40],
    ['float 64 with a whole value', mp.f64, 2 ** 40],
    ['float 32 with a whole value', mp.f32, 1024],
  ];

  it.each(['epoch', 'seq', 'pid', 'heartbeatInterval', 'priority', 'procStart'])(
    'accepts %s in every integer width',
    (name) => {
      for (const [format, write, value] of integerWidths) {
        const result = decodePayload(payload(fieldsWith({ [name]: write(value) })));
        expect(result, `${name} as ${format}`).toMatchObject({ ok: true, message: { [name]: value } });
      }
    },
  );

  it('accepts version 1 in every integer width', () => {
    for (const value of [mp.fixint(1), mp.u8(1), mp.u16(1), mp.u32(1), mp.u64(1), mp.i8(1), mp.i16(1), mp.i32(1), mp.i64(1), mp.f64(1)]) {
      expect(expectMessage(decodePayload(payload(fieldsWith({ version: value })))).version).toBe(1);
    }
  });

  it.each([
    ['float 64', mp.f64(1767225600123.5), 1767225600123.5],
    ['float 32', mp.f32(0.5), 0.5],
    ['uint 64 (a millisecond timestamp)', mp.u64(1767225600251), 1767225600251],
    ['int 64', mp.i64(1767225600251), 1767225600251],
    ['uint 32', mp.u32(4000000000), 4000000000],
    ['positive fixint', mp.fixint(0), 0],
    ['negative int 32', mp.i32(-5000), -5000],
  ])('accepts sentAt as %s', (_format, value, expected) => {
    expect(expectMessage(decodePayload(payload(fieldsWith({ sentAt: value })))).sentAt).toBe(expected);
  });

  it.each([
    ['fixstr', mp.fixstr],
    ['str 8', mp.str8],
    ['str 16', mp.str16],
    ['str 32', mp.str32],
  ])('accepts instanceId and host as %s', (_format, write) => {
    const body = payload(fieldsWith({ instanceId: write('node-b'), host: write('host-b') }));
    expect(expectMessage(decodePayload(body))).toMatchObject({ instanceId: 'node-b', host: 'host-b' });
  });

  it('accepts keys written as str 8 and str 16', () => {
    const entries: Entry[] = validFields().map(([n, v], i): Entry => [i % 2 === 0 ? mp.str8(n) : mp.str16(n), v]);
    expect(expectMessage(decodePayload(mp.map32(entries)))).toEqual({ topic: 'instance.heartbeat', ...VALID });
  });

  it('accepts members as array 16 and array 32 with ids in any string width', () => {
    const pairs = [
      mp.array16([mp.str8('api-2'), mp.u64(2)]),
      mp.array32([mp.str32('api-3'), mp.u16(5)]),
    ];
    for (const list of [mp.array16(pairs), mp.array32(pairs)]) {
      expect(expectMessage(decodePayload(payload(fieldsWith({ members: list })))).members).toEqual([
        ['api-2', 2],
        ['api-3', 5],
      ]);
    }
  });

  it('accepts the largest integers: 2^53 - 1 as uint 64 and 2^32 - 1 as uint 32', () => {
    const body = payload(fieldsWith({ epoch: mp.u64(Number.MAX_SAFE_INTEGER), seq: mp.u32(0xffffffff) }));
    expect(expectMessage(decodePayload(body))).toMatchObject({ epoch: Number.MAX_SAFE_INTEGER, seq: 0xffffffff });
  });
});

// --- prototype pollution ------------------------------------------------------------------------

describe('__proto__ and other special keys', () => {
  const protoKey = mp.fixstr('__proto__');
  const polluting = mp.fixmap([
    [mp.fixstr('polluted'), mp.bool(true)],
    [mp.fixstr('version'), mp.fixint(1)],
  ]);

  it('ignores a __proto__ key: nothing is polluted and the message keeps Object.prototype', () => {
    const entries: Entry[] = [...validFields().map(([n, v]): Entry => [mp.fixstr(n), v]), [protoKey, polluting]];
    const message = expectMessage(decodePayload(mp.fixmap(entries)));
    expect(message).toEqual({ topic: 'instance.heartbeat', ...VALID });
    expect(Object.getPrototypeOf(message)).toBe(Object.prototype);
    expect((message as unknown as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('does not read required fields through a __proto__ key', () => {
    const inherited = mp.fixmap(validFields().map(([n, v]): Entry => [mp.fixstr(n), v]));
    expectReject(decodePayload(mp.fixmap([[protoKey, inherited]])), 'shape');
  });

  it('ignores a __proto__ key nested in an unknown field', () => {
    const nested = mp.fixmap([[protoKey, polluting]]);
    const message = expectMessage(decodePayload(payload(fieldsWith({ extra: nested }))));
    expect(message).toEqual({ topic: 'instance.heartbeat', ...VALID });
    expect(Object.prototype).not.toHaveProperty('polluted');
  });

  it('ignores constructor, toString and hasOwnProperty keys', () => {
    const body = payload(
      fieldsWith({ constructor: mp.fixint(1), toString: mp.fixstr('x'), hasOwnProperty: mp.fixint(1), valueOf: mp.nil() }),
    );
    const message = expectMessage(decodePayload(body));
    expect(message).toEqual({ topic: 'instance.heartbeat', ...VALID });
    expect(typeof Object.prototype.toString).toBe('function');
    expect(Object.hasOwn({ a: 1 }, 'a')).toBe(true);
  });

  it('drops a payload whose only fields are a __proto__ map as shape', () => {
    expectReject(decodePayload(mp.fixmap([[protoKey, polluting]])), 'shape');
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

// --- every reason is reachable ------------------------------------------------------------------

describe('reject reasons', () => {
  it('produces every reason of REJECT_REASONS from some input', () => {
    const valid = payload(validFields());
    const seen = new Set<RejectReason>();
    const inputs: Uint8Array[][] = [
      [HEARTBEAT],
      [Buffer.from('instance.other'), valid],
      [HEARTBEAT, Buffer.alloc(MAX_PAYLOAD_BYTES + 1)],
      [HEARTBEAT, Buffer.alloc(0)],
      [HEARTBEAT, mp.fixarray([])],
      [HEARTBEAT, payload(fieldsWith({ version: mp.fixint(2) }))],
    ];
    for (const frames of inputs) {
      const result = decode(frames);
      if (!result.ok) seen.add(result.reason);
    }
    expect([...seen].sort()).toEqual([...REJECT_REASONS].sort());
  });
});

// --- docs/PROTOCOL.md ---------------------------------------------------------------------------

const protocolDoc = readFileSync(new URL('../../../docs/PROTOCOL.md', import.meta.url), 'utf8');

/** The ```hex title="..."``` blocks of the doc, as frames. Frames start at `# frame N` lines. */
function hexExamples(doc: string): Map<string, Buffer[]> {
  const out = new Map<string, Buffer[]>();
  for (const match of doc.matchAll(/^```hex title="([^"]+)"\n([\s\S]*?)^```$/gm)) {
    const [, title, body] = match as unknown as [string, string, string];
    const frames: number[][] = [];
    const declared: number[] = [];
    for (const line of body.split('\n')) {
      const header = /^#\s*frame\s+(\d+)\b.*?(\d+)\s+bytes/.exec(line.trim());
      if (header !== null) {
        expect(Number(header[1]), `${title}: frame numbers in order`).toBe(frames.length + 1);
        frames.push([]);
        declared.push(Number(header[2]));
        continue;
      }
      const data = line.replace(/#.*$/, '').trim();
      if (data === '') continue;
      const current = frames.at(-1);
      if (current === undefined) throw new Error(`${title}: bytes before the first "# frame" line`);
      for (const token of data.split(/\s+/)) {
        if (!/^[0-9a-f]{2}$/.test(token)) throw new Error(`${title}: "${token}" is not a hex byte`);
        current.push(parseInt(token, 16));
      }
    }
    frames.forEach((f, i) => expect(f.length, `${title}: frame ${i + 1} byte count`).toBe(declared[i]));
    out.set(title, frames.map((f) => Buffer.from(f)));
  }
  return out;
}

/** The ```json title="..."``` blocks: the decoded message of each example. */
function jsonExamples(doc: string): Map<string, WireMessage> {
  const out = new Map<string, WireMessage>();
  for (const match of doc.matchAll(/^```json title="([^"]+)"\n([\s\S]*?)^```$/gm)) {
    const [, title, body] = match as unknown as [string, string, string];
    out.set(title, JSON.parse(body) as WireMessage);
  }
  return out;
}

describe('docs/PROTOCOL.md examples', () => {
  const hex = hexExamples(protocolDoc);
  const json = jsonExamples(protocolDoc);

  it('has a heartbeat and a shutdown example, each with its decoded values', () => {
    expect([...hex.keys()]).toEqual(expect.arrayContaining(['heartbeat', 'shutdown']));
    expect([...json.keys()].sort()).toEqual([...hex.keys()].sort());
  });

  it.each([...hex.keys()])('decodes the %s example to the documented values', (title) => {
    const frames = hex.get(title) as Buffer[];
    expect(frames).toHaveLength(2);
    expect(expectMessage(decode(frames))).toEqual(json.get(title));
  });

  it.each([...hex.keys()])('encodes the documented values of the %s example to the documented bytes', (title) => {
    const { topic, ...fields } = json.get(title) as WireMessage;
    const [topicFrame, payloadFrame] = encode(topic as Topic, fields);
    const [docTopic, docPayload] = hex.get(title) as Buffer[];
    expect(topicFrame.toString('hex')).toBe((docTopic as Buffer).toString('hex'));
    expect(payloadFrame.toString('hex')).toBe((docPayload as Buffer).toString('hex'));
  });

  it('decodes the heartbeat example rewritten with the other widths the doc lists', () => {
    const expected = json.get('heartbeat') as WireMessage;
    // The doc's own hex for these alternatives.
    for (const snippet of ['`8b`', '`df 00 00 00 0b`', '`cf 00 00 00 00 00 00 00 07`', '`cf 00 00 01 9b 76 da a8 fb`']) {
      expect(protocolDoc).toContain(snippet);
    }
    expect(mp.u64(7).toString('hex')).toBe('cf0000000000000007');
    expect(mp.u64(1767225600251).toString('hex')).toBe('cf0000019b76daa8fb');
    const fields: Fields = [
      ['version', mp.fixint(1)],
      ['instanceId', mp.fixstr(expected.instanceId)],
      ['epoch', mp.u64(expected.epoch)],
      ['seq', mp.fixint(expected.seq)],
      ['sentAt', mp.u64(1767225600251)],
      ['pid', mp.u16(expected.pid)],
      ['host', mp.fixstr(expected.host)],
      ['heartbeatInterval', mp.u16(expected.heartbeatInterval as number)],
      ['priority', mp.fixint(expected.priority as number)],
      ['procStart', mp.u32(expected.procStart as number)],
      ['members', mp.fixarray((expected.members ?? []).map(([id, p]) => mp.fixarray([mp.fixstr(id), mp.fixint(p)])))],
    ];
    for (const format of ['fixmap', 'map32'] as const) {
      const body = payload(fields, format);
      expect(body.subarray(0, format === 'fixmap' ? 1 : 5).toString('hex')).toBe(format === 'fixmap' ? '8b' : 'df0000000b');
      expect(expectMessage(decodePayload(body))).toEqual({ ...expected, sentAt: 1767225600251 });
    }
  });

  it('states the limits and reject reasons that messages.ts defines', () => {
    expect(protocolDoc).toContain(`${MAX_PAYLOAD_BYTES} bytes`);
    expect(protocolDoc).toContain(`${MAX_TOPIC_BYTES} bytes`);
    for (const reason of REJECT_REASONS) expect(protocolDoc).toContain(`\`${reason}\``);
    for (const topic of TOPICS) expect(protocolDoc).toContain(`\`${topic}\``);
  });
});

describe('endpointStolen (optional)', () => {
  const base: Payload = { version: 1, instanceId: 'a', epoch: 1, seq: 1, sentAt: 1, pid: 1, host: 'h' };

  it('round-trips, and is absent unless set', () => {
    const with_ = decode(encode('instance.heartbeat', { ...base, endpointStolen: 'replaced' }));
    expect(with_).toMatchObject({ ok: true, message: { endpointStolen: 'replaced' } });
    const without = decode(encode('instance.heartbeat', base));
    expect(without.ok && Object.hasOwn(without.message, 'endpointStolen')).toBe(false);
  });

  it('accepts any short string and drops anything else as shape', () => {
    expect(decode(encode('instance.heartbeat', { ...base, endpointStolen: 'some-future-word' })).ok).toBe(true);
    for (const bad of ['', 'x'.repeat(65), 7, true, ['gone']]) {
      const frames = encode('instance.heartbeat', { ...base, endpointStolen: bad as never });
      expect(decode(frames)).toMatchObject({ ok: false, reason: 'shape' });
    }
  });
});
