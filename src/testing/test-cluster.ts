/**
 * A test cluster: real `Watcher`s, each with its real state machine, on one endpoint and one
 * state file in memory and one `FakeClock`. No socket, no file written, no real timer: a test
 * drives the cluster's time (`advance`, `until`), injects faults (crash, graceful stop, silence,
 * stall, partition, a foreign primary with a higher epoch), and reads what every node decided
 * (`history`, `events`, `timeline()`), in milliseconds of real time, the same way on every run.
 *
 * What is simulated, and how faithfully, is stated in docs/TESTING.md. The decisions are not:
 * every node runs the library's own watcher and state machine.
 *
 * @module
 */
import { AssertionError } from 'node:assert';
import { MAX_EPOCH } from '../core/heartbeat-machine.js';
import { FailoverError, InvalidOptionError } from '../errors.js';
import { DEFAULTS, isValidInstanceId, INSTANCE_ID_RULE, type DemoteContext, type PromoteContext, type WatcherOptions } from '../options.js';
import { FakeClock, type TimerHandle } from '../runtime/clock.js';
import { Watcher, type RoleChange, type WatcherDeps, type WatcherEvents } from '../watcher.js';
import type { Role, RoleChangeReason } from '../core/heartbeat-machine.js';
import { ForeignPrimary, type ForeignPrimaryOptions } from './foreign-primary.js';
import { MemoryEndpoint } from './memory-endpoint.js';
import type { MemoryTransport } from './memory-endpoint.js';
import { MemoryStateFile, MemoryStateStore } from './memory-state-file.js';
import { NodeClock } from './node-clock.js';
import { seededRandom } from '../runtime/random.js';

/** Handed to a test cluster's `onPromote`: the watcher's context, and which node it is. */
export interface TestPromoteContext extends PromoteContext {
  readonly instanceId: string;
}

/** Handed to a test cluster's `onDemote`: the watcher's context, and which node it is. */
export interface TestDemoteContext extends DemoteContext {
  readonly instanceId: string;
}

/** Options the kit sets itself, and so refuses. */
const KIT_OWNED = ['endpoint', 'workdir', 'clock', 'instanceId', 'rehearsals', 'fencing', 'livenessProbeTimeout', 'curve'] as const;

/**
 * A node's watcher options: every {@link WatcherOptions} but those the kit sets (the endpoint,
 * work directory and clock are in memory, the id is the node's; rehearsals, fencing and CURVE
 * need a real process and sockets), with callbacks that also receive the node's id.
 */
export interface TestNodeOptions extends Omit<WatcherOptions, (typeof KIT_OWNED)[number] | 'onPromote' | 'onDemote'> {
  readonly onPromote?: (context: TestPromoteContext) => void | Promise<void>;
  readonly onDemote?: (context: TestDemoteContext) => void | Promise<void>;
}

/** One node, when it needs options of its own. */
export interface TestNodeSpec {
  /** The node's `instanceId`. */
  readonly id: string;
  /** Merged over the cluster's `options` (its `onPromote`/`onDemote` replace the cluster's). */
  readonly options?: TestNodeOptions;
}

/** What {@link createTestCluster} takes. */
export interface TestClusterOptions {
  /** The nodes, by id (or with options of their own); started in this order. */
  readonly nodes: ReadonlyArray<string | TestNodeSpec>;
  /**
   * Watcher options of every node. The library's defaults apply, but for `enabled`, which is
   * true here (a cluster that never fails over tests little).
   */
  readonly options?: TestNodeOptions;
  /** Every node's `onPromote` (unless its own options have one). */
  readonly onPromote?: (context: TestPromoteContext) => void | Promise<void>;
  /** Every node's `onDemote` (unless its own options have one). */
  readonly onDemote?: (context: TestDemoteContext) => void | Promise<void>;
  /**
   * Called with each watcher the cluster makes (at creation, and again for the new watcher of a
   * restart), before it starts: the place to attach your listeners.
   */
  readonly onWatcher?: (watcher: Watcher, id: string) => void;
  /**
   * The epoch the shared state file holds before the first start (as if the cluster had run
   * before): an integer from 0 to 2^53 - 1.
   * @default 0
   */
  readonly epoch?: number;
  /**
   * Delay of every message and connection event from the endpoint to a node, ms of test time.
   * @default 0
   */
  readonly latency?: number;
  /**
   * How long a node's subscriber takes to connect to a new holder of the endpoint, ms of test
   * time (libzmq reconnects every 10-100 ms).
   * @default 10
   */
  readonly reconnectDelay?: number;
  /**
   * Seed of the nodes' randomness (the jitter of retries): the same seed, the same run.
   * @default 1
   */
  readonly seed?: number;
}

