import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempWorkdir } from '../../../../harness/cluster.js';
import { main, type CliIo } from '../../../../src/cli/main.js';
import { parseKeyFile } from '../../../../src/transport/zmq/curve-key-files.js';

let tmp: ReturnType<typeof tempWorkdir> | undefined;
afterEach(() => tmp?.cleanup());

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    isTTY: false,
    env: {},
    signal: new AbortController().signal,
  };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** Every key in the directory, from its files. */
function keysIn(dir: string): string[] {
  const files = ['server.key', ...readdirSync(join(dir, 'clients')).map((f) => join('clients', f))];
  return files.flatMap((f) => {
    const k = parseKeyFile(readFileSync(join(dir, f), 'utf8'));
    return [k.publicKey, k.secretKey].filter((x): x is string => x !== undefined);
  });
}

describe('failover-watch keygen', () => {
  it('writes the server pair and a client pair with mode 0600, and prints no key', async () => {
    tmp = tempWorkdir();
    const dir = join(tmp.path, 'curve');
    const first = await run('keygen', '--out', dir, '--name', 'node-a');
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toContain(join(dir, 'server.key'));
    expect(first.stdout).toContain(join(dir, 'clients', 'node-a.key'));
    const second = await run('keygen', '-o', dir, '-n', 'node-b', '--json');
    expect(second.code).toBe(0);
    const json = JSON.parse(second.stdout) as { files: Array<{ kind: string; action: string }> };
    expect(json.files.map((f) => `${f.kind}:${f.action}`)).toEqual(['server pair:kept', 'client pair:written', 'client public key:written']);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    for (const f of ['server.key', 'clients/node-a.key', 'clients/node-b.pub']) expect(statSync(join(dir, f)).mode & 0o777).toBe(0o600);
    for (const key of keysIn(dir)) {
      expect(first.stdout + second.stdout).not.toContain(key);
    }
  });

  it("refuses to replace a node's pair without --force (exit 1), and replaces it with", async () => {
    tmp = tempWorkdir();
    const dir = join(tmp.path, 'curve');
    await run('keygen', '--out', dir, '--name', 'a');
    const again = await run('keygen', '--out', dir, '--name', 'a');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('--force');
    expect((await run('keygen', '--out', dir, '--name', 'a', '--force')).code).toBe(0);
  });

  it('rejects a name that could leave the key directory (exit 2) and a missing --out', async () => {
    tmp = tempWorkdir();
    expect((await run('keygen', '--out', tmp.path, '--name', '../escape')).code).toBe(2);
    expect((await run('keygen', '--out', tmp.path, '--name', '.hidden')).code).toBe(2);
    expect((await run('keygen')).code).toBe(2);
  });
});
