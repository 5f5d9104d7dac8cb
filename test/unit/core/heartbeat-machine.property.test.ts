/**
 * Model-based property tests of the heartbeat machine: N machines (3-5) share one simulated
 * endpoint and one state file, and fast-check explores interleavings of time, crashes, graceful
 * shutdowns, restarts, step-downs, setEnabled toggles, slow or failing onPromote, process stalls,
 * delayed and dropped heartbeats and socket disconnects.
 *
 * The simulator (fault injection) is kept apart from the checker (invariants): the simulator only
 * runs effects the way the driver in `src/watcher.ts` does; the checker looks at every step.
 *
 * The simulated world:
 * - the endpoint is an exclusive bind: at most one holder; `release`, `close` and a crash free it;
 * - whatever the holder publishes reaches every other running machine after a random delay, never
 *   reordered per sender; heartbeats may be dropped; other topics never are;
 * - a stalled machine processes nothing until the stall ends; what arrived meanwhile is queued;
 * - the state file is shared and written atomically; a write may fail.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  fullStep,
  initialState,
  step,
  type Effect,
  type InitialRole,
  type Input,
  type MachineConfig,
  type MachineState,
} from '../../../src/core/heartbeat-machine.js';
import type { Topic } from '../../../src/protocol/messages.js';

const TIMING = {
  heartbeatInterval: 100,
  heartbeatTimeout: 300,
  retryInterval: 50,
  maxRetryInterval: 400,
  fastRetryInterval: 5,
  priorityStagger: 20,
  preemptDelay: 500,
  probeWindow: 50,
  livenessProbeTimeout: 100,
  stallThreshold: 50,
  drainDelay: 20,
  quietsOwnHeartbeats: true,
} as const;

/** Deterministic PRNG for delays, drops and outcomes (the seed comes from fast-check). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface World {
  readonly n: number;
  readonly seed: number;
  readonly roles: readonly InitialRole[];
  readonly enabled: readonly boolean[];
  readonly priorities: readonly number[];
  /** Probability that a heartbeat is lost on its way to one receiver. */
  readonly dropRate: number;
  readonly maxMessageDelay: number;
  readonly promoteFailRate: number;
  readonly promoteMaxDelay: number;
  /** Probability that writing the state file fails. */
  readonly saveFailRate: number;
  /** Probability that a receiver's socket reports a disconnect when the holder lets go. */
  readonly disconnectRate: number;
}

/** `node` is an index, or -1 for the current holder of the endpoint. */
type Command =
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'crash'; readonly node: number }
  | { readonly kind: 'shutdown'; readonly node: number }
  | { readonly kind: 'restart'; readonly node: number; readonly role: InitialRole }
  | { readonly kind: 'setEnabled'; readonly node: number; readonly enabled: boolean }
  | { readonly kind: 'stepDown'; readonly node: number }
  | { readonly kind: 'stall'; readonly node: number; readonly ms: number };

class Violation extends Error {}

/** One process lifetime of a node (a restart starts a new incarnation with the same instanceId). */
interface Incarnation {
  readonly id: string;
  readonly index: number;
  readonly number: number;
  state: MachineState;
  status: 'running' | 'crashed' | 'closed';
  stalledUntil: number;
  /** Terms whose onPromote was called, and which settled / resolved / got their onDemote. */
  readonly promoteCalled: Map<number, number>;
  readonly settled: Set<number>;
  readonly resolved: Set<number>;
  readonly demoted: Set<number>;
  /** How `start()` settled: `started` effects (a repeat is harmless), or `startFailed`. */
  started: number;
  startFailed: boolean;
  lastTickAt: number;
  ticksAtSameInstant: number;
  /** Whether its subscriber reads heartbeats (`hearOwnHeartbeats`). */
  hearing: boolean;
}

interface Pending {
  readonly at: number;
  readonly seq: number;
  readonly target: Incarnation;
  /** Evaluated at delivery: the effect's outcome (a bind is decided when it happens). */
  readonly make: () => Input | undefined;
}

class Sim {
  now = 0;
  holder: Incarnation | undefined;
  fileEpoch = 0;
  /** Highest epoch any machine ever put on the wire. */
  maxAnnounced = 0;
  faults = true;
  readonly nodes: Incarnation[] = [];
  readonly all: Incarnation[] = [];
  readonly #pending: Pending[] = [];
  readonly #channels = new Map<string, number>();
  #seq = 0;
  readonly #rand: () => number;
  readonly #trace: string[] = [];

