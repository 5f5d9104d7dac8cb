/**
 * Encodes and decodes wire messages. Decoding never throws: anything that is not a valid
 * message (wrong frame count, unknown topic, oversized, not msgpack, wrong field types,
 * unknown version) comes back as a {@link DecodeResult} rejection with a reason to count.
 *
 * @module
 */
// Under Node's `import`, 'msgpackr/pack' is msgpackr's index.js: the same Packr and Unpackr as
// 'msgpackr', without loading its optional native string extractor (msgpackr-extract), which
// only pays off for messages full of long strings. That spares each process a native library
// and about 1 MiB. (If the application loads 'msgpackr' itself, the extractor serves this codec
// too; what it decodes is the same.)
import { Packr, Unpackr } from 'msgpackr/pack';
import {
  MAX_ID_LENGTH,
  MAX_MEMBERS,
  MAX_THEFT_LENGTH,
  MAX_PAYLOAD_BYTES,
  MAX_TOPIC_BYTES,
  PROTOCOL_VERSION,
  TOPICS,
  type DecodeResult,
  type Payload,
  type Topic,
  type WireMessage,
} from './messages.js';
import { checkMetadata } from './metadata.js';

// Plain msgpack maps with string keys: no msgpackr records, no shared structures, so any
// msgpack implementation can read and write our payloads.
const packr = new Packr({ useRecords: false, moreTypes: false, useFloat32: 0 });
// int64AsType 'number': other encoders write uint64/int64 (0xcf/0xd3) for any integer, small or
// not (e.g. a millisecond timestamp); msgpackr's default would return a bigint and the field
// would be rejected. Values of 2^53 and more come out unsafe and are still rejected.
// structuredClone false: its id/pointer extensions (0x69/0x70) let a few hundred bytes build a
// DAG that msgpackr's own error path (JSON.stringify on trailing bytes) expands exponentially.
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  moreTypes: false,
  int64AsType: 'number',
  structuredClone: false,
});

const topicBuffers = new Map<Topic, Buffer>(TOPICS.map((t) => [t, Buffer.from(t, 'utf8')]));

/** Encodes a message as the two frames `[topic, msgpack(payload)]`. */
export function encode(topic: Topic, payload: Payload): [Buffer, Buffer] {
  const body = payloadBody(payload);
  let members = body.members as ReadonlyArray<readonly [string, number]> | undefined;
  let packed = packr.pack(body);
  // Receivers drop a payload over MAX_PAYLOAD_BYTES unread, and 64 members with long ids do not
  // fit: list only as many members as fit, so every message encoded here is one peers accept.
  while (packed.byteLength > MAX_PAYLOAD_BYTES && members !== undefined && members.length > 0) {
    members = members.slice(0, -1);
    body.members = members;
    packed = packr.pack(body);
  }
  return [topicBuffers.get(topic) as Buffer, packed];
}

/**
 * A message's bytes with its `seq` and `sentAt` left open: what a primary sends every
 * `heartbeatInterval` differs from the last only there. Built by {@link messageTemplate} with
 * {@link encode}'s own packer, filled by {@link encodeFromTemplate}; the two give the bytes
 * {@link encode} gives (the codec tests compare them on arbitrary payloads).
 */
export interface MessageTemplate {
  readonly topic: Buffer;
  /** The map header and every field up to the `seq` key. */
  readonly head: Buffer;
  /** The `sentAt` key. */
  readonly mid: Buffer;
  /** Every field after `sentAt`. */
  readonly tail: Buffer;
}

const SEQ_KEY = 'seq';
const SENT_AT_KEY = 'sentAt';

/** A template of the message {@link encode} makes of `topic` and `payload` (its seq and sentAt ignored). */
export function messageTemplate(topic: Topic, payload: Payload): MessageTemplate {
  const body = payloadBody(payload);
  const keys = Object.keys(body);
  const seqAt = keys.indexOf(SEQ_KEY);
  if (seqAt < 0 || keys[seqAt + 1] !== SENT_AT_KEY) throw new Error('messageTemplate: seq and sentAt must follow each other');
  const piece = (from: number, to: number): Buffer =>
    Buffer.concat(keys.slice(from, to).flatMap((k) => [copyOf(packr.pack(k)), copyOf(packr.pack(body[k]))]));
  return {
    topic: topicBuffers.get(topic) as Buffer,
    head: Buffer.concat([mapHeader(body), piece(0, seqAt), copyOf(packr.pack(SEQ_KEY))]),
    mid: copyOf(packr.pack(SENT_AT_KEY)),
    tail: piece(seqAt + 2, keys.length),
  };
}

/**
 * The message of `template` with this `seq` and `sentAt`: one allocation and four copies, where
 * {@link encode} walks the whole map (this runs once per heartbeat, in a process otherwise
 * asleep). Undefined when the result would exceed {@link MAX_PAYLOAD_BYTES}: {@link encode}
 * then lists fewer members.
 */
