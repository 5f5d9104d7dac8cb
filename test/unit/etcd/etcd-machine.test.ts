/**
 * The etcd election's decisions on a fake clock: no sockets, each etcd reply scripted.
 */
import { describe, expect, it } from 'vitest';
import {
  etcdStep,
  initialEtcdState,
  type CampaignKey,
  type EtcdEffect,
  type EtcdInput,
  type EtcdMachineState,
} from '../../../src/core/etcd-machine.js';

const config = {
  nodeId: 'a',
  priority: 1,
  leaseTTL: 3000,
  keepAliveInterval: 500,
  maxDrift: 1500,
  retryInterval: 200,
  demoteTimeout: 1000,
  rankInterval: 3000,
  enabled: true,
};

class Sim {
  state: EtcdMachineState;
  now = 0;
  effects: EtcdEffect[] = [];
  constructor(overrides: Partial<typeof config> = {}) {
    this.state = initialEtcdState({ ...config, ...overrides });
  }
  feed(input: EtcdInput): EtcdEffect[] {
    const r = etcdStep(this.state, input, { now: this.now, random: () => 0.5 });
    this.state = r.state;
    this.effects.push(...r.effects);
    return r.effects;
  }
  last<T extends EtcdEffect['type']>(type: T): Extract<EtcdEffect, { type: T }> {
    const found = [...this.effects].reverse().find((e) => e.type === type);
    if (found === undefined) throw new Error(`no ${type} effect`);
    return found as Extract<EtcdEffect, { type: T }>;
  }
  /** start -> granted -> campaigned(rev) -> ranked(line). */
  join(rev: number, others: CampaignKey[] = []): void {
    this.feed({ type: 'start' });
    this.feed({ type: 'granted', id: this.last('grant').id, leaseId: '10', sentAt: this.now });
    this.feed({ type: 'campaigned', id: this.last('campaign').id, key: 'p/e/a', createRevision: rev });
    const own: CampaignKey = { key: 'p/e/a', createRevision: rev, nodeId: 'a', priority: this.state.config.priority, leaseId: '10' };
    this.rank([...others, own].sort((x, y) => x.createRevision - y.createRevision));
  }
  rank(line: CampaignKey[], released?: number[]): void {
    this.feed({ type: 'changed' });
    const r = this.state.pending.rank;
    if (r !== undefined) this.feed({ type: 'ranked', id: r, line, released });
  }
}

const key = (nodeId: string, rev: number, priority = 1): CampaignKey => ({ key: `p/e/${nodeId}`, createRevision: rev, nodeId, priority, leaseId: nodeId });

