/**
 * `status --etcd` and `watch --etcd` as real OS processes (`node bin/failover-watch.js`) against
 * a real single etcd member on free loopback ports started by this file, with the election run
 * by EtcdElection nodes in this process or in a child process (for a real SIGKILL). Every wait is
 * bounded and driven by a process's output or exit; only processes this file started are
 * stopped, by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/child-runtime.js';
import { CliProcesses, runCli } from '../../harness/cli-process.js';
import { EtcdElection } from '../../src/etcd.js';
import { startEtcd, type EtcdCluster } from './etcd-kit.js';

let etcd: EtcdCluster;
let seq = 0;
const elections: EtcdElection[] = [];
const children: ChildProcess[] = [];
const cli = new CliProcesses();
/** Bound on one CLI process (tsx compiles the sources on first use). */
const PROCESS_TIMEOUT = 20_000;

beforeAll(async () => {
  etcd = await startEtcd(1);
});
afterEach(async () => {
  await cli.stopAll();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) process.kill(c.pid, 'SIGKILL');
  await Promise.all(elections.splice(0).map((e) => e.shutdown()));
});
afterAll(async () => {
  await etcd?.stop();
});

const project = (what: string): string => `cli-${what}-${process.pid}-${++seq}`;

async function node(p: string, id: string, priority = 1, metadata?: Record<string, string>): Promise<EtcdElection> {
  const e = new EtcdElection({ project: p, instanceId: id, hosts: etcd.hosts, priority, ...(metadata === undefined ? {} : { metadata }) });
  elections.push(e);
  await e.start();
  return e;
}

