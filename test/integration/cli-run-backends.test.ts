/**
 * `failover-watch run --postgres` and `run --etcd` as real OS processes against a real server
 * this file starts on free loopback ports: the command runs under the leader only, and when the
 * leading supervisor is SIGKILLed (no goodbye) the second one takes over and starts it. Every
 * wait is bounded and driven by a process's JSON output.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempWorkdir } from '../../harness/cluster.js';
import { PostgresServer, postgresSkipReason } from '../../harness/postgres-server.js';
import { cleanups, cli, isPrimary, isSecondary, type CliProcess } from './cli-run-process.js';
import { startEtcd } from './etcd-kit.js';

/** A command that appends "ROLE EPOCH" to DIR/<instance id>.log, then idles. */
function childCommand(dir: string): string[] {
  const script =
    `require('fs').appendFileSync(require('path').join(${JSON.stringify(dir)}, process.env.FAILOVER_INSTANCE_ID + '.log'), ` +
    `process.env.FAILOVER_ROLE + ' ' + process.env.FAILOVER_EPOCH + '\\n'); setInterval(() => {}, 1000);`;
  return [process.execPath, '-e', script];
}

/** The lines of DIR/<id>.log once there is at least one (bounded). */
async function logLines(dir: string, id: string, timeout = 5000): Promise<string[]> {
  const path = join(dir, `${id}.log`);
  const deadline = Date.now() + timeout;
  for (let i = 0; i < 500 && Date.now() < deadline; i++) {
    if (existsSync(path)) {
      const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l !== '');
      if (lines.length > 0) return lines;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${path} has no line within ${timeout} ms`);
}

/**
 * Two supervisors of one election: the first leads and runs the command, the second stands by;
 * SIGKILL the first, and the second takes over within `takeoverMs` and runs the command.
 */
async function killTakeover(backendArgs: string[], takeoverMs: number): Promise<void> {
  const work = tempWorkdir();
  cleanups.push(work.cleanup);
  const node = (id: string): CliProcess =>
    cli(['run', ...backendArgs, '--id', id, '--workdir', work.path, '--json', '--metadata', `node=${id}`, '--', ...childCommand(work.path)]);
  const a = node('a');
  await a.waitFor(isPrimary, 20_000, 'a primary');
  expect(a.events[0]).toMatchObject({ event: 'started', metadata: { node: 'a' } });
  const started = await a.waitFor((e) => e.event === 'childStarted', 5000, 'a starts the command');
  const b = node('b');
  await b.waitFor(isSecondary, 20_000, 'b secondary');
  expect(b.events.filter((e) => e.event === 'childStarted')).toEqual([]);
  const aEpoch = Number(started.epoch);
  expect(await logLines(work.path, 'a')).toEqual([`primary ${aEpoch}`]);

  process.kill(a.child.pid!, 'SIGKILL');
  const promoted = await b.waitFor(isPrimary, takeoverMs, `b primary within ${takeoverMs} ms of the SIGKILL`);
  expect(Number(promoted.epoch)).toBeGreaterThan(aEpoch);
  const bStarted = await b.waitFor((e) => e.event === 'childStarted', 5000, 'b starts the command');
  expect(bStarted.epoch).toBe(promoted.epoch);
  expect(await logLines(work.path, 'b')).toEqual([`primary ${promoted.epoch}`]);
}

const pgSkip = postgresSkipReason();
describe.skipIf(pgSkip !== undefined)('failover-watch run --postgres', () => {
  it('runs under the leader; a SIGKILLed leader is replaced', async () => {
    const server = await PostgresServer.start();
    cleanups.push(() => server.destroy());
    // The dead supervisor's connection closes with its process: the lock is free in milliseconds.
    await killTakeover(['--postgres', server.url, '--project', `clipg${process.pid}`], 10_000);
  }, 90_000);
});

describe('failover-watch run --etcd', () => {
  it('runs under the leader; a SIGKILLed leader is replaced', async () => {
    const etcd = await startEtcd(1);
    cleanups.push(() => etcd.stop());
    // The dead supervisor's lease expires: --lease-ttl plus the watch, with slack for load.
    await killTakeover(['--etcd', etcd.hosts.join(','), '--project', `clietcd${process.pid}`, '--lease-ttl', '2000'], 10_000);
  }, 90_000);
});
