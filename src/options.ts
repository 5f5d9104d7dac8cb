/**
 * Watcher options: their types, documentation, frozen defaults and the one validation pass.
 *
 * @module
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { DemoteReason, InitialRole, PromoteReason } from './core/heartbeat-machine.js';
import { InvalidOptionError } from './errors.js';
import type { Clock } from './runtime/clock.js';
import type { Logger } from './runtime/logger.js';
import { defaultWorkdirParent } from './runtime/workdir.js';
import { resolveCurve, type CurveOptions } from './transport/zmq/curve.js';
import { endpointSlug, parseEndpoint, type Endpoint } from './transport/zmq/endpoint.js';
import { MAX_INSTANCE_ID_BYTES } from './protocol/messages.js';
import { assertSupported, endpointFeature } from './platform.js';
import { resolveMetadata, type Metadata } from './metadata-option.js';

/** Handed to `onPromote`. */
export interface PromoteContext {
  /** The new term's epoch: a fencing token that only grows. Hand it to storage that can reject older terms. */
  readonly epoch: number;
  /** Why this node is being promoted. */
  readonly reason: PromoteReason;
  /** Aborts as soon as the role is lost (a higher epoch, `shutdown()`, `stepDown()`). */
  readonly signal: AbortSignal;
}

/** Handed to `onDemote`. */
export interface DemoteContext {
  /** The epoch of the term that ended. */
  readonly epoch: number;
  /** Why the role was lost. */
  readonly reason: DemoteReason;
}