export function encodeFromTemplate(template: MessageTemplate, seq: number, sentAt: number): [Buffer, Buffer] | undefined {
  const { head, mid, tail } = template;
  // Room for both numbers at their longest (9 bytes), cut to what was written.
  const out = Buffer.allocUnsafe(head.length + mid.length + tail.length + 18);
  out.set(head, 0);
  let at = writeNumber(out, head.length, seq);
  out.set(mid, at);
  at = writeNumber(out, at + mid.length, sentAt);
  out.set(tail, at);
  at += tail.length;
  return at > MAX_PAYLOAD_BYTES ? undefined : [template.topic, out.subarray(0, at)];
}

const copyOf = (bytes: Uint8Array): Buffer => Buffer.from(bytes);

/** The map header the packer writes for `body` (it may choose `map 16` for any size). */
function mapHeader(body: Record<string, unknown>): Buffer {
  const packed = packr.pack(body);
  const first = packed[0] ?? 0;
  return copyOf(packed.subarray(0, first === 0xde ? 3 : first === 0xdf ? 5 : 1));
}

/**
 * Writes `v` as this codec's packer does (no records, no float 32): the smallest int format for
 * an integer from -2^31 to 2^32 - 1, `float 64` for anything else. Returns the next offset.
 */
function writeNumber(out: Buffer, at: number, v: number): number {
  if (v >>> 0 === v) {
    if (v < 0x80) {
      out[at] = v;
      return at + 1;
    }
    if (v < 0x100) {
      out[at] = 0xcc;
      out[at + 1] = v;
      return at + 2;
    }
    if (v < 0x10000) {
      out[at] = 0xcd;
      out.writeUInt16BE(v, at + 1);
      return at + 3;
    }
    out[at] = 0xce;
    out.writeUInt32BE(v, at + 1);
    return at + 5;
  }
  if (v >> 0 === v) {
    if (v >= -0x20) {
      out[at] = 0x100 + v;
      return at + 1;
    }
    if (v >= -0x80) {
      out[at] = 0xd0;
      out[at + 1] = v + 0x100;
      return at + 2;
    }
    if (v >= -0x8000) {
      out[at] = 0xd1;
      out.writeInt16BE(v, at + 1);
      return at + 3;
    }
    out[at] = 0xd2;
    out.writeInt32BE(v, at + 1);
    return at + 5;
  }
  out[at] = 0xcb;
  out.writeDoubleBE(v, at + 1);
  return at + 9;
}

/** The map {@link encode} packs: the fields in this order, the optional ones only when set. */
function payloadBody(payload: Payload): Record<string, unknown> {
  const body: Record<string, unknown> = {
    version: payload.version,
    instanceId: payload.instanceId,
    epoch: payload.epoch,
    seq: payload.seq,
    sentAt: payload.sentAt,
    pid: payload.pid,
    host: payload.host,
  };
  if (payload.heartbeatInterval !== undefined) body.heartbeatInterval = payload.heartbeatInterval;
  if (payload.priority !== undefined) body.priority = payload.priority;
  if (payload.procStart !== undefined) body.procStart = payload.procStart;
  const members = payload.members?.slice(0, MAX_MEMBERS);
  if (members !== undefined) body.members = members;
  if (payload.endpointStolen !== undefined) body.endpointStolen = payload.endpointStolen;
  if (payload.metadata !== undefined && Object.keys(payload.metadata).length > 0) body.metadata = payload.metadata;
  return body;
}

