/**
 * Options of the Redis lease election: frozen defaults and the one validation pass, combinations
 * included. Pure: the default nodeId (the hostname) is passed in by the caller.
 *
 * @module
 */
import { resolveMetadata, type Metadata } from '../metadata-option.js';
import { InvalidOptionError } from '../errors.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/logger.js';
import type { LeaseRoleChangeReason, LeaseStrategy } from '../core/lease-machine.js';
import type { ElectionDemoteContext, ElectionPromoteContext } from '../election/contract.js';

/** Handed to `onStart`. */
export interface StartContext {
  /** This term's revision: a fencing token that grows at every new term. Hand it to storage that can reject older terms. */
  readonly revision: number;
  /** Aborts as soon as leadership is lost (lease lost, maxDrift, preemption, `stepDown()`, `close()`). */
  readonly signal: AbortSignal;
  readonly nodeId: string;
  /** How the lease was found: `vacant`, `handover`, `expired` or `reacquired`. */
  readonly reason: LeaseRoleChangeReason;
}

/** Handed to `onStop` (go-failover's name for `onDemote`). */
export interface StopContext {
  /** The revision of the term that ended. */
  readonly revision: number;
  /** Why it ended (the contract's demote reason: `shutdown`, `stepdown`, `lease-lost`, ...). */
  readonly reason: LeaseRoleChangeReason;
}

/** The raw options this module validates (the public type with full TSDoc is `ClusterConfig` in `src/redis/cluster.ts`). */
export interface LeaseOptionsInput {
  readonly project?: unknown;
  readonly nodeId?: unknown;
  readonly instanceId?: unknown;
  readonly nodePriority?: unknown;
  readonly priority?: unknown;
  readonly onPromote?: unknown;
  readonly onDemote?: unknown;
  readonly enabled?: unknown;
  readonly strategy?: unknown;
  readonly redisUrl?: unknown;
  readonly redisOptions?: unknown;
  readonly tickInterval?: unknown;
  readonly leaseTTL?: unknown;
  readonly maxDrift?: unknown;
  readonly onStart?: unknown;
  readonly onStop?: unknown;
  readonly logger?: unknown;
  readonly startTimeout?: unknown;
  readonly eventHistory?: unknown;
  readonly notificationBuffer?: unknown;
  readonly signal?: unknown;
  readonly clock?: unknown;
  readonly metadata?: unknown;
}

/** Defaults of the Redis election. `tickInterval` is further capped at `maxDrift / 3`. */
export const LEASE_DEFAULTS = Object.freeze({
  nodePriority: 1,
  strategy: 'race' as LeaseStrategy,
  redisUrl: 'redis://127.0.0.1:6379',
  tickInterval: 500,
  leaseTTL: 3000,
  minLeaseTTL: 100,
  /** onStop is abandoned after this long; also bounds a voluntary handover. */
  stopTimeout: 1000,
  startTimeout: 10_000,
  eventHistory: 100,
  notificationBuffer: 64,
});

/** Options after validation and defaults. */
export interface ResolvedLeaseOptions {
  readonly project: string;
  readonly nodeId: string;
  readonly nodePriority: number;
  readonly strategy: LeaseStrategy;
  readonly redisUrl: string | undefined;
  readonly redisOptions: object | undefined;
  readonly tickInterval: number;
  readonly leaseTTL: number;
  readonly maxDrift: number;
  /** The contract's callback; `onStart` is mapped onto it. */
  readonly onPromote: ((context: ElectionPromoteContext) => unknown) | undefined;
  /** The contract's callback; `onStop` is mapped onto it. */
  readonly onDemote: ((context: ElectionDemoteContext) => unknown) | undefined;
  /** Whether the node may lead at start (`setEnabled` changes it). */
  readonly enabled: boolean;
  readonly logger: Logger | undefined;
  readonly startTimeout: number;
  readonly eventHistory: number;
  readonly notificationBuffer: number;
  readonly signal: AbortSignal | undefined;
  readonly clock: Clock | undefined;
  /** The application metadata at start (`{}` when none); `setMetadata()` replaces it. */
  readonly metadata: Metadata;
}

export const PROJECT_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/;
const NODE_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;
const MAX_DURATION = 2 ** 31 - 1;