  constructor(readonly world: World) {
    this.#rand = mulberry32(world.seed);
    for (let i = 0; i < world.n; i++) this.nodes.push(this.#incarnate(i, world.roles[i] ?? 'auto', world.enabled[i] ?? true, 0));
  }

  start(): void {
    for (const node of this.nodes) this.#deliver(node, { type: 'start' });
  }

  #incarnate(index: number, role: InitialRole, enabled: boolean, number: number): Incarnation {
    const id = `n${index}`;
    const config: MachineConfig = {
      ...TIMING,
      instanceId: id,
      initialRole: role,
      priority: this.world.priorities[index] ?? 1,
      preempt: false,
      fencing: false,
    };
    // The driver boots with the epoch of the state file.
    const inc: Incarnation = {
      id,
      index,
      number,
      state: initialState(config, enabled, this.fileEpoch),
      status: 'running',
      stalledUntil: 0,
      promoteCalled: new Map(),
      settled: new Set(),
      resolved: new Set(),
      demoted: new Set(),
      started: 0,
      startFailed: false,
      lastTickAt: -1,
      ticksAtSameInstant: 0,
      hearing: true,
    };
    this.all.push(inc);
    return inc;
  }

  /** Node `i`; a negative `i` picks whoever holds the endpoint (faults aimed at the primary). */
  node(i: number): Incarnation {
    if (i < 0) return this.holder ?? (this.nodes[0] as Incarnation);
    return this.nodes[i % this.nodes.length] as Incarnation;
  }

  running(): Incarnation[] {
    return this.nodes.filter((n) => n.status === 'running');
  }

  // --- fault injection ------------------------------------------------------------------------

  apply(cmd: Command): void {
    this.#log(`cmd ${JSON.stringify(cmd)}`);
    switch (cmd.kind) {
      case 'advance':
        this.advanceTo(this.now + cmd.ms);
        return;
      case 'crash': {
        const node = this.node(cmd.node);
        if (node.status !== 'running') return;
        node.status = 'crashed';
        // The kernel frees the endpoint of a dead process; no farewell.
        if (this.holder === node) this.#vacate(node);
        return;
      }
      case 'shutdown': {
        const node = this.node(cmd.node);
        if (node.status === 'running') this.#deliver(node, { type: 'shutdown' });
        return;
      }
      case 'restart': {
        const old = this.node(Math.max(0, cmd.node));
        if (old.status === 'running') return;
        const fresh = this.#incarnate(old.index, cmd.role, old.state.enabled, old.number + 1);
        this.nodes[old.index] = fresh;
        this.#deliver(fresh, { type: 'start' });
        return;
      }
      case 'setEnabled': {
        const node = this.node(cmd.node);
        if (node.status === 'running') this.#deliver(node, { type: 'setEnabled', enabled: cmd.enabled });
        return;
      }
      case 'stepDown': {
        const node = this.node(cmd.node);
        if (node.status === 'running') this.#deliver(node, { type: 'stepDown' });
        return;
      }
      case 'stall': {
        const node = this.node(cmd.node);
        if (node.status === 'running') node.stalledUntil = Math.max(node.stalledUntil, this.now + cmd.ms);
        return;
      }
    }
  }

  /** Runs every tick and delivery due up to `target`, in time order. */
  advanceTo(target: number): void {
    for (let guard = 0; ; guard++) {
      if (guard > 50_000) throw this.#violation('livelock: too many steps without time passing');
      let best: { time: number; tick?: Incarnation; pending?: Pending } | undefined;
      for (const node of this.nodes) {
        if (node.status !== 'running' || node.state.wakeAt === undefined) continue;
        const time = Math.max(node.state.wakeAt, node.stalledUntil);
        if (time <= target && (best === undefined || time < best.time)) best = { time, tick: node };
      }
      for (const p of this.#pending) {
        const time = Math.max(p.at, p.target.stalledUntil);
        if (time > target) continue;
        // Ticks first at equal times: a machine waking from a stall sees its timer before its queue.
        if (best === undefined || time < best.time || (time === best.time && best.pending !== undefined && p.seq < best.pending.seq)) {
          best = { time, pending: p };
        }
      }
      if (best === undefined) break;
      this.now = Math.max(this.now, best.time);
      if (best.tick !== undefined) {
        const node = best.tick;
        node.ticksAtSameInstant = node.lastTickAt === this.now ? node.ticksAtSameInstant + 1 : 0;
        node.lastTickAt = this.now;
        if (node.ticksAtSameInstant > 2) throw this.#violation(`${node.id} asks to be woken at the instant it was woken (busy loop)`);
        this.#deliver(node, { type: 'tick' });
      } else if (best.pending !== undefined) {
        const p = best.pending;
        this.#pending.splice(this.#pending.indexOf(p), 1);
        if (p.target.status !== 'running') continue;
        const input = p.make();
        if (input !== undefined) this.#deliver(p.target, input);
      }
    }
    this.now = Math.max(this.now, target);
  }