/** Options of a {@link Watcher}. Only `endpoint` is required. */
export interface WatcherOptions {
  /**
   * The cluster's one endpoint. Whoever is primary binds it; everyone else connects to it.
   * `tcp://127.0.0.1:PORT` (every platform), `ipc://@NAME` (Linux abstract socket) or
   * `ipc:///ABSOLUTE/PATH` (Linux). An ipc endpoint elsewhere throws `ERR_FAILOVER_UNSUPPORTED`
   * from the constructor (docs/PLATFORMS.md).
   * @example 'tcp://127.0.0.1:5555'
   */
  readonly endpoint: string;
  /**
   * How this watcher starts. `auto`: take the endpoint if it is free (the first instance becomes
   * primary), otherwise follow. `primary`: take the endpoint or fail. `secondary`: follow.
   * @default 'auto'
   */
  readonly role?: InitialRole;
  /**
   * This node's id, unique in the cluster: 1-256 bytes of UTF-8, without control characters
   * (U+0000-U+001F, U+007F-U+009F) or lone surrogates. Checked when the watcher is constructed; any
   * id that passes fits in the presence subscription by which the primary lists this node.
   * @default `${hostname()}-${process.pid}`
   */
  readonly instanceId?: string;
  /**
   * Directory of the state file that keeps the epoch across restarts. Nodes of one cluster on one
   * host should share it (the default does). Created if missing (mode 0700) and checked by
   * `start()` before anything is read from it: it must be a directory of this user, not a symbolic
   * link, not writable by group or others, and every directory above it must belong to this user
   * or root and be sticky if others may write to it; otherwise `start()` rejects with
   * `ERR_FAILOVER_STATE_FILE` naming the directory and the reason (docs/SECURITY.md).
   * @default `${tmpdir()}/failover-watch-${user}/${endpoint slug}`
   */
  readonly workdir?: string;
  /**
   * How often the primary publishes a heartbeat, in ms.
   * @default 5000
   */
  readonly heartbeatInterval?: number;
  /**
   * Silence after which a secondary considers the primary lost, in ms. Must exceed
   * `heartbeatInterval`; three intervals or more is sensible.
   * @default 15000
   */
  readonly heartbeatTimeout?: number;
  /**
   * Whether a secondary may promote itself when the primary is lost. Off by default (safe
   * opt-in): a disabled secondary still notices and reports the loss. `setEnabled()` changes it
   * at runtime.
   * @default false
   */
  readonly enabled?: boolean;
  /**
   * Called when this node becomes primary: it holds the endpoint, its epoch is written, and its
   * `instance.promoted` and first heartbeat are out (peers follow it from then on); `roleChanged`
   * to `primary` comes once this resolves. If it throws or rejects, the node gives the endpoint
   * back (with `instance.shutdown`), stays secondary and retries later with jittered backoff.
   * @example async ({ epoch, signal }) => { await openDatabase({ fencingToken: epoch, signal }); }
   */
  readonly onPromote?: (context: PromoteContext) => void | Promise<void>;
  /**
   * Called after this node stopped being primary (and after its `onPromote` settled). On
   * `shutdown()` it runs before `instance.shutdown` is sent, so the successor starts only after
   * this node let go. Bounded by `shutdownTimeout`.
   */
  readonly onDemote?: (context: DemoteContext) => void | Promise<void>;
  /**
   * Any object with `debug`, `info`, `warn` and `error` (console, pino, winston).
   * @default a silent logger
   */
  readonly logger?: Logger;
  /**
   * This node's priority as a successor: lower is preferred (as in go-failover). When the primary
   * is lost, the best-ranked live secondary (priority, then instanceId) tries first and the
   * others wait `priorityStagger` per better-ranked node, so the preferred one wins in the
   * normal case; the exclusive bind still guarantees a single winner.
   * @default 1
   */
  readonly priority?: number;
  /**
   * Delay per better-ranked live secondary before this one tries to take over, in ms.
   * @default 20
   */
  readonly priorityStagger?: number;
  /**
   * When primary, hand over gracefully to a connected secondary of strictly better priority
   * after `preemptDelay` (keepalived's preempt). Off by default: a working primary keeps its role.
   * When nobody takes over (failover disabled on the better secondaries, which presence does not
   * tell), this node takes the role back after `heartbeatTimeout` and does not preempt for them
   * again while it stays primary and they stay connected.
   * @default false
   */
  readonly preempt?: boolean;
  /**
   * How long a better-priority secondary must stay connected before a preempting primary hands over, in ms.
   * @default 1000
   */
  readonly preemptDelay?: number;
  /**
   * Opt-in fencing of a hung primary. Off by default. When on, a secondary that finds the
   * primary silent for `heartbeatTimeout`, still holding the endpoint, and not answering a
   * direct liveness probe within `livenessProbeTimeout`, terminates it with SIGKILL by the pid it
   * announced, and takes over. Only on the same host, and only if that pid is still the process
   * that announced it (same start time). Trade-off: a primary whose event loop is blocked for
   * longer than `heartbeatTimeout + livenessProbeTimeout` is killed rather than waited for.
   * Linux only (a process's start time comes from `/proc`): `true` elsewhere throws
   * `ERR_FAILOVER_UNSUPPORTED` from the constructor (docs/PLATFORMS.md).
   * @default false
   */
  readonly fencing?: boolean;
  /**
   * How long the direct liveness probe of a silent primary waits for its answer, in ms.
   * @default 1000
   */
  readonly livenessProbeTimeout?: number;
  /**
   * Base delay before retrying after a failed `onPromote`, in ms; doubles per failure up to
   * `maxRetryInterval`, each delay jittered by ±50%.
   * @default 1000
   */
  readonly retryInterval?: number;
  /**
   * Cap of the retry backoff, in ms.
   * @default 30000
   */
  readonly maxRetryInterval?: number;
  /**
   * Longest `shutdown()` waits for `onPromote`/`onDemote` to settle, in ms, before it hands over anyway.
   * @default 5000
   */
  readonly shutdownTimeout?: number;
  /**
   * Size of the buffer of each `roleChanges()` iterator; when a consumer falls behind, the
   * oldest changes are dropped and counted in `status().notificationsDropped`.
   * @default 64
   */
  readonly notificationBuffer?: number;
  /**
   * Dry runs of a takeover and of a graceful exit through this watcher's own code, run in the
   * background while the node is a secondary at rest (once `start()` has resolved, or later
   * when it becomes one; never during a takeover or handover, nor as primary): a scratch
   * watcher with no socket and a scratch state file next to the real one (removed afterwards)
   * follows a made-up primary, takes over when it goes, and shuts down. Nothing is bound, sent or called, and the real state file is never touched. Their
   * purpose is speed: a secondary may follow for hours and then take over with code it never
   * ran, which V8 would compile and run unoptimized on the takeover's clock. On the 2-core test
   * machine they cut the watcher's own part of a crash takeover from 1.3–1.8 ms to 0.7–1.0 ms.
   * About half a millisecond of CPU each (the first, up to 3 ms), each on a later turn of the
   * event loop. `shutdown()` waits for the one under way; the first that fails ends them (logged
   * at debug level). 0 turns them off.
   * @default 100
   */
  readonly rehearsals?: number;
  /**
   * The clock. Inject a `FakeClock` in tests.
   * @default systemClock
   */
  readonly clock?: Clock;
  /**
   * ZeroMQ CURVE authentication and encryption (off by default). All keys are 40-character Z85
   * strings (`failover-watch keygen` writes them; `readCurveKeys()` reads them). The primary binds
   * the endpoint as the CURVE server with the cluster's shared server pair and admits only
   * `allowedClientKeys` (and this node's own key); every node subscribes as a CURVE client with
   * its own pair and accepts only a primary that holds the server secret key. Keys never appear
   * in logs, `status()` or errors. See docs/SECURITY.md.
   * @default undefined (no CURVE: anyone who can reach the endpoint can listen and join)
   * @example curve: await readCurveKeys({ dir: '/etc/myapp/curve', name: 'node-a' })
   */
  readonly curve?: CurveOptions;
  /**
   * Application metadata this node announces while primary, in every heartbeat and its
   * `instance.promoted` (docs/PROTOCOL.md section 11): where it serves, typically. Followers see
   * it in `primaryChanged`, `primaryMetadataChanged`, `status().primary.metadata` and
   * `liveNodes()`. Change it at runtime with `setMetadata()`. At most 16 keys of 1-64 characters
   * of `[A-Za-z0-9._-]`, values of at most 256 bytes of UTF-8, at most 2048 bytes encoded.
   * @default {}
   * @example metadata: { port: '7001', proto: 'http' }
   */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** The defaults, frozen. */
export const DEFAULTS = Object.freeze({
  role: 'auto' as InitialRole,
  heartbeatInterval: 5000,
  heartbeatTimeout: 15000,
  enabled: false,
  retryInterval: 1000,
  maxRetryInterval: 30000,
  shutdownTimeout: 5000,
  notificationBuffer: 64,
  priority: 1,
  priorityStagger: 20,
  preempt: false,
  preemptDelay: 1000,
  fencing: false,
  livenessProbeTimeout: 1000,
  rehearsals: 100,
});

/** Options after validation and defaults. */
export interface ResolvedOptions {
  readonly endpoint: Endpoint;
  readonly role: InitialRole;
  readonly instanceId: string;
  readonly workdir: string;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly enabled: boolean;
  readonly onPromote: ((context: PromoteContext) => void | Promise<void>) | undefined;
  readonly onDemote: ((context: DemoteContext) => void | Promise<void>) | undefined;
  readonly logger: Logger | undefined;
  readonly retryInterval: number;
  readonly maxRetryInterval: number;
  readonly shutdownTimeout: number;
  readonly notificationBuffer: number;
  readonly rehearsals: number;
  readonly clock: Clock | undefined;
  readonly priority: number;
  readonly priorityStagger: number;
  readonly preempt: boolean;
  readonly preemptDelay: number;
  readonly fencing: boolean;
  readonly livenessProbeTimeout: number;
  readonly curve: CurveOptions | undefined;
  /** The metadata at start (frozen; `{}` when none); `setMetadata()` changes the announced one. */
  readonly metadata: Metadata;
}

const KNOWN = new Set([
  'endpoint',
  'role',
  'instanceId',
  'workdir',
  'heartbeatInterval',
  'heartbeatTimeout',
  'enabled',
  'onPromote',
  'onDemote',
  'logger',
  'retryInterval',
  'maxRetryInterval',
  'shutdownTimeout',
  'notificationBuffer',
  'rehearsals',
  'clock',
  'priority',
  'priorityStagger',
  'preempt',
  'preemptDelay',
  'fencing',
  'livenessProbeTimeout',
  'curve',
  'metadata',
]);

const MAX_DURATION = 2 ** 31 - 1; // Node timers overflow past this.

/** The `instanceId` rule, as error messages state it. */
export const INSTANCE_ID_RULE = `a string of 1-${MAX_INSTANCE_ID_BYTES} bytes of UTF-8 without control characters`;

/** C0 and C1 control characters and DEL. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Whether `id` is a valid `instanceId`: 1-{@link MAX_INSTANCE_ID_BYTES} bytes of UTF-8 (so also at
 * most 256 UTF-16 code units, what receivers accept), no control character, no lone surrogate
 * (which UTF-8 cannot carry: the id on the wire would differ from the configured one).
 */
export function isValidInstanceId(id: unknown): id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_INSTANCE_ID_BYTES) return false;
  return Buffer.byteLength(id, 'utf8') <= MAX_INSTANCE_ID_BYTES && !CONTROL.test(id) && isWellFormed(id);
}

