/**
 * Property tests of the wire codec. Generators (the fault injection) are kept apart from
 * `checkDecodeResult` (the checker): whatever bytes arrive, `decode` returns, never throws, and
 * returns either a message whose every field is in its documented range or a rejection with one
 * of the known reasons. Valid payloads round-trip exactly, and a 4096-byte payload of any content
 * decodes in bounded time.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decode, encode, encodeFromTemplate, messageTemplate } from '../../../src/protocol/codec.js';
import {
  MAX_ID_LENGTH,
  MAX_MEMBERS,
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  REJECT_REASONS,
  TOPICS,
  type DecodeResult,
  type Payload,
  type Topic,
} from '../../../src/protocol/messages.js';

const RUNS = 2000;

// --- the checker --------------------------------------------------------------------------------

const isUint = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isId = (v: unknown): boolean => typeof v === 'string' && v.length >= 1 && v.length <= MAX_ID_LENGTH;

/** Throws unless `result` is a well-formed DecodeResult within the documented ranges. */
function checkDecodeResult(result: DecodeResult): void {
  expect(typeof result).toBe('object');
  if (!result.ok) {
    expect(result.ok).toBe(false);
    expect(REJECT_REASONS).toContain(result.reason);
    expect(typeof result.detail).toBe('string');
    return;
  }
  const m = result.message;
  expect(TOPICS).toContain(m.topic);
  expect(m.version).toBe(PROTOCOL_VERSION);
  expect(isId(m.instanceId)).toBe(true);
  expect(isId(m.host)).toBe(true);
  expect(isUint(m.epoch)).toBe(true);
  expect(isUint(m.seq)).toBe(true);
  expect(isUint(m.pid) && m.pid > 0).toBe(true);
  expect(typeof m.sentAt === 'number' && Number.isFinite(m.sentAt)).toBe(true);
  if (m.heartbeatInterval !== undefined) expect(isUint(m.heartbeatInterval) && m.heartbeatInterval > 0).toBe(true);
  if (m.priority !== undefined) expect(isUint(m.priority)).toBe(true);
  if (m.procStart !== undefined) expect(isUint(m.procStart)).toBe(true);
  if (m.members !== undefined) {
    expect(Array.isArray(m.members)).toBe(true);
    expect(m.members.length).toBeLessThanOrEqual(MAX_MEMBERS);
    for (const pair of m.members) {
      expect(Array.isArray(pair) && pair.length === 2).toBe(true);
      expect(isId(pair[0]) && isUint(pair[1])).toBe(true);
    }
  }
}

/** Decodes `frames`, failing the property if decode throws, and checks the result. */
function decodeChecked(frames: readonly Uint8Array[]): DecodeResult {
  let result: DecodeResult;
  try {
    result = decode(frames);
  } catch (error) {
    throw new Error(`decode threw: ${String(error)}`);
  }
  checkDecodeResult(result);
  return result;
}

// --- generators (fault injection) ---------------------------------------------------------------

const topicArb: fc.Arbitrary<Topic> = fc.constantFrom(...TOPICS);
const topicFrameArb = fc.oneof(
  topicArb.map((t) => Buffer.from(t, 'utf8')),
  fc.uint8Array({ maxLength: 80 }),
  fc.string({ maxLength: 70 }).map((s) => Buffer.from(`instance.${s}`, 'utf8')),
);

const uintArb = fc.oneof(
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.maxSafeNat(),
  fc.constantFrom(0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
);
const positiveArb = uintArb.filter((n) => n > 0);
// Printable ASCII up to the limit, or any code points (astral ones count 2 UTF-16 units).
const idArb = fc.oneof(
  fc.string({ minLength: 1, maxLength: MAX_ID_LENGTH }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: MAX_ID_LENGTH / 2 }),
);
const shortIdArb = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }));
const sentAtArb = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
  fc.integer({ min: 1_500_000_000_000, max: 2_500_000_000_000 }),
);

/** Any payload the encoder is allowed to be given whose members fit in the payload limit. */
const payloadArb: fc.Arbitrary<Payload> = fc.record(
  {
    version: fc.constant(PROTOCOL_VERSION),
    instanceId: idArb,
    epoch: uintArb,
    seq: uintArb,
    sentAt: sentAtArb,
    pid: positiveArb,
    host: idArb,
    heartbeatInterval: positiveArb,
    priority: uintArb,
    procStart: uintArb,
    // 8 ids of at most 160 UTF-8 bytes, plus two of at most 1024: always under 4096 bytes.
    members: fc.array(fc.tuple(shortIdArb, uintArb), { maxLength: 8 }),
  },
  { requiredKeys: ['version', 'instanceId', 'epoch', 'seq', 'sentAt', 'pid', 'host'] },
);