/** A role change, with the test time (ms since the cluster was made) at which the node decided it. */
export interface TestRoleChange {
  readonly at: number;
  readonly node: string;
  readonly from: Role;
  readonly to: Role;
  readonly epoch: number;
  readonly reason: RoleChangeReason;
}

/** Any watcher event, with its node and test time. */
export type TestEvent = {
  [K in keyof WatcherEvents]: { readonly at: number; readonly node: string; readonly type: K; readonly event: Parameters<WatcherEvents[K]>[0] };
}[keyof WatcherEvents];

/** A fault or lifecycle step the test injected, with its test time. */
export interface TestFault {
  readonly at: number;
  /** The node concerned; undefined for the cluster as a whole. */
  readonly node: string | undefined;
  readonly fault: 'start' | 'stop' | 'crash' | 'restart' | 'silence' | 'speak' | 'stall' | 'wake' | 'partition' | 'heal' | 'foreign' | 'foreign-left';
  readonly detail: string;
}

/** Two nodes primary at once, seen by the checks the cluster runs whenever it is quiet. */
export interface TestViolation {
  readonly at: number;
  readonly primaries: readonly string[];
}

/** Where a node's process stands. */
export type TestNodeState = 'idle' | 'running' | 'stopped' | 'crashed';

interface NodeRuntime {
  readonly id: string;
  readonly watcher: Watcher;
  readonly clock: NodeClock;
  readonly transport: MemoryTransport;
  state: TestNodeState;
  startError: unknown;
  startSettled: boolean;
}

/** Turns of the event loop without news after which the cluster counts as quiet. */
const QUIET_TURNS = 3;
/** Turns one settle may take before the cluster is declared to be spinning. */
const MAX_SETTLE_TURNS = 20_000;
/** Longest start(), stop() and restart() wait for, in ms of test time. */
const LIFECYCLE_WITHIN_MS = 60_000;
/** The watcher events the cluster records. */
const EVENT_NAMES = ['roleChanged', 'primaryChanged', 'primaryMetadataChanged', 'primaryLost', 'promotionFailed', 'epochExhausted', 'endpointStolen'] as const;

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The real Watcher, muted once its process has crashed: a dead process runs no listener and
 * feeds no `roleChanges()` stream.
 */
class TestWatcher extends Watcher {
  readonly #dead: () => boolean;

  constructor(options: WatcherOptions, deps: WatcherDeps, dead: () => boolean) {
    super(options, deps);
    this.#dead = dead;
  }