describe('status --etcd', () => {
  it('exits 0 and names the leader, its epoch and the line', async () => {
    const p = project('status');
    const a = await node(p, 'alpha', 1, { port: '7001', zone: 'a' });
    await node(p, 'beta', 2);
    expect(a.role).toBe('primary');
    const r = await runCli(['status', '--etcd', etcd.hosts[0]!, '--project', p]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(`^leader alpha of ${p}, revision ${a.epoch}, lease \\d+ ms left; metadata port=7001 zone=a; live: alpha \\(priority 1\\) \\*, beta \\(priority 2\\)\\n$`),
    );
  });

  it('--json: the Redis status fields, epoch the key revision', async () => {
    const p = project('json');
    const a = await node(p, 'alpha', 1, { port: '7001' });
    const r = await runCli(['status', '--etcd', etcd.hosts.join(','), '--project', p, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ ok: true, backend: 'etcd', project: p, instanceId: 'alpha', epoch: a.epoch, revision: a.epoch, priority: 1, since: null });
    expect(j.endpoint).toBe(`${etcd.hosts[0]} /failover-watch/${p}`);
    expect(j.leaseTtlMs).toBeGreaterThanOrEqual(0);
    expect(j.leaseTtlMs).toBeLessThanOrEqual(6000); // the default leaseTTL;
    expect(j.lastRevision).toBeGreaterThanOrEqual(a.epoch);
    expect(j).toMatchObject({ metadata: { port: '7001' }, metadataDropped: 0 });
    expect(j.liveNodes).toEqual([{ nodeId: 'alpha', priority: 1, eligible: true, lastSeen: null, isLeader: true, metadata: { port: '7001' } }]);
  });

  it('watch shows metadata changes; status drops bad ones', async () => {
    const p = project('meta');
    const a = await node(p, 'alpha', 1, { port: '1' });
    const watch = cli.spawn(['watch', '--etcd', etcd.hosts[0]!, '--project', p, '--json']);
    const first = await watch.waitFor((e) => e.event === 'primaryChanged', PROCESS_TIMEOUT, 'primaryChanged alpha');
    expect(first).toMatchObject({ instanceId: 'alpha', metadata: { port: '1' } });
    a.setMetadata({ port: '2' });
    const changed = await watch.waitFor((e) => e.event === 'primaryMetadataChanged', 5000, 'the change');
    expect(changed).toMatchObject({ instanceId: 'alpha', epoch: a.epoch, metadata: { port: '2' } });
    // Written by hand into the key (same lease), breaking the rules: null and counted.
    const { Etcd3 } = await import('etcd3');
    const raw = new Etcd3({ hosts: etcd.hosts });
    try {
      const { key, leaseId } = a.status().etcd;
      await raw.put(key!).value(JSON.stringify({ nodeId: 'alpha', priority: 1, metadata: { port: 2 } })).lease(leaseId!).exec();
    } finally {
      raw.close();
    }
    const st = await runCli(['status', '--etcd', etcd.hosts[0]!, '--project', p, '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({ instanceId: 'alpha', metadata: null, metadataDropped: 1 });
    expect(a.role).toBe('primary');
  });

  it('exits 1 when nobody leads, before and after a leader', async () => {
    const p = project('none');
    const empty = await runCli(['status', '--etcd', etcd.hosts[0]!, '--project', p]);
    expect(empty.code).toBe(1);
    expect(empty.stdout).toMatch(new RegExp(`^no leader in ${p}: no node campaigns \\(last revision \\d+\\); no live nodes registered\\n$`));
    const a = await node(p, 'alpha');
    await a.shutdown();
    const r = await runCli(['status', '--etcd', etcd.hosts[0]!, '--project', p, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, backend: 'etcd', instanceId: null, epoch: null, liveNodes: [] });
  });

  it('reads only: the store revision does not move', async () => {
    const p = project('readonly');
    const a = await node(p, 'alpha');
    // alpha records its 'elected' event in etcd after start() resolves: a put of its own that
    // must land before the revision is read (bounded: 50 polls).
    for (let i = 0; i < 50 && (await a.events()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await a.events()).length).toBeGreaterThan(0);
    const { Etcd3 } = await import('etcd3');
    const client = new Etcd3({ hosts: etcd.hosts });
    try {
      const revision = async (): Promise<string> => (await client.get('/none').exec()).header.revision;
      const before = await revision();
      const r = await runCli(['status', '--etcd', etcd.hosts[0]!, '--project', p, '--json']);
      expect(r.code, r.stderr).toBe(0);
      // Every put or delete bumps it; reads do not.
      expect(await revision()).toBe(before);
    } finally {
      client.close();
    }
  });

  it('exits 1 when etcd does not answer', async () => {
    const { freePort } = await import('../../harness/cluster.js');
    const r = await runCli(['status', '--etcd', `http://127.0.0.1:${await freePort()}`, '--project', 'p', '--timeout', '500']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^failover-watch: etcd http:\/\/127\.0\.0\.1:\d+ did not answer within 500 ms/);
  });
});

describe('watch --etcd', () => {
  it('prints primaryChanged after the leader is SIGKILLed', async () => {
    const p = project('watch');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/integration/etcd-node.ts'], {
      cwd: ROOT,
      env: { ...process.env, FW_PROJECT: p, FW_ID: 'alpha', FW_HOSTS: etcd.hosts.join(',') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the child never led')), PROCESS_TIMEOUT);
      child.stdout!.on('data', (d: Buffer) => {
        if (!d.toString().includes('primary')) return;
        clearTimeout(timer);
        resolve();
      });
    });
    const b = await node(p, 'beta');
    expect(b.role).toBe('secondary');
    const watch = cli.spawn(['watch', '--etcd', etcd.hosts[0]!, '--project', p, '--json']);
    const first = await watch.waitFor((e) => e.event === 'primaryChanged', PROCESS_TIMEOUT, 'primaryChanged alpha');
    expect(first).toMatchObject({ instanceId: 'alpha', previous: null, seq: null, pid: null, host: null });
    process.kill(child.pid!, 'SIGKILL');
    // The child's lease (leaseTTL 2000 ms) expires; beta's key is then first in line.
    const taken = await watch.waitFor((e) => e.event === 'primaryChanged' && e.instanceId === 'beta', 10_000, 'primaryChanged beta');
    expect(taken).toMatchObject({ previous: 'alpha', seq: null, pid: null, host: null });
    expect(taken.epoch).toBeGreaterThan(first.epoch as number);
    expect(b.role).toBe('primary');
    expect(taken.epoch).toBe(b.epoch);
    await b.shutdown();
    const lost = await watch.waitFor((e) => e.event === 'primaryLost', 5000, 'primaryLost beta');
    expect(lost).toMatchObject({ instanceId: 'beta', epoch: taken.epoch });
    expect(watch.nonJson).toEqual([]);
  });

  it('prints the leader change in words without --json', async () => {
    const p = project('lines');
    const a = await node(p, 'alpha');
    await node(p, 'beta');
    const watch = cli.spawn(['watch', '--etcd', etcd.hosts[0]!, '--project', p]);
    const alpha = await waitLine(watch.child, / primaryChanged alpha revision \d+, lease \d+ ms left$/, PROCESS_TIMEOUT);
    expect(alpha).toMatch(/^\d{4}-\d\d-\d\dT\S+Z /);
    const beta = waitLine(watch.child, / primaryChanged beta revision \d+ \(was alpha\), lease \d+ ms left$/, 5000);
    await a.shutdown();
    expect(await beta).toContain('primaryChanged beta');
  });
});

/** The first stdout line of `child` that matches (from now on), or a rejection after `timeout` ms. */
function waitLine(child: ChildProcess, pattern: RegExp, timeout: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer | string): void => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      const hit = lines.find((l) => pattern.test(l));
      if (hit === undefined) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve(hit);
    };
    const timer = setTimeout(() => {
      child.stdout!.off('data', onData);
      reject(new Error(`no line matching ${pattern} within ${timeout} ms`));
    }, timeout);
    child.stdout!.on('data', onData);
  });
}