/** Small payloads, so that mutations land on interesting bytes. */
const smallPayloadArb: fc.Arbitrary<Payload> = fc.record(
  {
    version: fc.constant(PROTOCOL_VERSION),
    instanceId: fc.string({ minLength: 1, maxLength: 6 }),
    epoch: uintArb,
    seq: uintArb,
    sentAt: sentAtArb,
    pid: positiveArb,
    host: fc.string({ minLength: 1, maxLength: 6 }),
    heartbeatInterval: positiveArb,
    priority: uintArb,
    procStart: uintArb,
    members: fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 4 }), uintArb), { maxLength: 3 }),
  },
  { requiredKeys: ['version', 'instanceId', 'epoch', 'seq', 'sentAt', 'pid', 'host'] },
);

/** Member lists up to 4 over the limit, with ids long enough that many lists exceed 4096 bytes. */
const longMembersArb = fc.array(
  fc.tuple(fc.oneof(idArb, fc.string({ minLength: 100, maxLength: MAX_ID_LENGTH })), uintArb),
  { maxLength: MAX_MEMBERS + 4, size: 'max' },
);

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; to: number }
  | { kind: 'extend'; bytes: Uint8Array }
  | { kind: 'insert'; at: number; byte: number }
  | { kind: 'delete'; at: number }
  | { kind: 'set'; at: number; byte: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), to: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('set' as const),
    at: fc.nat(),
    // Bytes that change a msgpack type: headers of maps, arrays, strings, ints, floats, exts.
    byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0xc0, 0xc1, 0xcb, 0xcf, 0xd3, 0xd4, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0xff)),
  }),
);

function mutate(input: Uint8Array, mutations: readonly Mutation[]): Buffer {
  let bytes = Buffer.from(input);
  for (const m of mutations) {
    const at = bytes.length === 0 ? 0 : ('at' in m ? m.at % bytes.length : 0);
    switch (m.kind) {
      case 'flip':
        if (bytes.length > 0) bytes[at] = (bytes[at] as number) ^ (1 << m.bit);
        break;
      case 'truncate':
        bytes = bytes.subarray(0, m.to % (bytes.length + 1));
        break;
      case 'extend':
        bytes = Buffer.concat([bytes, m.bytes]);
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([m.byte]), bytes.subarray(at)]);
        break;
      case 'delete':
        if (bytes.length > 0) bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
        break;
      case 'set':
        if (bytes.length > 0) bytes[at] = m.byte;
        break;
    }
  }
  return bytes;
}

// Encoders of several configurations, so the payloads use msgpackr's records, structured clones,
// extensions, float 32 and bigints as well as plain msgpack.
const packers = [
  new Packr({ useRecords: false }),
  new Packr(),
  new Packr({ structuredClone: true }),
  new Packr({ moreTypes: true, useRecords: false }),
  new Packr({ useFloat32: 1, useRecords: false, largeBigIntToFloat: true }),
];

const anythingArb = fc.anything({
  maxDepth: 3,
  maxKeys: 6,
  withBigInt: true,
  withBoxedValues: true,
  withDate: true,
  withMap: true,
  withNullPrototype: true,
  withObjectString: true,
  withSet: true,
  withSparseArray: true,
  withTypedArray: true,
  withUnicodeString: true,
});

/** Packs `value`, or undefined when msgpackr cannot pack it. */
function tryPack(packer: Packr, value: unknown): Buffer | undefined {
  try {
    return packer.pack(value);
  } catch {
    return undefined;
  }
}

const fieldNames = ['version', 'instanceId', 'epoch', 'seq', 'sentAt', 'pid', 'host', 'heartbeatInterval', 'priority', 'procStart', 'members'];

// --- properties ---------------------------------------------------------------------------------