  protected override emitSafely(event: keyof WatcherEvents, payload: unknown): void {
    if (!this.#dead()) super.emitSafely(event, payload);
  }

  protected override pushChange(change: RoleChange): void {
    if (!this.#dead()) super.pushChange(change);
  }
}

/**
 * A cluster of watchers in memory, on a fake clock. Make one with {@link createTestCluster}.
 *
 * Time moves only when the test moves it: `await cluster.advance(ms)` or `await
 * cluster.until(predicate)`. Faults (`crash`, `silence`, `stall`, `partition`, `injectPrimary`)
 * take effect at once; their consequences unfold as time moves.
 */
export class TestCluster {
  /** The cluster's clock: every node's time. Use it (or {@link sleep}) for time your callbacks take. */
  readonly clock: FakeClock;
  readonly #options: TestClusterOptions;
  readonly #specs = new Map<string, TestNodeSpec>();
  readonly #endpoint: MemoryEndpoint;
  readonly #store: MemoryStateStore;
  readonly #nodes = new Map<string, NodeRuntime>();
  readonly #history: TestRoleChange[] = [];
  readonly #events: TestEvent[] = [];
  readonly #faults: TestFault[] = [];
  readonly #violations: TestViolation[] = [];
  /** The timeline's lines, in the order recorded. */
  readonly #lines: Array<{ readonly at: number; readonly seq: number; readonly text: string }> = [];
  readonly #timers = new Set<TimerHandle>();
  readonly #foreign = new Set<ForeignPrimary>();
  readonly #origin: number;
  #random: () => number;
  #activity = 0;
  #shutDown = false;

  /** @internal Use {@link createTestCluster}. */
  constructor(options: TestClusterOptions) {
    this.#options = validate(options);
    for (const node of options.nodes) {
      const spec = typeof node === 'string' ? { id: node } : node;
      this.#specs.set(spec.id, spec);
    }
    this.clock = new FakeClock();
    this.#origin = this.clock.now();
    this.#endpoint = new MemoryEndpoint(this.clock, {
      latency: options.latency ?? 0,
      reconnectDelay: options.reconnectDelay ?? 10,
    });
    this.#store = new MemoryStateStore(options.epoch ?? 0);
    this.#random = seededRandom(options.seed ?? 1);
    for (const id of this.#specs.keys()) this.#create(id);
  }

  // --- reading ----------------------------------------------------------------------------------

  /** Test time: ms since the cluster was made. */
  get now(): number {
    return this.clock.now() - this.#origin;
  }

  /** The node ids, in the order given. */
  get ids(): readonly string[] {
    return [...this.#specs.keys()];
  }

  /**
   * The watcher of node `id` (after a restart, the new one). A crashed node's watcher is left as
   * its process left it: its `role` is what it was when it died; {@link state} says it crashed.
   */
  node(id: string): Watcher {
    return this.#node(id).watcher;
  }

  /** Where node `id`'s process stands. */
  state(id: string): TestNodeState {
    return this.#node(id).state;
  }

  /** The id of the running node that is primary, or undefined. Throws if two are (never with the real machine). */
  primary(): string | undefined {
    const primaries = this.#primaries();
    if (primaries.length > 1) throw new AssertionError({ message: `two primaries at ${this.now} ms: ${primaries.join(', ')}\n${this.timeline()}` });
    return primaries[0];
  }

  /** Asserts that exactly one running node is primary, and returns its id. */
  assertOnePrimary(): string {
    const primaries = this.#primaries();
    if (primaries.length !== 1) {
      throw new AssertionError({
        message: `expected one primary at ${this.now} ms, found ${primaries.length === 0 ? 'none' : primaries.join(', ')}\n${this.timeline()}`,
      });
    }
    return primaries[0] as string;
  }

  /** Every role change of every node, in the order decided, with test times. */
  get history(): readonly TestRoleChange[] {
    return this.#history;
  }

  /** Every watcher event of every node (role changes, primaryLost, promotionFailed, ...), with test times. */
  get events(): readonly TestEvent[] {
    return this.#events;
  }

  /** The faults and lifecycle steps the test injected, with test times. */
  get faults(): readonly TestFault[] {
    return this.#faults;
  }

  /**
   * Moments when two running nodes were primary at once, found by the check the cluster runs
   * whenever it is quiet (after every timer and every step). Empty, with the real machine: a
   * non-empty list is a bug worth reporting.
   */
  get violations(): readonly TestViolation[] {
    return this.#violations;
  }

  /** The epoch the shared state file holds. */
  get storedEpoch(): number {
    return this.#store.record.epoch;
  }

  /**
   * Faults and role changes as text, one line each, in time order: for failure messages, and
   * for comparing two runs.
   *
   * @example
   * //    0 ms  a: starting -> primary (startup, epoch 1)
   * // 5000 ms  a: crash
   */
  timeline(): string {
    const lines = [...this.#lines].sort((a, b) => a.at - b.at || a.seq - b.seq);
    const width = Math.max(1, ...lines.map((l) => String(l.at).length));
    return lines.map((l) => `${String(l.at).padStart(width)} ms  ${l.text}`).join('\n');
  }

  // --- time -------------------------------------------------------------------------------------

  /**
   * Lets every node finish what it can do without time moving: messages in flight at this
   * instant, callbacks that resolve, notifications. Time stays where it is.
   */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let turns = 0; turns < MAX_SETTLE_TURNS; turns++) {
      const before = this.#signature();
      const ran = this.clock.runNext(this.clock.now());
      await turn();
      if (ran || this.#signature() !== before) quiet = 0;
      else if (++quiet >= QUIET_TURNS) {
        this.#check();
        return;
      }
    }
    throw new FailoverError(
      'ERR_FAILOVER_TIMEOUT',
      `the cluster did not come to rest at ${this.now} ms within ${MAX_SETTLE_TURNS} turns without time moving: something reschedules itself at once (a callback loop?)`,
    );
  }

  /** Moves test time forward by `ms`, running every timer in order and settling after each. */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new InvalidOptionError('ms', 'a finite number of ms >= 0', ms);
    await this.#runTo(this.clock.now() + ms);
  }

  /**
   * Moves test time forward until `predicate` holds (checked whenever the cluster is quiet), at
   * most `within` ms; resolves with the test time it took. Rejects with ERR_FAILOVER_TIMEOUT,
   * the timeline in the message, when it does not hold by then.
   *
   * @example
   * const took = await cluster.until(() => cluster.primary() === 'b', { within: 1000 });
   */
  async until(predicate: () => boolean, options: { readonly within?: number } = {}): Promise<number> {
    const within = options.within ?? LIFECYCLE_WITHIN_MS;
    if (!Number.isFinite(within) || within < 0) throw new InvalidOptionError('within', 'a finite number of ms >= 0', within);
    const from = this.clock.now();
    if (await this.#runTo(from + within, predicate)) return this.clock.now() - from;
    throw new FailoverError('ERR_FAILOVER_TIMEOUT', `not reached within ${within} ms (at ${this.now} ms)\n${this.timeline()}`);
  }

  /** A promise that resolves `ms` of test time from now: for callbacks that take time. */
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = this.clock.setTimer(() => {
        this.#timers.delete(handle);
        resolve();
      }, ms);
      this.#timers.add(handle);
    });
  }

  // --- lifecycle --------------------------------------------------------------------------------

  /**
   * Starts the given nodes (by default every node not started yet), in the order given, and
   * moves time until each `start()` settled. Rejects with the first node's start error.
   */
  async start(...ids: string[]): Promise<void> {
    const targets = ids.length > 0 ? ids.map((id) => this.#node(id)) : [...this.#nodes.values()].filter((n) => n.state === 'idle');
    for (const n of targets) {
      if (n.state !== 'idle') throw new FailoverError('ERR_FAILOVER_LIFECYCLE', `node ${n.id} is ${n.state}, not idle: restart() it`);
    }
    for (const n of targets) {
      n.state = 'running';
      this.#fault(n.id, 'start', '');
      n.watcher.start().then(
        () => {
          n.startSettled = true;
        },
        (error: unknown) => {
          n.startError = error;
          n.startSettled = true;
        },
      );
    }
    await this.until(() => targets.every((n) => n.startSettled || n.state === 'crashed'), { within: LIFECYCLE_WITHIN_MS });
    for (const n of targets) {
      if (n.startError !== undefined) {
        n.state = 'stopped';
        throw n.startError;
      }
    }
  }

  /** Stops node `id` gracefully (`shutdown()`: onDemote, farewell, handover) and moves time until it has. */
  async stop(id: string): Promise<void> {
    const n = this.#node(id);
    if (n.state !== 'running') return;
    this.#fault(id, 'stop', '');
    let done = false;
    void n.watcher.shutdown().finally(() => {
      done = true;
    });
    await this.until(() => done || n.state === 'crashed', { within: LIFECYCLE_WITHIN_MS });
    if (n.state === 'running') n.state = 'stopped';
  }

  /**
   * Kills node `id`'s process: no onDemote, no farewell; the endpoint is freed and its
   * connections drop, as the kernel does for a process that died. Nothing of it runs any more.
   */
  crash(id: string): void {
    const n = this.#node(id);
    if (n.state !== 'running') throw new FailoverError('ERR_FAILOVER_LIFECYCLE', `node ${id} is ${n.state}: only a running node can crash`);
    n.state = 'crashed';
    this.#fault(id, 'crash', '');
    n.transport.crash();
  }

  /**
   * Starts node `id` again after a crash or a stop, as a new process with a new watcher (the
   * shared state file keeps the epoch), and moves time until its `start()` settled.
   */
  async restart(id: string): Promise<Watcher> {
    const old = this.#node(id);
    if (old.state === 'running') throw new FailoverError('ERR_FAILOVER_LIFECYCLE', `node ${id} is running: stop() or crash() it first`);
    if (old.state !== 'idle') this.#fault(id, 'restart', '');
    const n = this.#create(id);
    await this.start(id);
    return n.watcher;
  }

  /**
   * Node `id` stays alive but nothing it publishes gets out (a primary that stops heartbeating:
   * a bug, a send path that fails), for `ms` of test time, or until {@link heal}.
   */
  silence(id: string, ms?: number): void {
    this.#node(id);
    this.#endpoint.silence(id, true);
    this.#fault(id, 'silence', ms === undefined ? '' : `${ms} ms`);
    if (ms !== undefined) {
      this.#later(() => {
        if (!this.#endpoint.silenced(id)) return;
        this.#endpoint.silence(id, false);
        this.#fault(id, 'speak', '');
      }, ms);
    }
  }

  /**
   * Node `id`'s event loop freezes for `ms` of test time (a long GC pause, a blocking call,
   * SIGSTOP): no timer of it fires and nothing reaches it, while its sockets (the bind, the
   * connections) stay as they are. When it wakes, its timers fire late and what arrived
   * meanwhile is delivered, as in Node.
   */
  stall(id: string, ms: number): void {
    const n = this.#node(id);
    if (!Number.isFinite(ms) || ms <= 0) throw new InvalidOptionError('ms', 'a finite number of ms > 0', ms);
    if (n.state !== 'running' || n.clock.frozen) return;
    n.clock.freeze();
    this.#fault(id, 'stall', `${ms} ms`);
    this.#later(() => {
      if (n.clock.dead) return;
      this.#fault(id, 'wake', '');
      n.clock.thaw();
    }, ms);
  }

  /**
   * Cuts the cluster into groups of nodes (nodes not named form one more group): no connection
   * crosses a cut, so nothing does. The endpoint's bind stays exclusive across the cuts (one
   * host, one endpoint). Lasts until {@link heal}.
   *
   * @example cluster.partition(['a'], ['b', 'c']);
   */
  partition(...groups: string[][]): void {
    for (const group of groups) for (const id of group) this.#node(id);
    this.#endpoint.partition(groups);
    this.#fault(undefined, 'partition', groups.map((g) => `[${g.join(', ')}]`).join(' | '));
  }

  /** Ends every partition and every silence. */
  heal(): void {
    this.#endpoint.partition([]);
    for (const id of this.#specs.keys()) this.#endpoint.silence(id, false);
    this.#fault(undefined, 'heal', '');
  }

  /**
   * A foreign primary takes the endpoint with `epoch` (see foreign-primary.ts): how a higher
   * epoch reaches a primary (it steps down: `onDemote` with reason `higher-epoch`), and an epoch
   * floor for the next takeover. Returns it, to `leave()` it later.
   */
  injectPrimary(options: ForeignPrimaryOptions): ForeignPrimary {
    const epoch = options.epoch;
    if (!Number.isSafeInteger(epoch) || epoch < 1) throw new InvalidOptionError('epoch', `an integer from 1 to ${MAX_EPOCH}`, epoch);
    const instanceId = options.instanceId ?? 'foreign';
    if (!isValidInstanceId(instanceId)) throw new InvalidOptionError('instanceId', INSTANCE_ID_RULE, instanceId);
    if (this.#specs.has(instanceId)) throw new InvalidOptionError('instanceId', 'an id that is not one of the cluster\'s nodes', instanceId);
    const heartbeatInterval = options.heartbeatInterval ?? this.#options.options?.heartbeatInterval ?? DEFAULTS.heartbeatInterval;
    if (!Number.isFinite(heartbeatInterval) || heartbeatInterval < 1) throw new InvalidOptionError('heartbeatInterval', 'a number of ms >= 1', heartbeatInterval);
    const priority = options.priority ?? 1;
    if (!Number.isSafeInteger(priority) || priority < 0) throw new InvalidOptionError('priority', 'an integer >= 0', priority);
    const foreign = new ForeignPrimary(this.#endpoint, this.clock, { epoch, instanceId, heartbeatInterval, priority }, (graceful) => {
      this.#foreign.delete(foreign);
      this.#fault(undefined, 'foreign-left', `${instanceId}${graceful ? '' : ', crashed'}`);
    });
    this.#foreign.add(foreign);
    this.#fault(undefined, 'foreign', `${instanceId}, epoch ${epoch}`);
    foreign.seize();
    return foreign;
  }

  /**
   * Stops every running node gracefully, removes foreign primaries and pending faults, and moves
   * time until all is done: nothing of the cluster is left on its clock.
   */
  async shutdown(): Promise<void> {
    if (this.#shutDown) return;
    this.#shutDown = true;
    for (const foreign of [...this.#foreign]) foreign.leave({ graceful: false });
    for (const handle of this.#timers) this.clock.clearTimer(handle);
    this.#timers.clear();
    for (const n of this.#nodes.values()) n.clock.thaw();
    const running = [...this.#nodes.values()].filter((n) => n.state === 'running');
    let stopped = 0;
    for (const n of running) {
      this.#fault(n.id, 'stop', '');
      void n.watcher.shutdown().finally(() => {
        stopped++;
        n.state = 'stopped';
      });
    }
    await this.until(() => stopped === running.length, { within: LIFECYCLE_WITHIN_MS });
    this.#endpoint.dispose();
    await this.settle();
  }

  /** `await using cluster = createTestCluster(...)` shuts it down at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown();
  }

  // --- inside -----------------------------------------------------------------------------------

  #node(id: string): NodeRuntime {
    const n = this.#nodes.get(id);
    if (n === undefined) throw new InvalidOptionError('node', `one of the cluster's nodes (${this.ids.join(', ')})`, id);
    return n;
  }

  #primaries(): string[] {
    return [...this.#nodes.values()].filter((n) => n.state === 'running' && n.watcher.role === 'primary').map((n) => n.id);
  }

  #create(id: string): NodeRuntime {
    const spec = this.#specs.get(id) as TestNodeSpec;
    const shared = this.#options.options ?? {};
    const own = spec.options ?? {};
    const onPromote = own.onPromote ?? shared.onPromote ?? this.#options.onPromote;
    const onDemote = own.onDemote ?? shared.onDemote ?? this.#options.onDemote;
    const clock = new NodeClock(this.clock);
    const dead = (): boolean => clock.dead;
    const transport = this.#endpoint.transport(id, clock);
    const random = this.#random;
    const watcher = new TestWatcher(
      {
        enabled: true,
        ...shared,
        ...own,
        endpoint: 'ipc://@failover-watch-testing',
        instanceId: id,
        clock,
        rehearsals: 0,
        fencing: false,
        onPromote: (context) => {
          this.#activity++;
          return gate(dead, () => onPromote?.({ epoch: context.epoch, reason: context.reason, signal: context.signal, instanceId: id }));
        },
        onDemote: (context) => {
          this.#activity++;
          return gate(dead, () => onDemote?.({ epoch: context.epoch, reason: context.reason, instanceId: id }));
        },
      },
      { transport, random: () => random(), stateFile: new MemoryStateFile(this.#store, () => !dead()) },
      dead,
    );
    for (const name of EVENT_NAMES) {
      watcher.on(name, (event: { at: number }) => {
        this.#activity++;
        const at = this.#testTime(event.at);
        this.#events.push({ at, node: id, type: name, event } as TestEvent);
        if (name === 'roleChanged') {
          const c = event as RoleChange;
          this.#history.push({ at, node: id, from: c.from, to: c.to, epoch: c.epoch, reason: c.reason });
          this.#line(at, `${id}: ${c.from} -> ${c.to} (${c.reason}, epoch ${c.epoch})`);
        }
      });
    }
    const runtime: NodeRuntime = { id, watcher, clock, transport, state: 'idle', startError: undefined, startSettled: false };
    this.#nodes.set(id, runtime);
    this.#options.onWatcher?.(watcher, id);
    return runtime;
  }

  /** Test time of a wall-clock stamp of the cluster's clock. */
  #testTime(wallAt: number): number {
    return wallAt - (this.clock.wallNow() - this.clock.now()) - this.#origin;
  }

  #fault(node: string | undefined, fault: TestFault['fault'], detail: string): void {
    this.#activity++;
    this.#faults.push({ at: this.now, node, fault, detail });
    this.#line(this.now, `${node ?? '*'}: ${fault}${detail === '' ? '' : ` (${detail})`}`);
  }

  #line(at: number, text: string): void {
    this.#lines.push({ at, seq: this.#lines.length, text });
  }

  #later(fn: () => void, ms: number): void {
    const handle = this.clock.setTimer(() => {
      this.#timers.delete(handle);
      fn();
    }, ms);
    this.#timers.add(handle);
  }

  /** What changes whenever anything happens in the cluster. */
  #signature(): string {
    return `${this.#activity}:${this.#endpoint.activity}:${this.clock.pending}:${this.clock.nextAt ?? '-'}`;
  }

  /** Runs timers up to `target`, one at a time, settling after each; true as soon as `done` holds. */
  async #runTo(target: number, done?: () => boolean): Promise<boolean> {
    await this.settle();
    if (done?.() === true) return true;
    for (;;) {
      const next = this.clock.nextAt;
      if (next === undefined || next > target) break;
      this.clock.runNext(next);
      await this.settle();
      if (done?.() === true) return true;
    }
    if (target > this.clock.now()) this.clock.advance(target - this.clock.now());
    await this.settle();
    return done?.() === true;
  }

  /** The one-primary check, run whenever the cluster is quiet. */
  #check(): void {
    const primaries = this.#primaries();
    if (primaries.length > 1) this.#violations.push({ at: this.now, primaries });
  }
}