  #schedule(target: Incarnation, delay: number, make: () => Input | undefined, channel?: string): void {
    let at = this.now + delay;
    if (channel !== undefined) {
      // FIFO per channel: never reordered.
      at = Math.max(at, this.#channels.get(channel) ?? 0);
      this.#channels.set(channel, at);
    }
    this.#pending.push({ at, seq: this.#seq++, target, make });
  }

  #delay(max: number): number {
    return Math.floor(this.#rand() * (max + 1));
  }

  #broadcast(from: Incarnation, topic: Topic, epoch: number, seq: number): void {
    for (const to of this.running()) {
      if (to !== from && topic === 'instance.heartbeat' && this.faults && this.#rand() < this.world.dropRate) continue;
      const input: Input = {
        type: 'message',
        wallNow: this.now,
        message: { version: 1, topic, instanceId: from.id, epoch, seq, sentAt: this.now, pid: from.index, host: 'sim' },
      };
      // The sender's own subscriber reads it back too, but for a heartbeat while it does not read
      // them; a subscriber filters on arrival, as ZeroMQ's does.
      const make = (): Input | undefined => (topic === 'instance.heartbeat' && !to.hearing ? undefined : input);
      this.#schedule(to, this.#delay(this.world.maxMessageDelay), make, `${from.id}#${from.number}->${to.id}#${to.number}`);
    }
  }

  /** The holder let go (release, close or death): subscribers may see their connection drop. */
  #vacate(from: Incarnation): void {
    this.holder = undefined;
    for (const to of this.running()) {
      if (to === from || !this.faults || this.#rand() >= this.world.disconnectRate) continue;
      this.#schedule(to, this.#delay(this.world.maxMessageDelay), () => ({ type: 'disconnected' }), `${from.id}#${from.number}->${to.id}#${to.number}`);
    }
  }

  // --- the driver -----------------------------------------------------------------------------

  #deliver(node: Incarnation, input: Input): void {
    const before = node.state;
    const { state, effects } = step(before, input, { now: this.now, random: this.#rand });
    if (input.type === 'message') {
      // step() takes a shortcut for a secondary's steady heartbeat: it must agree with the full step.
      const full = fullStep(before, input, { now: this.now, random: () => 0 });
      expect(state).toEqual(full.state);
      expect(effects).toEqual(full.effects);
    } else if (input.type === 'tick' && before.holdsEndpoint) {
      // And for a primary's tick at rest (steadyTick): compared on a fixed random number, so
      // that the run's own sequence is not consumed twice.
      const fixed = { now: this.now, random: () => 0 };
      expect(step(before, input, fixed)).toEqual(fullStep(before, input, fixed));
    }
    node.state = state;
    if (input.type === 'promoteSettled' && before.promoteOutstanding && input.term === before.term) {
      node.settled.add(input.term);
      if (input.ok) node.resolved.add(input.term);
    }
    this.#log(
      `${this.now} ${node.id}#${node.number} <- ${input.type === 'message' ? `${input.message.topic}(${input.message.instanceId}, e${input.message.epoch})` : JSON.stringify(input)} ` +
        `=> ${before.phase}/${before.role} -> ${state.phase}/${state.role} e${state.epoch} ${effects
          .filter((e) => e.type !== 'log')
          .map((e) => (e.type === 'notify' ? `notify:${e.notification.type}` : e.type))
          .join(',')}`,
    );
    for (const effect of effects) this.#run(node, effect);
    if (input.type === 'closed' && node.state.phase === 'stopped') node.status = 'closed';
    this.check();
  }

