import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPrivateDirectory } from '../../../src/transport/zmq/ipc-directory.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('checkPrivateDirectory', () => {
  it('creates missing directories with mode 0700', async () => {
    const base = mkdtempSync(join(tmpdir(), 'fw-ipcdir-'));
    dirs.push(base);
    expect(await checkPrivateDirectory(join(base, 'a', 'b', 'c.sock'))).toBeUndefined();
    expect(statSync(join(base, 'a', 'b')).mode & 0o777).toBe(0o700);
  });

  it('answers at once for an endpoint under /proc', async () => {
    // Node's recursive mkdir never returned for /proc/self/<new>/..., spinning a core and
    // leaving run deaf to SIGTERM; the check now fails at once and names the directory.
    const started = performance.now();
    const warning = await checkPrivateDirectory('/proc/self/fw-no-such-dir/x/c.sock');
    expect(warning).toMatch(/\/proc\/self\/fw-no-such-dir/);
    expect(performance.now() - started).toBeLessThan(5_000);
  }, 10_000);
});
