import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempWorkdir } from '../../../harness/cluster.js';
import { isFailoverError } from '../../../src/errors.js';
import { readCurveKeys } from '../../../src/index.js';
import { parseKeyFile, writeCurveKeys as keygen } from '../../../src/transport/zmq/curve-key-files.js';
import { resolveCurve } from '../../../src/transport/zmq/curve.js';

let tmp: ReturnType<typeof tempWorkdir> | undefined;
afterEach(() => tmp?.cleanup());

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('writeCurveKeys (keygen) and readCurveKeys', () => {
  it('writes a 0700 directory of 0600 files that read back as a valid curve option', async () => {
    tmp = tempWorkdir();
    const dir = join(tmp.path, 'keys', 'curve');
    const a = await keygen(dir, 'node-a', false);
    const b = await keygen(dir, 'node-b', false);
    expect('files' in a && a.files.map((f) => [f.kind, f.action])).toEqual([
      ['server pair', 'written'],
      ['client pair', 'written'],
      ['client public key', 'written'],
    ]);
    expect('files' in b && b.files[0]?.action).toBe('kept'); // one server pair per cluster
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'clients'))).toBe(0o700);
    for (const f of ['server.key', 'clients/node-a.key', 'clients/node-a.pub', 'clients/node-b.key']) expect(mode(join(dir, f))).toBe(0o600);
    expect(parseKeyFile(readFileSync(join(dir, 'clients/node-a.pub'), 'utf8')).secretKey).toBeUndefined();

    const curveA = await readCurveKeys({ dir, name: 'node-a' });
    const curveB = await readCurveKeys({ dir, name: 'node-b' });
    expect(() => resolveCurve(curveA)).not.toThrow();
    expect(curveA.serverPublicKey).toBe(curveB.serverPublicKey);
    expect(curveA.publicKey).not.toBe(curveB.publicKey);
    expect([...curveA.allowedClientKeys].sort()).toEqual([curveA.publicKey, curveB.publicKey].sort());

    const explicit = await readCurveKeys({
      serverKeyFile: join(dir, 'server.key'),
      keyFile: join(dir, 'clients/node-b.key'),
      allowedClientKeyFiles: [join(dir, 'clients/node-a.pub')],
    });
    expect(explicit.allowedClientKeys).toEqual([curveA.publicKey]);
  });

  it("keeps a node's pair unless forced", async () => {
    tmp = tempWorkdir();
    const dir = join(tmp.path, 'curve');
    await keygen(dir, 'n1', false);
    const before = readFileSync(join(dir, 'clients/n1.key'), 'utf8');
    expect(await keygen(dir, 'n1', false)).toEqual({ exists: join(dir, 'clients/n1.key') });
    expect(readFileSync(join(dir, 'clients/n1.key'), 'utf8')).toBe(before);
    await keygen(dir, 'n1', true);
    expect(readFileSync(join(dir, 'clients/n1.key'), 'utf8')).not.toBe(before);
    expect(mode(join(dir, 'clients/n1.key'))).toBe(0o600);
  });

  it('refuses a secret key file others may read, or a broken one, naming the file but no key', async () => {
    tmp = tempWorkdir();
    const dir = join(tmp.path, 'curve');
    await keygen(dir, 'n1', false);
    const secretText = readFileSync(join(dir, 'server.key'), 'utf8');
    const secret = parseKeyFile(secretText).secretKey as string;

    chmodSync(join(dir, 'server.key'), 0o644);
    const loose = await readCurveKeys({ dir, name: 'n1' }).catch((e: unknown) => e);
    expect(isFailoverError(loose, 'ERR_FAILOVER_INVALID_OPTION')).toBe(true);
    expect((loose as Error).message).toContain('server.key');
    expect((loose as Error).message).toContain('0644');
    chmodSync(join(dir, 'server.key'), 0o600);

    writeFileSync(join(dir, 'server.key'), secretText.replace(/secret-key = "(.{39})."/, 'secret-key = "$1~"'));
    const broken = await readCurveKeys({ dir, name: 'n1' }).catch((e: unknown) => e);
    expect(isFailoverError(broken, 'ERR_FAILOVER_INVALID_OPTION')).toBe(true);
    expect((broken as Error).message).toContain('secret-key');
    expect((broken as Error).message).not.toContain(secret.slice(0, 20));

    writeFileSync(join(dir, 'server.key'), secretText);
    const missing = await readCurveKeys({ dir, name: 'nobody' }).catch((e: unknown) => e);
    expect((missing as Error).message).toContain('nobody.key');
  });
});