  #run(node: Incarnation, e: Effect): void {
    const socket = `socket:${node.id}#${node.number}`;
    switch (e.type) {
      case 'bind':
        this.#schedule(
          node,
          this.#delay(3),
          () => {
            if (this.holder === undefined) {
              this.holder = node;
              // Every subscriber connects to the new holder, its own included, some time later.
              for (const to of this.running()) {
                this.#schedule(to, this.#delay(this.world.maxMessageDelay), () => ({ type: 'connected' }), `${node.id}#${node.number}->${to.id}#${to.number}`);
              }
            }
            return { type: 'bindResult', outcome: this.holder === node ? 'bound' : 'in-use' };
          },
          socket,
        );
        return;
      case 'hearOwnHeartbeats':
        if (!e.on && this.holder !== node) throw this.#violation(`${node.id} stops reading heartbeats without holding the endpoint`);
        node.hearing = e.on;
        return;
      case 'loadEpoch':
        this.#schedule(node, this.#delay(3), () => ({ type: 'epochLoaded', fileEpoch: this.fileEpoch }));
        return;
      case 'saveState':
        this.#schedule(node, this.#delay(3), () => {
          if (this.faults && this.#rand() < this.world.saveFailRate) return { type: 'stateSaved', ok: false, detail: 'EIO' };
          this.fileEpoch = e.epoch;
          return { type: 'stateSaved', ok: true };
        });
        return;
      case 'publish':
        if (this.holder !== node) throw this.#violation(`${node.id} publishes ${e.topic} without holding the endpoint`);
        if (e.topic === 'instance.promoted') {
          if (!(e.epoch > this.maxAnnounced)) {
            throw this.#violation(`${node.id} announces epoch ${e.epoch}, not above ${this.maxAnnounced} already on the wire`);
          }
        } else if (e.epoch > this.maxAnnounced) {
          throw this.#violation(`${node.id} publishes epoch ${e.epoch} before announcing it`);
        }
        this.maxAnnounced = Math.max(this.maxAnnounced, e.epoch);
        this.#broadcast(node, e.topic, e.epoch, e.seq);
        return;
      case 'release':
        if (this.holder !== node) throw this.#violation(`${node.id} releases an endpoint it does not hold`);
        if (e.farewellSeq !== undefined) {
          this.maxAnnounced = Math.max(this.maxAnnounced, e.epoch);
          this.#broadcast(node, 'instance.shutdown', e.epoch, e.farewellSeq);
        }
        this.#vacate(node);
        return;
      case 'close':
        this.#schedule(
          node,
          this.#delay(3),
          () => {
            // Closing drops whatever this process still holds (a bind answered late, say).
            if (this.holder === node) this.#vacate(node);
            return { type: 'closed' };
          },
          socket,
        );
        return;
      case 'callPromote': {
        for (const term of node.promoteCalled.keys()) {
          if (!node.settled.has(term)) throw this.#violation(`${node.id} calls onPromote(${e.term}) while onPromote(${term}) runs`);
        }
        if (node.state.demoteOutstanding) throw this.#violation(`${node.id} calls onPromote while onDemote runs`);
        node.promoteCalled.set(e.term, e.epoch);
        const ok = !this.faults || this.#rand() >= this.world.promoteFailRate;
        const delay = this.faults ? this.#delay(this.world.promoteMaxDelay) : this.#delay(5);
        this.#schedule(node, delay, () => (ok ? { type: 'promoteSettled', term: e.term, ok } : { type: 'promoteSettled', term: e.term, ok, detail: 'sim' }));
        return;
      }
      case 'callDemote':
        if (!node.resolved.has(e.term)) throw this.#violation(`${node.id} calls onDemote(${e.term}) for an onPromote that did not resolve`);
        if (node.demoted.has(e.term)) throw this.#violation(`${node.id} calls onDemote(${e.term}) twice`);
        if (e.epoch !== node.promoteCalled.get(e.term)) throw this.#violation(`${node.id} onDemote(${e.term}) with epoch ${e.epoch}`);
        node.demoted.add(e.term);
        this.#schedule(node, this.faults ? this.#delay(Math.floor(this.world.promoteMaxDelay / 2)) : this.#delay(5), () => ({
          type: 'demoteSettled',
          term: e.term,
        }));
        return;
      case 'started':
        if (node.startFailed) throw this.#violation(`${node.id} reports started after startFailed`);
        node.started++;
        return;
      case 'startFailed':
        if (node.started > 0 || node.startFailed) throw this.#violation(`${node.id} reports startFailed after its start settled`);
        node.startFailed = true;
        return;
      case 'notify': {
        const n = e.notification;
        if (n.type === 'roleChanged' && n.to === 'primary') {
          if (this.holder !== node || !node.state.holdsEndpoint) throw this.#violation(`${node.id} becomes primary without the endpoint`);
          if (n.epoch !== node.state.epoch || n.epoch !== node.promoteCalled.get(node.state.term)) {
            throw this.#violation(`${node.id} becomes primary with epoch ${n.epoch}, not its term's`);
          }
          if (n.epoch < this.maxAnnounced) throw this.#violation(`${node.id} becomes primary at ${n.epoch} < ${this.maxAnnounced} on the wire`);
          if (!node.resolved.has(node.state.term)) throw this.#violation(`${node.id} announces the role before onPromote resolved`);
        }
        return;
      }
      default:
        return;
    }
  }

  // --- the checker ------------------------------------------------------------------------------

  check(): void {
    const running = this.running();
    const holding = running.filter((n) => n.state.holdsEndpoint);
    if (holding.length > 1) throw this.#violation(`${holding.map((n) => n.id).join(', ')} all hold the endpoint`);
    for (const n of holding) if (this.holder !== n) throw this.#violation(`${n.id} believes it holds an endpoint it does not hold`);
    const primaries = running.filter((n) => n.state.role === 'primary');
    if (primaries.length > 1) throw this.#violation(`${primaries.map((n) => n.id).join(', ')} are all primary`);
    for (const p of primaries) {
      if (!p.state.holdsEndpoint) throw this.#violation(`${p.id} is primary without holding the endpoint`);
    }
    // A node that holds nothing reads every heartbeat: it cannot miss another holder's.
    for (const n of running) if (!n.hearing && !n.state.holdsEndpoint) throw this.#violation(`${n.id} does not read heartbeats and holds nothing`);
    for (const n of this.all) {
      if (n.demoted.size > n.resolved.size) throw this.#violation(`${n.id} has more onDemote than resolved onPromote`);
    }
  }

  /** Every resolved onPromote of a node that closed got its onDemote; a running one owes at most its current term's. */
  checkPairing(): void {
    for (const n of this.all) {
      const owed = [...n.resolved].filter((t) => !n.demoted.has(t));
      if (n.status === 'closed' && owed.length > 0) throw this.#violation(`${n.id}#${n.number} closed without onDemote for terms ${owed.join(', ')}`);
      if (n.status === 'running') {
        const expected = n.state.promotedTerm === undefined ? [] : [n.state.promotedTerm];
        if (JSON.stringify(owed) !== JSON.stringify(expected)) {
          throw this.#violation(`${n.id}#${n.number} owes onDemote for terms [${owed.join(', ')}], expected [${expected.join(', ')}]`);
        }
      }
    }
  }

  /** Stop injecting faults: no stalls, drops or disconnects; onPromote resolves within 5 ms. */
  calm(): void {
    this.faults = false;
    for (const n of this.nodes) n.stalledUntil = Math.min(n.stalledUntil, this.now);
  }

  crashNow(node: Incarnation): void {
    node.status = 'crashed';
    if (this.holder === node) this.holder = undefined;
  }

  #log(line: string): void {
    this.#trace.push(line);
    if (this.#trace.length > 80) this.#trace.shift();
  }

  #violation(message: string): Violation {
    return new Violation(`${message} (t=${this.now})\n${this.#trace.join('\n')}`);
  }
}

