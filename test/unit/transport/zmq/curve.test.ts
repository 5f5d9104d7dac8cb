import fc from 'fast-check';
import * as zmq from 'zeromq';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../../../../src/errors.js';
import { resolveOptions } from '../../../../src/options.js';
import { curvePublicKey, isZ85Key, resolveCurve, z85Decode, z85Encode } from '../../../../src/transport/zmq/curve.js';

const server = zmq.curveKeyPair();
const client = zmq.curveKeyPair();
const other = zmq.curveKeyPair();
const valid = {
  serverPublicKey: server.publicKey,
  serverSecretKey: server.secretKey,
  publicKey: client.publicKey,
  secretKey: client.secretKey,
  allowedClientKeys: [client.publicKey, other.publicKey],
};
const allKeys = [server.publicKey, server.secretKey, client.publicKey, client.secretKey, other.publicKey, other.secretKey];

function thrown(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidOptionError);
    return error as InvalidOptionError;
  }
  throw new Error('expected a throw');
}

/** Every 8-character slice of every key: a message that shows even part of a key fails. */
function expectNoKeyMaterial(text: string): void {
  for (const key of allKeys) {
    for (let i = 0; i + 8 <= key.length; i += 4) expect(text).not.toContain(key.slice(i, i + 8));
  }
}

describe('Z85', () => {
  it('round-trips any multiple of 4 bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }).map((a) => a.subarray(0, a.length - (a.length % 4))), (bytes) => {
        expect(z85Decode(z85Encode(bytes))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('rejects text of the wrong length or alphabet and never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        const decoded = z85Decode(text);
        if (decoded !== undefined) expect(z85Encode(decoded)).toBe(text);
      }),
    );
    expect(isZ85Key('x'.repeat(39))).toBe(false);
    expect(isZ85Key(`${'x'.repeat(39)}"`)).toBe(false);
    expect(isZ85Key(server.publicKey)).toBe(true);
  });

  it('derives the same public key as libzmq', () => {
    for (const pair of [server, client, other]) expect(curvePublicKey(pair.secretKey)).toBe(pair.publicKey);
  });
});

describe('the curve option', () => {
  it('accepts a valid set of keys, and shows none of them when logged or serialized', () => {
    const curve = resolveCurve(valid);
    expect(curve.publicKey).toBe(client.publicKey);
    expectNoKeyMaterial(JSON.stringify(curve));
    expectNoKeyMaterial(inspect(curve));
    const options = resolveOptions({ endpoint: 'tcp://127.0.0.1:5555', curve: valid });
    expectNoKeyMaterial(JSON.stringify(options));
    expectNoKeyMaterial(inspect(options));
  });

  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['a secret key too short', { ...valid, secretKey: client.secretKey.slice(1) }, 'curve.secretKey'],
    ['a secret key with a character outside Z85', { ...valid, secretKey: `${client.secretKey.slice(0, 39)}"` }, 'curve.secretKey'],
    ['a server secret key of another pair', { ...valid, serverSecretKey: other.secretKey }, 'curve.serverSecretKey'],
    ['a client secret key of another pair', { ...valid, secretKey: other.secretKey }, 'curve.secretKey'],
    ['a public key swapped with its secret', { ...valid, publicKey: client.secretKey, secretKey: client.publicKey }, 'curve.secretKey'],
    ['a missing server public key', { ...valid, serverPublicKey: undefined }, 'curve.serverPublicKey'],
    ['a number as key', { ...valid, publicKey: 42 }, 'curve.publicKey'],
    ['allowed keys not an array', { ...valid, allowedClientKeys: client.publicKey }, 'curve.allowedClientKeys'],
    ['a broken allowed key', { ...valid, allowedClientKeys: [other.publicKey, `${client.secretKey}x`] }, 'curve.allowedClientKeys[1]'],
    ['an unknown field', { ...valid, serverKey: server.secretKey }, 'curve.serverKey'],
  ];
  for (const [what, input, option] of cases) {
    it(`rejects ${what}, naming ${option} and showing no key`, () => {
      const error = thrown(() => resolveOptions({ endpoint: 'tcp://127.0.0.1:5555', curve: input as never }));
      expect(error.option).toBe(option);
      expect(error.message).toContain(`\`${option}\``);
      expectNoKeyMaterial(error.message);
      expectNoKeyMaterial(String(error.received));
      expectNoKeyMaterial(inspect(error));
    });
  }

  it('rejects a curve that is not an object', () => {
    const error = thrown(() => resolveOptions({ endpoint: 'tcp://127.0.0.1:5555', curve: server.secretKey as never }));
    expect(error.option).toBe('curve');
    expectNoKeyMaterial(error.message);
  });
});
