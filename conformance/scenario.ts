/**
 * What a conformance scenario is, and the context it runs in: fresh endpoints and work
 * directories, the peer under test started from its template, library nodes (harness/cluster.ts:
 * real watcher processes), the kit's own sockets, and the bookkeeping that every scenario's
 * cleanup relies on. Every process and socket a scenario opens through the context is closed or
 * killed (by pid) when it ends, whatever happened.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, freePort, uniqueIpc, type NodeEvent, type WatcherProcess } from '../harness/cluster.js';
import type { NodeConfig } from '../harness/watcher-node.js';
import { PeerProcess, type PeerConfig, type PeerEvent } from './peer-process.js';
import { Listener, Squatter } from './wire.js';

/** How the endpoints of a run are written (PROTOCOL.md 2.2). */
export type Transport = 'tcp' | 'ipc-abstract' | 'ipc-path';
export const TRANSPORTS: readonly Transport[] = ['tcp', 'ipc-abstract', 'ipc-path'];

/** One scenario: a small module under conformance/scenarios/. */
export interface Scenario {
  /** Short kebab-case name, for `--only`. */
  readonly name: string;
  /** What it checks, in one line (the report's column). */
  readonly checks: string;
  /** The PROTOCOL.md sections it exercises. */
  readonly sections: string;
  /** Transports it applies to (default: all); on others it is reported as skipped. */
  readonly transports?: readonly Transport[];
  run(ctx: ScenarioContext): Promise<void>;
}

/** A scenario's outcome. */
export interface ScenarioResult {
  readonly name: string;
  readonly checks: string;
  readonly sections: string;
  readonly status: 'pass' | 'fail' | 'skip';
  readonly ms: number;
  /** Why it failed or was skipped. */
  readonly detail?: string;
  /** What it observed (figures, epochs), pass or fail. */
  readonly notes: readonly string[];
}

/** A failed expectation: the message is the report's detail. */
export class ConformanceFailure extends Error {
  override readonly name = 'ConformanceFailure';
}

/** Fails the scenario with `message` unless `condition` holds. */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new ConformanceFailure(message);
}

/** Timing defaults of a scenario's nodes, unless it asks otherwise. */
export const DEFAULT_INTERVAL = 200;
export const DEFAULT_TIMEOUT = 1000;
/** Bound on a process's start (tsx under load on 2 cores takes seconds). */
export const START_BOUND = 20_000;
/** Bound on a takeover or a follow once its cause happened. */
export const CHANGE_BOUND = 5000;

/** A node of the scenario's cluster, as the shared checks see it. */
export interface RoleTerm {
  readonly node: string;
  readonly endpoint: string;
  readonly epoch: number;
  readonly at: number;
}

export class ScenarioContext {
  readonly transport: Transport;
  readonly template: string;
  readonly notes: string[] = [];
  readonly #cluster = new Cluster();
  readonly #peers: PeerProcess[] = [];
  readonly #dirs: string[] = [];
  readonly #closers: Array<() => void> = [];
  #count = 0;

  constructor(transport: Transport, template: string) {
    this.transport = transport;
    this.template = template;
  }

  /** Records an observation for the report. */
  note(text: string): void {
    this.notes.push(text);
  }

  /** A fresh private directory, removed at the end. */
  dir(): string {
    const path = mkdtempSync(join(tmpdir(), 'fw-conf-'));
    this.#dirs.push(path);
    return path;
  }

  /** A fresh endpoint of the run's transport (unused by anything else). */
  async endpoint(): Promise<string> {
    switch (this.transport) {
      case 'tcp':
        return `tcp://127.0.0.1:${await freePort()}`;
      case 'ipc-abstract':
        return uniqueIpc('fw-conf');
      case 'ipc-path':
        return `ipc://${join(this.dir(), 'ep.sock')}`;
    }
  }

  /** Starts the peer under test and waits for its `ready` line. */
  async peer(config: Partial<PeerConfig> & { readonly endpoint: string }): Promise<PeerProcess> {
    const peer = this.startPeer(config);
    await peer.waitFor((e) => e.event === 'ready', START_BOUND, '"ready" line');
    return peer;
  }

  /** Starts the peer under test without waiting. */
  startPeer(config: Partial<PeerConfig> & { readonly endpoint: string }): PeerProcess {
    const peer = new PeerProcess(this.template, {
      id: `peer-${++this.#count}`,
      priority: 1,
      workdir: config.workdir ?? this.dir(),
      heartbeatInterval: DEFAULT_INTERVAL,
      heartbeatTimeout: DEFAULT_TIMEOUT,
      ...config,
    });
    this.#peers.push(peer);
    return peer;
  }

  /** Starts a library node (harness/watcher-node.ts) and waits for its `ready`. */
  async library(config: Partial<NodeConfig> & { readonly endpoint: string }): Promise<WatcherProcess> {
    const node = this.startLibrary(config);
    await node.waitFor((e) => e.type === 'ready' || e.type === 'startFailed', START_BOUND, 'ready');
    const failed = node.events.find((e) => e.type === 'startFailed');
    check(failed === undefined, `library node ${node.id} failed to start: ${String(failed?.message)}`);
    return node;
  }

