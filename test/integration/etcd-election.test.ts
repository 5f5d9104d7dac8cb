/**
 * EtcdElection against a real single etcd member started by the test.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdElection, type EtcdLeadershipEvent } from '../../src/etcd.js';
import type { ElectionRoleChange } from '../../src/election/contract.js';
import { relay, startEtcd, type EtcdCluster } from './etcd-kit.js';

let etcd: EtcdCluster;
let seq = 0;

beforeAll(async () => {
  etcd = await startEtcd(1);
});
afterAll(async () => {
  await etcd?.stop();
});

function waitRole(e: EtcdElection, role: string, timeout: number): Promise<ElectionRoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${e.instanceId} not ${role} within ${timeout} ms`)), timeout);
    e.on('roleChanged', (c) => {
      if (c.to === role) {
        clearTimeout(timer);
        resolve(c);
      }
    });
  });
}

/** Resolves once `e` follows `id` (at once if it does), from its `primaryChanged` events. */
function waitFollows(e: EtcdElection, id: string, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    if (e.status().primary?.instanceId === id) return resolve();
    const timer = setTimeout(() => reject(new Error(`${e.instanceId} does not follow ${id} within ${timeout} ms`)), timeout);
    e.on('primaryChanged', () => {
      if (e.status().primary?.instanceId === id) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

const node = (project: string, id: string, extra: Partial<ConstructorParameters<typeof EtcdElection>[0]> = {}): EtcdElection =>
  new EtcdElection({ project, instanceId: id, hosts: etcd.hosts, ...extra });

describe('etcd election', () => {
  it('first node leads with its key revision as epoch', async () => {
    const project = `p${++seq}`;
    let promoted: number | undefined;
    const a = node(project, 'a', { onPromote: ({ epoch }) => void (promoted = epoch) });
    await a.start();
    expect(a.role).toBe('primary');
    expect(promoted).toBe(a.epoch);
    expect(Number.isSafeInteger(a.epoch) && a.epoch > 0).toBe(true);
    const nodes = await a.liveNodes();
    expect(nodes).toMatchObject([{ instanceId: 'a', role: 'primary', self: true, epoch: a.epoch }]);
    expect(a.status().etcd.state).toBe('ok');
    await a.shutdown();
    expect(a.role).toBe('stopped');
  });

  it('shutdown hands over in milliseconds', async () => {
    const project = `p${++seq}`;
    const a = node(project, 'a');
    await a.start();
    const b = node(project, 'b');
    await b.start();
    expect(b.role).toBe('secondary');
    expect(b.status().primary?.instanceId).toBe('a');
    const promoted = waitRole(b, 'primary', 5000);
    const lost: string[] = [];
    b.on('primaryLost', (e) => void lost.push(e.cause));
    const t0 = performance.now();
    await a.shutdown();
    const change = await promoted;
    const ms = performance.now() - t0;
    expect(change.epoch).toBeGreaterThan(a.epoch);
    expect(ms).toBeLessThan(1000);
    // a deleted its key with its release mark: a handover, not an expiry.
    expect(change.reason).toBe('handover');
    expect(lost).toEqual(['released']);
    await b.shutdown();
  });

  it('stepDown hands over and rejoins the line', async () => {
    const project = `p${++seq}`;
    const a = node(project, 'a');
    await a.start();
    const b = node(project, 'b');
    await b.start();
    const promoted = waitRole(b, 'primary', 5000);
    a.stepDown();
    expect((await promoted).reason).toBe('handover');
    expect(a.role).toBe('secondary');
    expect((await b.liveNodes()).map((n) => n.instanceId)).toEqual(['b', 'a']);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('a disabled leader hands over at once', async () => {
    const project = `p${++seq}`;
    const a = node(project, 'a');
    await a.start();
    const b = node(project, 'b');
    await b.start();
    const promoted = waitRole(b, 'primary', 5000);
    const t0 = performance.now();
    a.setEnabled(false);
    await promoted;
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(a.role).toBe('secondary');
    expect((await b.liveNodes()).map((n) => n.instanceId)).toEqual(['b']);
    // The disabled node lists itself, not eligible.
    expect((await a.liveNodes()).map((n) => [n.instanceId, n.self, n.eligible])).toEqual([
      ['b', false, true],
      ['a', true, false],
    ]);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('records leadership events, newest first, trimmed', async () => {
    const project = `p${++seq}`;
    const a = node(project, 'a', { eventHistory: 3 });
    const b = node(project, 'b', { eventHistory: 3 });
    await a.start();
    await b.start();
    const first = a.epoch;
    const bLeads = waitRole(b, 'primary', 5000);
    a.stepDown();
    await bLeads;
    // Events are recorded right after each change, asynchronously: poll, bounded.
    const settled = async (done: (events: EtcdLeadershipEvent[]) => boolean): Promise<EtcdLeadershipEvent[]> => {
      let events: EtcdLeadershipEvent[] = [];
      for (let i = 0; i < 100; i++) {
        events = await a.events();
        if (done(events)) return events;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`events never settled: ${JSON.stringify(events)}`);
    };
    const brief = (events: EtcdLeadershipEvent[]): string[] => events.map((e) => `${e.instanceId} ${e.action} ${e.epoch} ${e.reason}`);
    expect(brief(await settled((e) => e.length >= 3))).toEqual([
      `b elected ${b.epoch} handover`,
      `a released ${first} stepdown`,
      `a elected ${first} startup`,
    ]);
    // A third term: trimmed to the newest three.
    const second = b.epoch;
    const aLeads = waitRole(a, 'primary', 5000);
    b.stepDown();
    await aLeads;
    const latest = await settled((e) => e[0]?.epoch === a.epoch && e.length === 3);
    expect(brief(latest)).toEqual([`a elected ${a.epoch} handover`, `b released ${second} stepdown`, `b elected ${second} handover`]);
    expect((await a.events()).every((e) => Number.isFinite(e.at))).toBe(true);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('a better priority takes over from the leader at once', async () => {
    const project = `p${++seq}`;
    const a = node(project, 'a', { priority: 2 });
    await a.start();
    expect(a.role).toBe('primary');
    const epoch = a.epoch;
    const demoted = waitRole(a, 'secondary', 5000);
    const b = node(project, 'b', { priority: 1 });
    const t0 = performance.now();
    await b.start();
    if (b.role !== 'primary') await waitRole(b, 'primary', 5000);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect((await demoted).reason).toBe('preempted');
    expect(b.epoch).toBeGreaterThan(epoch);
    // a learns of b from its watch, which may come after its own step-down.
    await waitFollows(a, 'b', 5000);
    expect(a.status().primary).toEqual({ instanceId: 'b', epoch: b.epoch });
    // a stays in line behind b, with its priority.
    expect((await a.liveNodes()).map((n) => [n.instanceId, n.role, n.priority])).toEqual([
      ['b', 'primary', 1],
      ['a', 'secondary', 2],
    ]);
    await Promise.all([a.shutdown(), b.shutdown()]);
  });

  it('the best live priority succeeds, not the oldest key', async () => {
    const project = `p${++seq}`;
    const a = node(project, 'a', { priority: 1 });
    const c = node(project, 'c', { priority: 3 });
    const b = node(project, 'b', { priority: 2 });
    await a.start();
    await c.start();
    await b.start();
    // c's key was made before b's: it is next in line, but b is preferred.
    expect((await a.liveNodes()).map((n) => n.instanceId)).toEqual(['a', 'c', 'b']);
    const cLed: string[] = [];
    c.on('roleChanged', (ch) => void cLed.push(ch.to));
    const bLeads = waitRole(b, 'primary', 5000);
    await a.shutdown();
    await bLeads;
    expect(cLed).not.toContain('primary');
    expect(c.status().etcd.counters.yields).toBe(1);
    expect((await b.liveNodes()).map((n) => [n.instanceId, n.role])).toEqual([
      ['b', 'primary'],
      ['c', 'secondary'],
    ]);
    await Promise.all([b.shutdown(), c.shutdown()]);
  });

  it('a partitioned leader steps down before a successor leads', async () => {
    const project = `p${++seq}`;
    const timing = { leaseTTL: 2000, keepAliveInterval: 250, maxDrift: 1500 };
    const link = await relay(etcd.hosts[0]!);
    const a = new EtcdElection({ ...timing, project, instanceId: 'a', hosts: [link.url] });
    const b = node(project, 'b', timing);
    await a.start();
    await b.start();
    const epoch = a.epoch;
    const aDemoted = waitRole(a, 'secondary', 5000);
    const bPromoted = waitRole(b, 'primary', 8000);
    // Packets to and from a are dropped from now on: its calls hang, nothing tells it.
    link.blackhole();
    const [down, up] = await Promise.all([aDemoted, bPromoted]);
    expect(down.reason).toBe('drift');
    expect(up.epoch).toBeGreaterThan(epoch);
    // Never two primaries: a's term ended before b's began (one process, one wall clock).
    expect(down.at).toBeLessThan(up.at);
    if (process.env.FW_PRINT === '1') process.stderr.write(`etcd partition: a stepped down ${Math.round(up.at - down.at)} ms before b led\n`);
    await Promise.all([a.shutdown(), b.shutdown(), link.cut()]);
  });

  it('a SIGKILLed leader is replaced within TTL + keepalive', async () => {
    const project = `p${++seq}`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/integration/etcd-node.ts'], {
      env: { ...process.env, FW_PROJECT: project, FW_ID: 'a', FW_HOSTS: etcd.hosts.join(',') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('child never led')), 20_000);
        child.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('primary')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const b = node(project, 'b', { leaseTTL: 2000, keepAliveInterval: 300, maxDrift: 1000 });
      await b.start();
      expect(b.role).toBe('secondary');
      const promoted = waitRole(b, 'primary', 8000);
      const lost: string[] = [];
      b.on('primaryLost', (e) => void lost.push(e.cause));
      const t0 = performance.now();
      child.kill('SIGKILL');
      const change = await promoted;
      const ms = performance.now() - t0;
      // Nobody marked the release: the key went with the lease.
      expect(change.reason).toBe('expired');
      expect(lost).toEqual(['expired']);
      if (process.env.FW_PRINT === '1') process.stderr.write(`etcd crash takeover ${Math.round(ms)} ms\n`);
      // TTL 2000 + one keepalive 300; etcd checks expiries every 500 ms on top.
      expect(ms).toBeLessThan(2000 + 300 + 500);
      await b.shutdown();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('a SIGSTOPped leader is replaced and learns it lost', async () => {
    const project = `p${++seq}`;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/integration/etcd-node.ts'], {
      env: { ...process.env, FW_PROJECT: project, FW_ID: 'a', FW_HOSTS: etcd.hosts.join(',') },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    const seen = (text: string, timeout: number): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`child never said ${text}: ${out}`)), timeout);
        const check = (): void => {
          if (!out.includes(text)) return;
          clearTimeout(timer);
          child.stdout!.off('data', check);
          resolve();
        };
        child.stdout!.on('data', check);
        check();
      });
    child.stdout!.on('data', (d: Buffer) => void (out += d.toString()));
    try {
      await seen('primary', 20_000);
      const b = node(project, 'b', { leaseTTL: 2000, keepAliveInterval: 300, maxDrift: 1000 });
      await b.start();
      const promoted = waitRole(b, 'primary', 8000);
      child.kill('SIGSTOP');
      await promoted;
      child.kill('SIGCONT');
      await seen('demoted drift', 5000);
      await seen('aborted', 5000);
      // It learned it lost before it could lead again: the demotion comes first in its output.
      expect(out.indexOf('demoted')).toBeGreaterThan(out.indexOf('primary'));
      expect(b.role).toBe('primary');
      await b.shutdown();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