/** No lone surrogate (String.prototype.isWellFormed, Node 20+). */
function isWellFormed(text: string): boolean {
  return /^(?:[^\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])*$/.test(text);
}

/**
 * Validates options once, combinations included; throws {@link InvalidOptionError}, or
 * `UnsupportedError` (`ERR_FAILOVER_UNSUPPORTED`) for an endpoint kind or option that `platform`
 * cannot do (src/platform.ts, docs/PLATFORMS.md).
 */
export function resolveOptions(input: WatcherOptions, platform: NodeJS.Platform | string = process.platform): ResolvedOptions {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidOptionError('options', 'an object', input);
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new InvalidOptionError(key, `one of the known options (${[...KNOWN].join(', ')})`, key);
  }
  if (typeof input.endpoint !== 'string') {
    throw new InvalidOptionError('endpoint', 'a string like tcp://127.0.0.1:5555', input.endpoint);
  }
  const endpoint = parseEndpoint(input.endpoint);
  if (typeof endpoint === 'string') throw new InvalidOptionError('endpoint', endpoint, input.endpoint);
  assertSupported(endpointFeature(endpoint.kind), platform);

  const role = input.role ?? DEFAULTS.role;
  if (role !== 'auto' && role !== 'primary' && role !== 'secondary') {
    throw new InvalidOptionError('role', "'auto', 'primary' or 'secondary'", input.role);
  }
  const instanceId = input.instanceId ?? `${hostname()}-${process.pid}`;
  if (!isValidInstanceId(instanceId)) throw new InvalidOptionError('instanceId', INSTANCE_ID_RULE, input.instanceId);
  const workdir = input.workdir ?? defaultWorkdir(input.endpoint);
  if (typeof workdir !== 'string' || workdir.length === 0) {
    throw new InvalidOptionError('workdir', 'a directory path', input.workdir);
  }
  const heartbeatInterval = duration(input, 'heartbeatInterval', DEFAULTS.heartbeatInterval, 1);
  const heartbeatTimeout = duration(input, 'heartbeatTimeout', DEFAULTS.heartbeatTimeout, 2);
  if (heartbeatTimeout <= heartbeatInterval) {
    throw new InvalidOptionError(
      'heartbeatTimeout',
      `a duration greater than heartbeatInterval (${heartbeatInterval} ms)`,
      heartbeatTimeout,
    );
  }
  const enabled = input.enabled ?? DEFAULTS.enabled;
  if (typeof enabled !== 'boolean') throw new InvalidOptionError('enabled', 'a boolean', input.enabled);
  for (const name of ['onPromote', 'onDemote'] as const) {
    if (input[name] !== undefined && typeof input[name] !== 'function') {
      throw new InvalidOptionError(name, 'a function', input[name]);
    }
  }
  const logger = input.logger;
  if (logger !== undefined) {
    for (const level of ['debug', 'info', 'warn', 'error'] as const) {
      if (typeof logger !== 'object' || logger === null || typeof logger[level] !== 'function') {
        throw new InvalidOptionError('logger', 'an object with debug, info, warn and error methods', logger);
      }
    }
  }
  const retryInterval = duration(input, 'retryInterval', DEFAULTS.retryInterval, 1);
  const maxRetryInterval = duration(input, 'maxRetryInterval', DEFAULTS.maxRetryInterval, 1);
  if (maxRetryInterval < retryInterval) {
    throw new InvalidOptionError(
      'maxRetryInterval',
      `a duration of at least retryInterval (${retryInterval} ms)`,
      maxRetryInterval,
    );
  }
  const shutdownTimeout = duration(input, 'shutdownTimeout', DEFAULTS.shutdownTimeout, 0);
  const notificationBuffer = input.notificationBuffer ?? DEFAULTS.notificationBuffer;
  if (!Number.isSafeInteger(notificationBuffer) || notificationBuffer < 1 || notificationBuffer > 1_000_000) {
    throw new InvalidOptionError('notificationBuffer', 'an integer from 1 to 1000000', input.notificationBuffer);
  }
  const rehearsals = input.rehearsals ?? DEFAULTS.rehearsals;
  if (!Number.isSafeInteger(rehearsals) || rehearsals < 0 || rehearsals > 10_000) {
    throw new InvalidOptionError('rehearsals', 'an integer from 0 to 10000', input.rehearsals);
  }
  const priority = input.priority ?? DEFAULTS.priority;
  if (!Number.isSafeInteger(priority) || priority < 0 || priority > 1_000_000_000) {
    throw new InvalidOptionError('priority', 'an integer from 0 to 1000000000 (lower is preferred)', input.priority);
  }
  const priorityStagger = duration(input, 'priorityStagger', DEFAULTS.priorityStagger, 0);
  const preempt = input.preempt ?? DEFAULTS.preempt;
  if (typeof preempt !== 'boolean') throw new InvalidOptionError('preempt', 'a boolean', input.preempt);
  const preemptDelay = duration(input, 'preemptDelay', DEFAULTS.preemptDelay, 0);
  const fencing = input.fencing ?? DEFAULTS.fencing;
  if (typeof fencing !== 'boolean') throw new InvalidOptionError('fencing', 'a boolean', input.fencing);
  if (fencing) assertSupported('fencing', platform);
  const livenessProbeTimeout = duration(input, 'livenessProbeTimeout', DEFAULTS.livenessProbeTimeout, 1);
  const clock = input.clock;
  if (clock !== undefined && (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function')) {
    throw new InvalidOptionError('clock', 'a Clock (now, wallNow, setTimer, clearTimer)', clock);
  }
  const curve = input.curve === undefined ? undefined : resolveCurve(input.curve);
  const metadata = resolveMetadata(input.metadata);
  return Object.freeze({
    endpoint,
    role,
    instanceId,
    workdir,
    heartbeatInterval,
    heartbeatTimeout,
    enabled,
    onPromote: input.onPromote,
    onDemote: input.onDemote,
    logger,
    retryInterval,
    maxRetryInterval,
    shutdownTimeout,
    notificationBuffer,
    rehearsals,
    clock,
    priority,
    priorityStagger,
    preempt,
    preemptDelay,
    fencing,
    livenessProbeTimeout,
    curve,
    metadata,
  });
}

function duration(input: WatcherOptions, name: keyof WatcherOptions, fallback: number, min: number): number {
  const value = input[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_DURATION) {
    throw new InvalidOptionError(name, `an integer number of milliseconds from ${min} to ${MAX_DURATION}`, input[name]);
  }
  return value;
}

/** The default workdir: per user and per endpoint, so every node of a cluster on this host shares it. */
export function defaultWorkdir(endpoint: string): string {
  return join(defaultWorkdirParent(), endpointSlug(endpoint));
}

export { defaultWorkdirParent, inDefaultWorkdirParent } from './runtime/workdir.js';