/** Decodes the frames of one multipart message. Never throws. */
export function decode(frames: readonly Uint8Array[]): DecodeResult {
  if (frames.length !== 2) {
    return reject('frames', `expected 2 frames, received ${frames.length}`);
  }
  const [topicFrame, payloadFrame] = frames as [Uint8Array, Uint8Array];
  if (topicFrame.byteLength > MAX_TOPIC_BYTES) {
    return reject('oversize', `topic frame of ${topicFrame.byteLength} bytes`);
  }
  if (payloadFrame.byteLength > MAX_PAYLOAD_BYTES) {
    return reject('oversize', `payload frame of ${payloadFrame.byteLength} bytes`);
  }
  const topic = topicOf(topicFrame);
  if (topic === undefined) {
    const topicText = Buffer.from(topicFrame.buffer, topicFrame.byteOffset, topicFrame.byteLength).toString('utf8');
    return reject('topic', `unknown topic ${JSON.stringify(topicText)}`);
  }

  let body: unknown;
  try {
    body = unpackr.unpack(payloadFrame);
  } catch (error) {
    return reject('msgpack', error instanceof Error ? error.message : 'undecodable payload');
  }
  if (
    typeof body !== 'object' ||
    body === null ||
    Array.isArray(body) ||
    Object.getPrototypeOf(body) !== Object.prototype
  ) {
    return reject('shape', 'payload is not a msgpack map');
  }
  const map = body as Record<string, unknown>;
  const field = (name: string): unknown => own(map, name);

  const version = field('version');
  if (!isUint(version)) return reject('shape', 'version is not a non-negative integer');
  if (version !== PROTOCOL_VERSION) return reject('version', `unsupported version ${version}`);

  const instanceId = field('instanceId');
  if (!isId(instanceId)) return reject('shape', 'instanceId is not a string of 1-256 chars');
  const host = field('host');
  if (!isId(host)) return reject('shape', 'host is not a string of 1-256 chars');
  const epoch = field('epoch');
  if (!isUint(epoch)) return reject('shape', 'epoch is not a non-negative integer');
  const seq = field('seq');
  if (!isUint(seq)) return reject('shape', 'seq is not a non-negative integer');
  const pid = field('pid');
  if (!isUint(pid) || pid === 0) return reject('shape', 'pid is not a positive integer');
  const sentAt = field('sentAt');
  if (typeof sentAt !== 'number' || !Number.isFinite(sentAt)) {
    return reject('shape', 'sentAt is not a finite number');
  }
  const heartbeatInterval = field('heartbeatInterval');
  if (heartbeatInterval !== undefined && (!isUint(heartbeatInterval) || heartbeatInterval === 0)) {
    return reject('shape', 'heartbeatInterval is not a positive integer');
  }
  const priority = field('priority');
  if (priority !== undefined && !isUint(priority)) {
    return reject('shape', 'priority is not a non-negative integer');
  }

  const procStart = field('procStart');
  if (procStart !== undefined && !isUint(procStart)) return reject('shape', 'procStart is not a non-negative integer');
  const members = field('members');
  if (members !== undefined && !isMembers(members)) {
    return reject('shape', `members is not an array of at most ${MAX_MEMBERS} [instanceId, priority] pairs`);
  }
  const endpointStolen = field('endpointStolen');
  if (endpointStolen !== undefined && (typeof endpointStolen !== 'string' || endpointStolen.length === 0 || endpointStolen.length > MAX_THEFT_LENGTH)) {
    return reject('shape', `endpointStolen is not a string of 1-${MAX_THEFT_LENGTH} chars`);
  }

  // Metadata is the application's, not the election's: a bad one is dropped alone and the
  // message still counts (PROTOCOL.md section 11).
  const rawMetadata = field('metadata');
  let metadata: WireMessage['metadata'];
  let metadataRejected: string | undefined;
  if (rawMetadata !== undefined) {
    const checked = checkMetadata(rawMetadata);
    if (checked.ok) metadata = checked.metadata;
    else metadataRejected = `metadata${checked.key === undefined ? '' : ` key ${JSON.stringify(checked.key.slice(0, 64))}`}: expected ${checked.expected}`;
  }

  // Optional fields are added only when present (no spread: it copies through a slow path, and
  // this runs on every heartbeat).
  const message: { -readonly [K in keyof WireMessage]: WireMessage[K] } = {
    topic,
    version,
    instanceId,
    epoch,
    seq,
    sentAt,
    pid,
    host,
    heartbeatInterval,
    priority,
    procStart,
    members,
  };
  if (endpointStolen !== undefined) message.endpointStolen = endpointStolen;
  if (metadata !== undefined) message.metadata = metadata;
  if (metadataRejected !== undefined) message.metadataRejected = metadataRejected;
  return { ok: true, message };
}

/** `map[name]` when it is the map's own property, else undefined. */
function own(map: Record<string, unknown>, name: string): unknown {
  return Object.hasOwn(map, name) ? map[name] : undefined;
}

const TOPIC_BYTES: ReadonlyArray<readonly [Topic, Buffer]> = TOPICS.map((t) => [t, Buffer.from(t, 'utf8')]);

/** The topic a frame names, compared byte for byte (no string is made of it); undefined for any other. */
function topicOf(frame: Uint8Array): Topic | undefined {
  for (const [topic, bytes] of TOPIC_BYTES) {
    if (bytes.byteLength !== frame.byteLength) continue;
    let i = 0;
    while (i < bytes.byteLength && bytes[i] === frame[i]) i++;
    if (i === bytes.byteLength) return topic;
  }
  return undefined;
}

function reject(reason: Exclude<DecodeResult, { ok: true }>['reason'], detail: string): DecodeResult {
  return { ok: false, reason, detail };
}

function isUint(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isMembers(value: unknown): value is ReadonlyArray<readonly [string, number]> {
  if (!Array.isArray(value) || value.length > MAX_MEMBERS) return false;
  for (const m of value as unknown[]) {
    if (!Array.isArray(m) || m.length !== 2 || !isId(m[0]) || !isUint(m[1])) return false;
  }
  return true;
}

function isId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}