const KNOWN = new Set([
  'project',
  'nodeId',
  'instanceId',
  'nodePriority',
  'priority',
  'onPromote',
  'onDemote',
  'enabled',
  'strategy',
  'redisUrl',
  'redisOptions',
  'tickInterval',
  'leaseTTL',
  'maxDrift',
  'onStart',
  'onStop',
  'logger',
  'startTimeout',
  'eventHistory',
  'notificationBuffer',
  'signal',
  'clock',
  'metadata',
]);

function duration(input: LeaseOptionsInput, name: keyof LeaseOptionsInput, min: number): number | undefined {
  const v = input[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > MAX_DURATION) {
    throw new InvalidOptionError(name, `a number of milliseconds from ${min} to ${MAX_DURATION}`, v);
  }
  return v;
}

function count(input: LeaseOptionsInput, name: keyof LeaseOptionsInput, min: number, max: number, fallback: number): number {
  const v = input[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(name, `an integer from ${min} to ${max}`, v);
  }
  return v;
}

/** Validates once, combinations included; throws {@link InvalidOptionError}. */
export function resolveLeaseOptions(input: LeaseOptionsInput, defaultNodeId: string): ResolvedLeaseOptions {
  if (typeof input !== 'object' || input === null) throw new InvalidOptionError('config', 'an object', input);
  for (const key of Object.keys(input)) {
    if (!KNOWN.has(key)) throw new InvalidOptionError(key, `one of the known options (${[...KNOWN].join(', ')})`, key);
  }
  const project = input.project;
  if (typeof project !== 'string' || !PROJECT_PATTERN.test(project)) {
    throw new InvalidOptionError(
      'project',
      'a key prefix of 1-128 characters from A-Z a-z 0-9 _ . : - (not starting with . : -)',
      project,
    );
  }
  if (input.nodeId !== undefined && input.instanceId !== undefined) {
    throw new InvalidOptionError('instanceId', 'either instanceId or its go-failover alias nodeId, not both', input.instanceId);
  }
  const nodeId = input.instanceId ?? input.nodeId ?? defaultNodeId;
  if (typeof nodeId !== 'string' || !NODE_ID_PATTERN.test(nodeId)) {
    throw new InvalidOptionError('nodeId', 'a string of 1-256 printable characters without spaces', input.nodeId ?? nodeId);
  }
  if (input.nodePriority !== undefined && input.priority !== undefined) {
    throw new InvalidOptionError('priority', 'either priority or its go-failover alias nodePriority, not both', input.priority);
  }
  const nodePriority = input.priority ?? input.nodePriority ?? LEASE_DEFAULTS.nodePriority;
  if (typeof nodePriority !== 'number' || !Number.isSafeInteger(nodePriority)) {
    throw new InvalidOptionError(input.priority !== undefined ? 'priority' : 'nodePriority', 'an integer (lower = higher priority)', nodePriority);
  }
  const strategy = input.strategy ?? LEASE_DEFAULTS.strategy;
  if (strategy !== 'race' && strategy !== 'priority') {
    throw new InvalidOptionError('strategy', "'race' or 'priority'", strategy);
  }
  let redisUrl: string | undefined;
  if (input.redisUrl !== undefined) {
    if (typeof input.redisUrl !== 'string' || !/^rediss?:\/\//.test(input.redisUrl)) {
      throw new InvalidOptionError('redisUrl', 'a redis:// or rediss:// URL', input.redisUrl);
    }
    redisUrl = input.redisUrl;
  }
  let redisOptions: object | undefined;
  if (input.redisOptions !== undefined) {
    if (typeof input.redisOptions !== 'object' || input.redisOptions === null || Array.isArray(input.redisOptions)) {
      throw new InvalidOptionError('redisOptions', 'an ioredis options object', input.redisOptions);
    }
    redisOptions = input.redisOptions;
  }
  if (redisUrl === undefined && redisOptions === undefined) redisUrl = LEASE_DEFAULTS.redisUrl;

  const leaseTTL = duration(input, 'leaseTTL', LEASE_DEFAULTS.minLeaseTTL) ?? LEASE_DEFAULTS.leaseTTL;
  const maxDrift = duration(input, 'maxDrift', 1) ?? leaseTTL / 2;
  if (maxDrift >= leaseTTL) {
    throw new InvalidOptionError('maxDrift', `less than leaseTTL (${leaseTTL} ms), so a leader steps down before its lease can expire`, maxDrift);
  }
  // Every tick (jittered up to +20%) must come well before maxDrift runs out.
  const maxTick = maxDrift / 1.2;
  const tickInterval = duration(input, 'tickInterval', 1) ?? Math.max(1, Math.min(LEASE_DEFAULTS.tickInterval, Math.floor(maxDrift / 3)));
  if (tickInterval >= maxTick) {
    throw new InvalidOptionError(
      'tickInterval',
      `less than maxDrift / 1.2 (${Math.floor(maxTick * 100) / 100} ms), so a jittered tick refreshes the lease before maxDrift`,
      tickInterval,
    );
  }
  for (const name of ['onStart', 'onStop', 'onPromote', 'onDemote'] as const) {
    if (input[name] !== undefined && typeof input[name] !== 'function') throw new InvalidOptionError(name, 'a function', input[name]);
  }
  if (input.onStart !== undefined && input.onPromote !== undefined) {
    throw new InvalidOptionError('onPromote', 'either onPromote or its go-failover alias onStart, not both', 'both');
  }
  if (input.onStop !== undefined && input.onDemote !== undefined) {
    throw new InvalidOptionError('onDemote', 'either onDemote or its go-failover alias onStop, not both', 'both');
  }
  const enabled = input.enabled ?? true;
  if (typeof enabled !== 'boolean') throw new InvalidOptionError('enabled', 'a boolean', enabled);
  // go-failover's names, mapped onto the contract's callbacks (one implementation: the driver
  // calls onPromote/onDemote only).
  const onStart = input.onStart as ((context: StartContext) => unknown) | undefined;
  const onStop = input.onStop as ((context: StopContext) => unknown) | undefined;
  const onPromote =
    (input.onPromote as ((context: ElectionPromoteContext) => unknown) | undefined) ??
    (onStart === undefined
      ? undefined
      : (ctx: ElectionPromoteContext) =>
          onStart({ revision: ctx.epoch, signal: ctx.signal, nodeId: nodeId as string, reason: ctx.reason as LeaseRoleChangeReason }));
  const onDemote =
    (input.onDemote as ((context: ElectionDemoteContext) => unknown) | undefined) ??
    (onStop === undefined ? undefined : (ctx: ElectionDemoteContext) => onStop({ revision: ctx.epoch, reason: ctx.reason as LeaseRoleChangeReason }));
  const logger = input.logger;
  if (logger !== undefined) {
    const l = logger as Record<string, unknown>;
    if (typeof logger !== 'object' || logger === null || ['debug', 'info', 'warn', 'error'].some((m) => typeof l[m] !== 'function')) {
      throw new InvalidOptionError('logger', 'an object with debug, info, warn and error methods', logger);
    }
  }
  const startTimeout = duration(input, 'startTimeout', 1) ?? LEASE_DEFAULTS.startTimeout;
  const eventHistory = count(input, 'eventHistory', 1, 100_000, LEASE_DEFAULTS.eventHistory);
  const notificationBuffer = count(input, 'notificationBuffer', 1, 1_000_000, LEASE_DEFAULTS.notificationBuffer);
  const signal = input.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidOptionError('signal', 'an AbortSignal', signal);
  const clock = input.clock;
  if (clock !== undefined && (typeof clock !== 'object' || clock === null || typeof (clock as Clock).now !== 'function')) {
    throw new InvalidOptionError('clock', 'a Clock (now, wallNow, setTimer, clearTimer)', clock);
  }
  const metadata = resolveMetadata(input.metadata);
  return Object.freeze({
    project,
    nodeId,
    nodePriority,
    strategy,
    redisUrl,
    redisOptions,
    tickInterval,
    leaseTTL,
    maxDrift,
    onPromote,
    onDemote,
    enabled,
    logger: logger as Logger | undefined,
    startTimeout,
    eventHistory,
    notificationBuffer,
    signal: signal as AbortSignal | undefined,
    clock: clock as Clock | undefined,
    metadata,
  });
}