/**
 * Calls a user's callback unless the node's process is dead, and lets its outcome reach the
 * watcher only while the process lives: a crashed node's watcher hears nothing more.
 */
function gate(dead: () => boolean, call: () => void | Promise<void>): void | Promise<void> {
  if (dead()) return new Promise<void>(() => undefined);
  const result = call();
  if (result === undefined || typeof (result as { then?: unknown }).then !== 'function') return result;
  return new Promise<void>((resolve, reject) => {
    Promise.resolve(result).then(
      () => {
        if (!dead()) resolve();
      },
      (error: unknown) => {
        if (!dead()) reject(error);
      },
    );
  });
}

function validate(options: TestClusterOptions): TestClusterOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', 'an object', options);
  const nodes: unknown = options.nodes;
  if (!Array.isArray(nodes) || nodes.length === 0) throw new InvalidOptionError('nodes', 'a non-empty array of node ids', nodes);
  const seen = new Set<string>();
  for (const node of nodes as unknown[]) {
    const id = typeof node === 'string' ? node : (node as { id?: unknown } | null)?.id;
    if (!isValidInstanceId(id)) throw new InvalidOptionError('nodes', `ids that are ${INSTANCE_ID_RULE}`, id);
    if (seen.has(id)) throw new InvalidOptionError('nodes', 'distinct ids', id);
    seen.add(id);
    if (typeof node !== 'string') refuseKitOwned((node as TestNodeSpec).options, `nodes[${id}].options`);
  }
  refuseKitOwned(options.options, 'options');
  const epoch = options.epoch ?? 0;
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new InvalidOptionError('epoch', `an integer from 0 to ${MAX_EPOCH}`, options.epoch);
  for (const key of ['latency', 'reconnectDelay'] as const) {
    const value = options[key];
    if (value !== undefined && (!Number.isFinite(value) || value < 0)) throw new InvalidOptionError(key, 'a finite number of ms >= 0', value);
  }
  if (options.seed !== undefined && !Number.isSafeInteger(options.seed)) throw new InvalidOptionError('seed', 'an integer', options.seed);
  for (const key of ['onPromote', 'onDemote', 'onWatcher'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function') throw new InvalidOptionError(key, 'a function', options[key]);
  }
  return options;
}

function refuseKitOwned(options: object | undefined, where: string): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError(where, 'an object of watcher options', options);
  for (const key of KIT_OWNED) {
    if (key in options) {
      throw new InvalidOptionError(`${where}.${key}`, 'no value: the test kit sets it (see docs/TESTING.md)', (options as Record<string, unknown>)[key]);
    }
  }
}

/**
 * Makes a test cluster: a real Watcher per node on an endpoint and a state file in memory, all
 * on one FakeClock. Nothing runs until `start()`.
 *
 * @example
 * const cluster = createTestCluster({ nodes: ['a', 'b', 'c'], options: { heartbeatInterval: 100, heartbeatTimeout: 300 } });
 * await cluster.start();
 * cluster.crash('a');
 * await cluster.until(() => cluster.primary() === 'b', { within: 100 });
 * await cluster.shutdown();
 */
export function createTestCluster(options: TestClusterOptions): TestCluster {
  return new TestCluster(options);
}