const worldArb: fc.Arbitrary<World> = fc.integer({ min: 3, max: 5 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    seed: fc.integer(),
    roles: fc.array(fc.constantFrom<InitialRole>('auto', 'auto', 'secondary', 'primary'), { minLength: n, maxLength: n }),
    enabled: fc.array(fc.boolean(), { minLength: n, maxLength: n }).map((xs) => xs.map((x, i) => x || i === 0)),
    priorities: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: n, maxLength: n }),
    dropRate: fc.constantFrom(0, 0.1, 0.4),
    maxMessageDelay: fc.constantFrom(0, 5, 40),
    promoteFailRate: fc.constantFrom(0, 0.3, 0.7),
    promoteMaxDelay: fc.constantFrom(2, 80, 500),
    saveFailRate: fc.constantFrom(0, 0, 0.2),
    disconnectRate: fc.constantFrom(0, 0.5, 1),
  }),
);

const node = fc.oneof(fc.nat({ max: 4 }), fc.constant(-1));
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 800 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('crash' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('shutdown' as const), node }) },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('restart' as const), node, role: fc.constantFrom<InitialRole>('auto', 'secondary', 'primary') }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('setEnabled' as const), node, enabled: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stepDown' as const), node }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('stall' as const), node, ms: fc.integer({ min: 10, max: 1000 }) }) },
);