describe('decode never throws and returns a checked result', () => {
  it('for random bytes as the payload of each topic', () => {
    fc.assert(
      fc.property(topicArb, fc.uint8Array({ maxLength: 600 }), (topic, bytes) => {
        decodeChecked([Buffer.from(topic), bytes]);
      }),
      { numRuns: RUNS },
    );
  });

  it('for random bytes as the topic frame', () => {
    fc.assert(
      fc.property(topicFrameArb, fc.uint8Array({ maxLength: 64 }), (topic, bytes) => {
        const result = decodeChecked([topic, bytes]);
        const known = TOPICS.some((t) => Buffer.from(t).equals(Buffer.from(topic)));
        if (!known) expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/^(topic|oversize)$/) });
      }),
      { numRuns: RUNS },
    );
  });

  it('for 0-5 frames of random bytes, and says frames whenever there are not 2', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(topicFrameArb, fc.uint8Array({ maxLength: 300 })), { maxLength: 5 }), (frames) => {
        const result = decodeChecked(frames);
        if (frames.length !== 2) expect(result).toMatchObject({ ok: false, reason: 'frames' });
      }),
      { numRuns: RUNS },
    );
  });

  it('for valid frames mutated by bit flips, truncation, extension, insertion and deletion', () => {
    fc.assert(
      fc.property(
        topicArb,
        smallPayloadArb,
        fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (topic, payload, mutations, mutateTopic) => {
          const frames = encode(topic, payload);
          const mutated = mutateTopic
            ? [mutate(frames[0], mutations), frames[1]]
            : [frames[0], mutate(frames[1], mutations)];
          decodeChecked(mutated);
          // Garbage leaves no state behind: the original still decodes to the same message.
          expect(decodeChecked(frames)).toEqual({ ok: true, message: { topic, ...payload } });
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('for any value packed by msgpackr in several configurations', () => {
    fc.assert(
      fc.property(topicArb, fc.nat(packers.length - 1), anythingArb, (topic, which, value) => {
        const bytes = tryPack(packers[which] as Packr, value);
        if (bytes !== undefined) decodeChecked([Buffer.from(topic), bytes]);
      }),
      { numRuns: RUNS },
    );
  });

  it('for valid payloads with any field replaced by any value', () => {
    fc.assert(
      fc.property(
        topicArb,
        smallPayloadArb,
        fc.dictionary(fc.constantFrom(...fieldNames, '__proto__', 'constructor', 'extra'), anythingArb, { maxKeys: 3 }),
        fc.nat(packers.length - 1),
        (topic, payload, overrides, which) => {
          const body: Record<string, unknown> = { ...payload };
          for (const [key, value] of Object.entries(overrides)) Object.defineProperty(body, key, { value, enumerable: true });
          const bytes = tryPack(packers[which] as Packr, body);
          if (bytes !== undefined) decodeChecked([Buffer.from(topic), bytes]);
          expect(Object.prototype).not.toHaveProperty('version');
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('round trip', () => {
  it('decode(encode(payload)) returns the payload exactly, for any valid payload and topic', () => {
    fc.assert(
      fc.property(topicArb, payloadArb, (topic, payload) => {
        const frames = encode(topic, payload);
        expect(frames[1].byteLength).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
        const result = decodeChecked(frames);
        expect(result).toEqual({ ok: true, message: { topic, ...payload } });
      }),
      { numRuns: RUNS },
    );
  });

  it('never encodes a payload receivers drop: long member lists are cut to a prefix that fits', () => {
    fc.assert(
      fc.property(topicArb, payloadArb, longMembersArb, (topic, payload, members) => {
        const frames = encode(topic, { ...payload, members });
        expect(frames[1].byteLength).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
        const result = decodeChecked(frames);
        if (!result.ok) throw new Error(`dropped as ${result.reason}`);
        const listed = result.message.members ?? [];
        expect(listed).toEqual(members.slice(0, listed.length));
        expect(result.message).toEqual({ topic, ...payload, members: listed });
      }),
      { numRuns: 300 },
    );
  });
});

describe('bounded work', () => {
  const BUDGET_MS = 100;
  const heartbeat = Buffer.from('instance.heartbeat');

  /** The fastest of three decodes, in ms: a stray GC pause does not fail the test, a slow decoder does. */
  function timed(payload: Uint8Array): number {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      decodeChecked([heartbeat, payload]);
      best = Math.min(best, performance.now() - started);
    }
    return best;
  }

  /** One structure repeated to fill exactly MAX_PAYLOAD_BYTES. */
  const filled = (head: number[], unit: number[], tail: number[] = []): Buffer => {
    const out: number[] = [...head];
    while (out.length + unit.length + tail.length <= MAX_PAYLOAD_BYTES) out.push(...unit);
    out.push(...tail);
    while (out.length < MAX_PAYLOAD_BYTES) out.push(0x00);
    return Buffer.from(out.slice(0, MAX_PAYLOAD_BYTES));
  };

  it(`decodes adversarial ${MAX_PAYLOAD_BYTES}-byte payloads in under ${BUDGET_MS} ms each`, () => {
    const id = (n: number) => [0xd6, 0x69, (n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    const ptr = (n: number) => [0xd6, 0x70, (n >> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    const dag: number[] = [...id(1), 0x92, 0x01, 0x01];
    for (let i = 2; dag.length + 13 < MAX_PAYLOAD_BYTES - 1; i++) dag.unshift(...id(i), 0x92), dag.push(...ptr(i - 1));
    const cases: Array<[string, Buffer]> = [
      ['nested fixarrays', filled([], [0x91])],
      ['nested fixmaps', filled([], [0x81, 0xa0])],
      ['a map 32 promising 2^32-1 entries', filled([0xdf, 0xff, 0xff, 0xff, 0xff], [0xa0, 0xc0])],
      ['an array 32 promising 2^32-1 items', filled([0xdd, 0xff, 0xff, 0xff, 0xff], [0xc0])],
      ['many empty-string keys', filled([0xde, 0x07, 0xff], [0xa0, 0xc0])],
      ['1023 distinct keys', Buffer.from([0xde, 0x03, 0xff, ...Array.from({ length: 1023 }, (_, i) => [0xa2, 0x21 + (i >> 5), 0x21 + (i & 31), 0x01]).flat(), 0x00])],
      ['a str 32 claiming 4 GiB', filled([0xdb, 0xff, 0xff, 0xff, 0xff], [0x41])],
      ['structured-clone references with trailing bytes', Buffer.from([...dag, 0x00])],
      ['bigint extensions', filled([0xdc, 0x01, 0x00], [0xc7, 0x20, 0x42, ...new Array<number>(32).fill(0xff)])],
      ['record definitions', filled([0xdc, 0x03, 0xff], [0xd4, 0x72, 0x00, 0x91, 0xa0, 0x40])],
      ['regexp extensions', filled([0xdc, 0x01, 0x00], [0xd4, 0x78, 0x00, 0x92, 0xa6, 0x28, 0x61, 0x2a, 0x29, 0x2a, 0x62, 0xa0])],
      ['a valid map padded with trailing zeros', Buffer.concat([encode('instance.heartbeat', { version: 1, instanceId: 'a', epoch: 1, seq: 1, sentAt: 1, pid: 1, host: 'h' })[1], Buffer.alloc(MAX_PAYLOAD_BYTES)]).subarray(0, MAX_PAYLOAD_BYTES)],
    ];
    for (const [name, bytes] of cases) {
      expect(bytes.length, name).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
      expect(timed(bytes), name).toBeLessThan(BUDGET_MS);
    }
  });

  it(`decodes random ${MAX_PAYLOAD_BYTES}-byte payloads in under ${BUDGET_MS} ms each`, () => {
    const structural = fc.constantFrom(0x91, 0x81, 0xa0, 0xc0, 0xc1, 0xcb, 0xcf, 0xd4, 0xd6, 0xd9, 0xdc, 0xdd, 0xde, 0xdf, 0x69, 0x70, 0x72, 0xff);
    const byteArb = fc.oneof(fc.integer({ min: 0, max: 255 }), structural);
    fc.assert(
      fc.property(fc.array(byteArb, { minLength: MAX_PAYLOAD_BYTES, maxLength: MAX_PAYLOAD_BYTES }), (bytes) => {
        expect(timed(Buffer.from(bytes))).toBeLessThan(BUDGET_MS);
      }),
      { numRuns: 300 },
    );
  });
});

describe('message templates', () => {
  // A primary encodes each heartbeat from a template (the fields but seq and sentAt, packed once):
  // the bytes must be encode()'s, whatever the payload and numbers.
  const numberArb = fc.oneof(
    uintArb,
    sentAtArb,
    fc.integer({ min: -(2 ** 31), max: 2 ** 32 }),
    fc.constantFrom(-1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, -0.5, 2 ** 53),
  );
  const metadataArb = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 4 });

  it('fill to the bytes encode gives', () => {
    fc.assert(
      fc.property(
        topicArb,
        payloadArb,
        fc.option(metadataArb, { nil: undefined }),
        fc.option(fc.constantFrom('gone', 'replaced'), { nil: undefined }),
        numberArb,
        numberArb,
        (topic, payload, metadata, endpointStolen, seq, sentAt) => {
          const base: Payload = { ...payload, metadata, endpointStolen };
          const template = messageTemplate(topic, base);
          const filled = encodeFromTemplate(template, seq, sentAt);
          const whole = encode(topic, { ...base, seq, sentAt });
          expect(filled).toBeDefined();
          expect(Buffer.from(filled?.[1] ?? [])).toEqual(Buffer.from(whole[1]));
          expect(filled?.[0]).toEqual(whole[0]);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('give way to encode when members do not fit', () => {
    // Over 4096 bytes a template says so (undefined): encode() then lists fewer members.
    let over = 0;
    fc.assert(
      fc.property(payloadArb, longMembersArb, numberArb, (payload, members, seq) => {
        const base: Payload = { ...payload, members };
        const filled = encodeFromTemplate(messageTemplate('instance.heartbeat', base), seq, payload.sentAt);
        const whole = encode('instance.heartbeat', { ...base, seq });
        if (filled === undefined) {
          over++;
          expect(whole[1].byteLength).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
        } else {
          expect(Buffer.from(filled[1])).toEqual(Buffer.from(whole[1]));
        }
      }),
      { numRuns: 300 },
    );
    expect(over).toBeGreaterThan(0);
  });
});
