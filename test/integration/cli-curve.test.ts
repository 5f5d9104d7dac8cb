/**
 * CURVE from the command line: keys made by `keygen`, used by `run`, `status` and `watch`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';

const started: ChildProcess[] = [];
const cleanups: Array<() => void> = [];
afterEach(async () => {
  const exits: Array<Promise<unknown>> = [];
  for (const child of started.splice(0)) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const pid = child.pid;
      // SIGTERM, so `run` stops the command it started; SIGKILL if it hangs.
      const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000);
      exits.push(new Promise((r) => child.once('exit', r)).finally(() => clearTimeout(timer)));
      process.kill(pid, 'SIGTERM');
    }
  }
  await Promise.all(exits);
  for (const c of cleanups.splice(0)) c();
});

const cliSync = (args: string[]) =>
  spawnSync(process.execPath, ['bin/failover-watch.js', ...args], { encoding: 'utf8', timeout: 30_000 });

it('run, status and watch work over CURVE with keys from keygen; without the keys status sees nothing', async () => {
  const work = tempWorkdir();
  cleanups.push(work.cleanup);
  const keys = `${work.path}/keys`;
  for (const name of ['a', 'cli']) expect(cliSync(['keygen', '--out', keys, '--name', name]).status).toBe(0);
  const endpoint = uniqueIpc('fw-cli-curve');
  const node = spawn(
    process.execPath,
    ['bin/failover-watch.js', 'run', '-e', endpoint, '--id', 'a', '--workdir', work.path, '--interval', '50', '--json',
      '--curve-dir', keys, '--curve-name', 'a', '--', process.execPath, '-e', 'setInterval(() => {}, 1000)'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.push(node);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not primary within 20 s: ${out}`)), 20_000);
    node.stdout?.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('"to":"primary"')) (clearTimeout(timer), resolve());
    });
  });

  const withKeys = cliSync(['status', '-e', endpoint, '--timeout', '5000', '--json', '--curve-dir', keys, '--curve-name', 'cli']);
  expect(withKeys.status, withKeys.stderr).toBe(0);
  expect(JSON.parse(withKeys.stdout)).toMatchObject({ ok: true, instanceId: 'a' });

  const without = cliSync(['status', '-e', endpoint, '--timeout', '500']);
  expect(without.status).toBe(1);

  const watch = cliSync(['watch', '-e', endpoint, '--json', '--timeout', '1500', '--curve-dir', keys, '--curve-name', 'cli']);
  expect(watch.status, watch.stderr).toBe(0);
  expect(watch.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string; instanceId?: string })).toContainEqual(
    expect.objectContaining({ event: 'heartbeat', instanceId: 'a' }),
  );

  const half = cliSync(['status', '-e', endpoint, '--curve-dir', keys]);
  expect(half.status).toBe(2);
  expect(half.stderr).toMatch(/--curve-dir and --curve-name go together/);
});
