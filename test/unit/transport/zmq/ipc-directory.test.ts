import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { tempWorkdir } from '../../../../harness/cluster.js';
import { checkPrivateDirectory } from '../../../../src/transport/zmq/ipc-directory.js';

let tmp: ReturnType<typeof tempWorkdir> | undefined;
afterEach(() => tmp?.cleanup());

it('creates a missing endpoint directory with mode 0700 and has nothing to say about it', async () => {
  tmp = tempWorkdir();
  const dir = join(tmp.path, 'run', 'app');
  expect(await checkPrivateDirectory(join(dir, 'cluster.sock'))).toBeUndefined();
  expect(statSync(dir).mode & 0o777).toBe(0o700);
});

it('warns about an existing directory others may enter, without changing its mode', async () => {
  tmp = tempWorkdir();
  const dir = join(tmp.path, 'shared');
  mkdirSync(dir);
  chmodSync(dir, 0o755);
  const warning = await checkPrivateDirectory(join(dir, 'cluster.sock'));
  expect(warning).toContain(dir);
  expect(warning).toContain('0755');
  expect(statSync(dir).mode & 0o777).toBe(0o755);
});