describe('etcd machine', () => {
  it('leads when its key is first, epoch = create revision', () => {
    const sim = new Sim();
    sim.join(7);
    expect(sim.state.role).toBe('primary');
    expect(sim.last('callPromote')).toMatchObject({ epoch: 7, reason: 'startup' });
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    expect(sim.state.phase).toBe('leader');
    expect(sim.effects.some((e) => e.type === 'started')).toBe(true);
  });

  it('a line read before its own key does not settle it', () => {
    // A watch event (or a read) can answer between the lease grant and the campaign's put: the
    // empty line it returns must not make a lone first node settle as a secondary.
    const sim = new Sim();
    sim.feed({ type: 'start' });
    sim.feed({ type: 'granted', id: sim.last('grant').id, leaseId: '10', sentAt: sim.now });
    sim.rank([]);
    expect(sim.effects.some((e) => e.type === 'started')).toBe(false);
    expect(sim.state.role).toBe('starting');
    sim.feed({ type: 'campaigned', id: sim.last('campaign').id, key: 'p/e/a', createRevision: 7 });
    sim.rank([{ key: 'p/e/a', createRevision: 7, nodeId: 'a', priority: 1, leaseId: '10' }]);
    expect(sim.state.role).toBe('primary');
    expect(sim.last('callPromote').reason).toBe('startup');
  });

  it('follows the first key and takes over when it goes', () => {
    const sim = new Sim();
    sim.join(9, [key('b', 5)]);
    expect(sim.state.role).toBe('secondary');
    expect(sim.last('primaryChanged')).toMatchObject({ instanceId: 'b', epoch: 5 });
    // b's key went with its release mark: b gave the role up.
    sim.rank([key('a', 9)], [5]);
    expect(sim.last('primaryLost')).toMatchObject({ instanceId: 'b', willPromote: true, cause: 'released' });
    expect(sim.last('callPromote')).toMatchObject({ epoch: 9, reason: 'handover' });
    expect(sim.state.epoch).toBe(9);
  });

  it('a leader key gone without its release mark expired', () => {
    // A crash or a lost lease: etcd deletes the key when the lease ends, and nobody marks it.
    // A mark of another term does not count.
    const sim = new Sim();
    sim.join(9, [key('b', 5)]);
    sim.rank([key('a', 9)], [2, 7]);
    expect(sim.last('primaryLost')).toMatchObject({ instanceId: 'b', epoch: 5, cause: 'expired', willPromote: true });
    expect(sim.last('callPromote')).toMatchObject({ epoch: 9, reason: 'expired' });
  });

  it('a quick second release does not hide the first', () => {
    // b (epoch 5) releases, then c (epoch 6), first in line next, yields at once: a read that
    // sees both marks still tells b's term was given up.
    const sim = new Sim();
    sim.join(9, [key('b', 5), key('c', 6)]);
    sim.rank([key('a', 9)], [5, 6]);
    expect(sim.last('primaryLost')).toMatchObject({ instanceId: 'b', cause: 'released' });
    expect(sim.last('callPromote')).toMatchObject({ reason: 'handover' });
  });

  it('a leader marks its release; a follower does not', () => {
    // stepDown and shutdown of the leader leave the mark of its epoch; a follower that leaves
    // must not overwrite the leader's mark with its own key's revision.
    const leader = new Sim();
    leader.join(3);
    leader.feed({ type: 'promoteSettled', term: 1, ok: true });
    leader.feed({ type: 'stepDown' });
    leader.feed({ type: 'demoteSettled', term: 1 });
    expect(leader.last('resign')).toMatchObject({ key: 'p/e/a', epoch: 3, mark: true });
    const closing = new Sim();
    closing.join(3);
    closing.feed({ type: 'promoteSettled', term: 1, ok: true });
    closing.feed({ type: 'shutdown' });
    closing.feed({ type: 'demoteSettled', term: 1 });
    expect(closing.last('revoke')).toMatchObject({ awaited: true, release: { key: 'p/e/a', epoch: 3 } });
    const follower = new Sim();
    follower.join(9, [key('b', 5)]);
    follower.feed({ type: 'shutdown' });
    expect(follower.last('revoke').release).toBeUndefined();
  });

  it('steps down after maxDrift without a keepalive', () => {
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    sim.now = 1501;
    sim.feed({ type: 'tick' });
    expect(sim.state.role).toBe('secondary');
    expect(sim.last('roleChanged')).toMatchObject({ to: 'secondary', reason: 'drift' });
    expect(sim.last('abortPromote').term).toBe(1);
    expect(sim.last('revoke').leaseId).toBe('10');
    expect(sim.state.session).toBeUndefined();
    // Stepped down before the lease (3000 ms from the last keepalive) could expire.
    expect(sim.now).toBeLessThan(config.leaseTTL);
  });

  it('ends the term before it revokes the lease', () => {
    // The revoke lets a standby lead at once: the term must be over first.
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    sim.now = 1501;
    const types = sim.feed({ type: 'tick' }).map((e) => e.type);
    expect(types.indexOf('abortPromote')).toBeGreaterThanOrEqual(0);
    expect(types.indexOf('revoke')).toBeGreaterThan(types.indexOf('abortPromote'));
    expect(types.indexOf('revoke')).toBeGreaterThan(types.indexOf('roleChanged'));
  });

  it('keeps the role while keepalives succeed', () => {
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    for (let i = 1; i <= 20; i++) {
      sim.now = i * 500;
      sim.feed({ type: 'tick' });
      sim.feed({ type: 'keptAlive', id: sim.last('keepAlive').id, sentAt: sim.now, alive: true });
    }
    expect(sim.state.role).toBe('primary');
    expect(sim.state.counters.driftStepDowns).toBe(0);
  });

  it('a woken leader learns it lost before acting', () => {
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    sim.now = 10_000; // paused past the lease
    const effects = sim.feed({ type: 'changed' });
    expect(effects[0]).toMatchObject({ type: 'log', level: 'warn' });
    expect(effects.find((e) => e.type === 'roleChanged')).toMatchObject({ to: 'secondary', reason: 'drift' });
    expect(effects.some((e) => e.type === 'rank' || e.type === 'callPromote')).toBe(false);
  });

  it('stepDown runs onDemote, then deletes its key', () => {
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    sim.feed({ type: 'stepDown' });
    expect(sim.state.role).toBe('secondary');
    expect(sim.last('callDemote')).toMatchObject({ epoch: 3, reason: 'stepdown' });
    expect(sim.effects.some((e) => e.type === 'resign')).toBe(false);
    sim.feed({ type: 'demoteSettled', term: 1 });
    sim.feed({ type: 'resigned', id: sim.last('resign').id });
    // Back in line with a new key: a new term would have a new epoch.
    expect(sim.last('campaign')).toBeDefined();
    expect(sim.state.ownKey).toBeUndefined();
  });

  it('yields first place to a better priority', () => {
    const s2 = new Sim({ priority: 2 });
    s2.join(3, [key('b', 8, 1)]);
    expect(s2.state.role).toBe('secondary');
    expect(s2.state.counters.yields).toBe(1);
    expect(s2.last('resign').key).toBe('p/e/a');
  });

  it('a leader hands over to a better priority', () => {
    const sim = new Sim({ priority: 2 });
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    sim.rank([key('a', 3, 2), key('b', 8, 1)]);
    expect(sim.last('roleChanged')).toMatchObject({ to: 'secondary', reason: 'preempted' });
    sim.feed({ type: 'demoteSettled', term: 1 });
    expect(sim.last('resign').key).toBe('p/e/a');
  });

  it('demotes when its key vanishes from the line', () => {
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    sim.rank([key('b', 12)]);
    expect(sim.last('roleChanged')).toMatchObject({ to: 'secondary', reason: 'lost' });
  });

  it('shutdown demotes, then revokes the lease and closes', () => {
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: true });
    sim.feed({ type: 'shutdown' });
    sim.feed({ type: 'demoteSettled', term: 1 });
    expect(sim.last('revoke')).toMatchObject({ leaseId: '10', awaited: true });
    expect(sim.last('close')).toBeDefined();
    sim.feed({ type: 'closed' });
    expect(sim.state.role).toBe('stopped');
    expect(sim.state.wakeAt).toBeUndefined();
  });

  it('a disabled node gives up its key and never leads', () => {
    const sim = new Sim();
    sim.join(9, [key('b', 5)]);
    sim.feed({ type: 'setEnabled', enabled: false });
    sim.feed({ type: 'resigned', id: sim.last('resign').id });
    sim.rank([]);
    expect(sim.state.role).toBe('secondary');
    expect(sim.effects.some((e) => e.type === 'callPromote')).toBe(false);
  });

  it('a failed onPromote holds off before running again', () => {
    const sim = new Sim();
    sim.join(3);
    sim.feed({ type: 'promoteSettled', term: 1, ok: false, detail: 'boom' });
    expect(sim.last('promotionFailed')).toMatchObject({ error: 'boom', retryInMs: config.leaseTTL });
    // The term never started: no onDemote, and the key is given up at once.
    expect(sim.effects.some((e) => e.type === 'callDemote')).toBe(false);
    expect(sim.state.role).toBe('secondary');
    sim.feed({ type: 'resigned', id: sim.last('resign').id });
    expect(sim.state.retryAt).toBe(config.leaseTTL);
    expect(sim.effects.filter((e) => e.type === 'campaign')).toHaveLength(1);
  });
});