  /** Starts a library node without waiting. */
  startLibrary(config: Partial<NodeConfig> & { readonly endpoint: string }): WatcherProcess {
    return this.#cluster.spawn({
      instanceId: `lib-${++this.#count}`,
      workdir: config.workdir ?? this.dir(),
      heartbeatInterval: DEFAULT_INTERVAL,
      heartbeatTimeout: DEFAULT_TIMEOUT,
      role: 'auto',
      ...config,
    });
  }

  /** Binds the endpoint as the kit's own publisher (closed at the end). */
  async squatter(endpoint: string): Promise<Squatter> {
    const squatter = await Squatter.bind(endpoint);
    this.#closers.push(() => squatter.close());
    return squatter;
  }

  /** Connects the kit's listener to the endpoint (closed at the end). */
  listener(endpoint: string): Listener {
    const listener = new Listener(endpoint);
    this.#closers.push(() => listener.close());
    return listener;
  }

  /** Runs `close` at the end of the scenario. */
  onCleanup(close: () => void): void {
    this.#closers.push(close);
  }

  /** Every change to primary of every node of the scenario (peers and library nodes). */
  terms(): RoleTerm[] {
    const peerTerms = this.#peers.flatMap((p) =>
      p.events.filter((e) => e.event === 'role' && e.role === 'primary').map((e) => ({ node: p.id, endpoint: p.config.endpoint, epoch: Number(e.epoch), at: e.at })),
    );
    const libraryTerms = this.#cluster.nodes.flatMap((n) =>
      n.events.filter((e) => e.type === 'roleChanged' && e.to === 'primary').map((e) => ({ node: n.id, endpoint: n.config.endpoint, epoch: Number(e.epoch), at: e.at })),
    );
    return [...peerTerms, ...libraryTerms].sort((a, b) => a.at - b.at);
  }

  /** Ends everything the scenario started: sockets closed, processes killed by pid. */
  async cleanup(): Promise<void> {
    for (const close of this.#closers.splice(0)) {
      try {
        close();
      } catch {
        // Already closed.
      }
    }
    for (const peer of this.#peers) peer.signal('SIGKILL');
    await Promise.all([...this.#peers.map((p) => p.exited), this.#cluster.stopAll()]);
    for (const dir of this.#dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
}

/** A library node's change to primary (the first one from `after` on), within `timeout`. */
export function libraryPrimary(node: WatcherProcess, timeout = CHANGE_BOUND, after = 0): Promise<NodeEvent> {
  return node.waitFor((e) => e.type === 'roleChanged' && e.to === 'primary' && e.at >= after, timeout, 'roleChanged to primary');
}

/** A library node following `id`, from `after` on. */
export function libraryFollows(node: WatcherProcess, id: string, timeout = CHANGE_BOUND, after = 0): Promise<NodeEvent> {
  return node.waitFor((e) => e.type === 'primaryChanged' && e.instanceId === id && e.at >= after, timeout, `primaryChanged to ${id}`);
}

/** The peer's `role` line saying primary (the first one from `after` on). */
export function peerPrimary(peer: PeerProcess, timeout = CHANGE_BOUND, after = 0): Promise<PeerEvent> {
  return peer.waitFor((e) => e.event === 'role' && e.role === 'primary' && e.at >= after, timeout, '"role" primary line');
}

/** The peer's `following` line naming `id`, from `after` on. */
export function peerFollows(peer: PeerProcess, id: string, timeout = CHANGE_BOUND, after = 0): Promise<PeerEvent> {
  return peer.waitFor((e) => e.event === 'following' && e.id === id && e.at >= after, timeout, `"following" line for ${id}`);
}

/** An epoch field as a number (a peer might print it as a string); NaN when it is none. */
export function epochOf(event: { readonly [key: string]: unknown }): number {
  const epoch = event['epoch'];
  return typeof epoch === 'number' ? epoch : Number.NaN;
}

/** Made-up members ranked between the first and the last node of {@link rankedMembers}. */
export const FILLER_MEMBERS = 30;

/**
 * A `members` list for the kit's heartbeats that makes `first` the best-ranked successor and
 * puts {@link FILLER_MEMBERS} made-up nodes between it and `last`: a node that honours the
 * successor stagger (PROTOCOL.md 6.3, 20 ms a rank by default) as `last` waits 600 ms or more
 * before it tries to bind, so `first` takes over without a race.
 */
export function rankedMembers(first: string, last: string): Array<[string, number]> {
  const filler = Array.from({ length: FILLER_MEMBERS }, (_, i): [string, number] => [`kit-filler-${String(i).padStart(2, '0')}`, 2]);
  return [[first, 1], ...filler, [last, 1000]];
}