const T = TIMING.heartbeatTimeout;
const I = TIMING.heartbeatInterval;
const D = TIMING.drainDelay;

function runScenario(world: World, commands: readonly Command[]): void {
  const sim = new Sim(world);
  sim.start();
  for (const cmd of commands) sim.apply(cmd);

  // Liveness. Faults stop, dead nodes come back (enabled, auto); pending slow callbacks,
  // backoffs and hold-offs get time to run out.
  sim.calm();
  for (const n of [...sim.nodes]) {
    if (n.status !== 'running') {
      sim.apply({ kind: 'restart', node: n.index, role: 'auto' });
      sim.apply({ kind: 'setEnabled', node: n.index, enabled: true });
    }
  }
  const flush = world.promoteMaxDelay * 2 + 1.5 * TIMING.maxRetryInterval + 2 * T + I + world.n * TIMING.priorityStagger + 200;
  sim.advanceTo(sim.now + flush);
  const enabledRunning = sim.running().filter((n) => n.state.enabled);
  const primaries = sim.running().filter((n) => n.state.role === 'primary');
  if (enabledRunning.length > 0) expect(primaries.map((p) => p.id), 'an enabled node is running but nobody is primary').toHaveLength(1);
  // Every running node's start() has settled (resolved: started as secondary or primary).
  expect(sim.running().filter((n) => n.started === 0 || n.state.role === 'starting').map((n) => n.id)).toEqual([]);
  sim.checkPairing();

  // The primary dies. Any enabled, running secondary takes over within
  // heartbeatTimeout + heartbeatInterval + drainDelay of silence (plus the bounded stagger).
  const primary = primaries[0];
  const successors = sim.running().filter((n) => n !== primary && n.state.enabled && n.state.role === 'secondary');
  if (primary !== undefined && successors.length > 0) {
    sim.crashNow(primary);
    sim.advanceTo(sim.now + T + I + D + world.n * TIMING.priorityStagger);
    const next = sim.running().filter((n) => n.state.role === 'primary');
    expect(next.map((p) => p.id), 'no successor after the primary died').toHaveLength(1);
    expect(next[0]?.state.epoch).toBeGreaterThan(primary.state.epoch);
  }

  // Everyone leaves: every resolved onPromote got its onDemote, the endpoint is free.
  for (const n of sim.running()) sim.apply({ kind: 'shutdown', node: n.index });
  sim.advanceTo(sim.now + 1000);
  expect(sim.running().map((n) => `${n.id}:${n.state.phase}`)).toEqual([]);
  expect(sim.holder).toBeUndefined();
  sim.checkPairing();
}

describe('heartbeat machine: a simulated cluster', () => {
  it('keeps safety, epochs, callback pairing and liveness under random faults', () => {
    fc.assert(
      fc.property(worldArb, fc.array(commandArb, { minLength: 10, maxLength: 80, size: 'max' }), (world, commands) => {
        runScenario(world, commands);
      }),
      { numRuns: 400 },
    );
  });

  it('a quiet cluster elects exactly one primary and keeps it', () => {
    fc.assert(
      fc.property(worldArb, (world) => {
        const sim = new Sim({ ...world, dropRate: 0, promoteFailRate: 0, saveFailRate: 0, disconnectRate: 0 });
        sim.start();
        sim.advanceTo(world.promoteMaxDelay + T + I + D + world.n * TIMING.priorityStagger + 50);
        const primaries = sim.running().filter((n) => n.state.role === 'primary');
        expect(primaries).toHaveLength(1);
        const first = primaries[0]?.id;
        sim.advanceTo(sim.now + 10_000);
        expect(sim.running().filter((n) => n.state.role === 'primary').map((n) => n.id)).toEqual([first]);
        expect(Math.max(...sim.all.map((n) => n.state.counters.promotions))).toBe(1);
        // At rest the primary no longer reads its own heartbeats; everyone else reads them all.
        expect(sim.running().filter((n) => !n.hearing).map((n) => n.id)).toEqual([first]);
      }),
      { numRuns: 60 },
    );
  });
});
