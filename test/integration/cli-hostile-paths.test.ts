/**
 * Paths that used to hang the CLI (issue 15, item 4, second bullet), with real processes: a key
 * file that is a FIFO blocked `run` in its open (and the first SIGTERM was ignored); a
 * `--workdir` or `keygen --out` under /proc spun at 100 % CPU for ever (Node's recursive mkdir
 * never returns there) and ignored SIGTERM. Each now ends by itself within seconds, with a
 * message that names the path and the reason.
 */
import { execFileSync, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { ROOT } from '../../harness/child-runtime.js';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { collect, type RunResult } from '../../harness/run-as.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Runs the CLI; killed (by pid) after 20 s, which the assertions then report as a hang. */
function cli(args: string[]): Promise<RunResult> {
  const child = spawn(process.execPath, ['bin/failover-watch.js', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  return collect(child, 20_000);
}

const sleeper = [process.execPath, '-e', 'setInterval(() => {}, 1000)'];

it('run refuses a key file that is a FIFO at once', async () => {
  const work = tempWorkdir();
  cleanups.push(work.cleanup);
  const keys = join(work.path, 'keys');
  execFileSync(process.execPath, ['bin/failover-watch.js', 'keygen', '--out', keys, '--name', 'a'], { cwd: ROOT, stdio: 'ignore' });
  rmSync(join(keys, 'server.key'));
  execFileSync('mkfifo', ['-m', '600', join(keys, 'server.key')]);
  const r = await cli(['run', '-e', uniqueIpc('fw-fifo'), '--workdir', work.path, '--curve-dir', keys, '--curve-name', 'a', '--', ...sleeper]);
  expect(r.timedOut, 'the CLI hung on the FIFO').toBe(false);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`${join(keys, 'server.key')} is not a regular file (a FIFO)`);
});

it('run refuses a --workdir under /proc at once', async () => {
  const r = await cli(['run', '-e', uniqueIpc('fw-proc'), '--workdir', '/proc/self/fw-state', '--', ...sleeper]);
  expect(r.timedOut, 'the CLI spun on /proc').toBe(false);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('cannot create the directory /proc/self/fw-state');
});

it('run refuses a --workdir where no state file can be made', async () => {
  // /proc/1 is a directory of root (who runs this suite) or of another user: either way no file
  // can be created in it. Before, the node started and every promotion failed.
  const r = await cli(['run', '-e', uniqueIpc('fw-proc1'), '--workdir', '/proc/1', '--', ...sleeper]);
  expect(r.timedOut, 'the CLI kept running without a usable work directory').toBe(false);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/work directory refused: .*\/proc\/1/);
});

it('keygen refuses an --out under /proc at once', async () => {
  const r = await cli(['keygen', '--out', '/proc/self/fw-keys']);
  expect(r.timedOut, 'keygen spun on /proc').toBe(false);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('/proc/self/fw-keys');
});
