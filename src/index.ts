/**
 * failover-watch: keep exactly one process of a group primary, and hand the role over in
 * milliseconds when it stops or crashes. This is the public API; everything not exported here
 * is internal.
 *
 * @module
 */
export { Watcher } from './watcher.js';
export type {
  RoleChange,
  PrimaryChangedEvent,
  PrimaryLostEvent,
  PromotionFailedEvent,
  EpochExhaustedEvent,
  EndpointStolenEvent,
  WatcherEvents,
  WatcherStatus,
  LiveNode,
  WatcherDeps,
} from './watcher.js';
export type { Health } from './health.js';
export { DEFAULTS } from './options.js';
export type { WatcherOptions, PromoteContext, DemoteContext } from './options.js';
export type {
  Role,
  InitialRole,
  PromoteReason,
  DemoteReason,
  RoleChangeReason,
  Phase,
  PrimaryLostReason,
  EndpointTheft,
} from './core/heartbeat-machine.js';
export { FailoverError, InvalidOptionError, UnsupportedError, isFailoverError } from './errors.js';
export { PLATFORM_MATRIX, platformSupport } from './platform.js';
export type { PlatformCell, PlatformColumn, PlatformFeature, PlatformRow } from './platform.js';
export type { FailoverErrorCode } from './errors.js';
export { FakeClock, systemClock } from './runtime/clock.js';
export type { Clock, TimerHandle } from './runtime/clock.js';
export type { Logger } from './runtime/logger.js';
export { PROTOCOL_VERSION, TOPICS } from './protocol/messages.js';
export type { Topic, RejectReason, WireMessage } from './protocol/messages.js';
export { readCurveKeys } from './transport/zmq/curve-key-files.js';
export type { CurveKeyDirectory, CurveKeyFiles, CurveKeyPair } from './transport/zmq/curve-key-files.js';
export type { CurveOptions } from './transport/zmq/curve.js';
