/**
 * A watcher in its own OS process, driven by a parent over the IPC channel. Used by the
 * integration tests, the benchmarks and the chaos test; not part of the library.
 *
 * argv[2] is a JSON {@link NodeConfig}. The child reports every callback and event to the parent
 * as `{ type, at, ...data }` with `at` in ms since the Unix epoch (sub-ms), so several processes
 * on one host share a clock. Commands from the parent: see {@link Command}.
 *
 * @module
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Watcher, type WatcherOptions } from '../src/index.js';
import { hostNow, REHEARSALS_ENV, toHostClock } from './child-runtime.js';

export interface NodeConfig {
  readonly endpoint: string;
  readonly instanceId: string;
  readonly workdir: string;
  readonly role?: 'primary' | 'secondary' | 'auto';
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
  readonly enabled?: boolean;
  /** The first N onPromote calls throw. */
  readonly failPromotes?: number;
  /** onPromote resolves after this many ms. */
  readonly promoteDelay?: number;
  readonly retryInterval?: number;
  readonly priority?: number;
  readonly priorityStagger?: number;
  readonly preempt?: boolean;
  readonly preemptDelay?: number;
  readonly fencing?: boolean;
  readonly livenessProbeTimeout?: number;
  /** The `rehearsals` option; unset, the parent's FW_CHILD_REHEARSALS, else the library's default. */
  readonly rehearsals?: number;
  /** Log the watcher's messages to stderr. */
  readonly verbose?: boolean;
  /** CURVE keys (the `curve` watcher option). */
  readonly curve?: WatcherOptions['curve'];
  /** Report every log line (all levels) to the parent as a `log` event. */
  readonly reportLogs?: boolean;
  /** Hold this many MB of touched memory, like an application with a larger heap (bench). */
  readonly ballastMb?: number;
  /**
   * After a `shutdown` command the process exits as soon as the watcher stopped (default), or,
   * with false, only once an `exit` command came too (bench: keeps the old primary's exit, a few
   * milliseconds of teardown on a 2-core host, out of the takeover being measured).
   */
  readonly exitOnStop?: boolean;
  /** The `metadata` option. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export type Command =
  | { readonly cmd: 'shutdown' }
  /** Exit once the watcher has stopped (see `exitOnStop`). */
  | { readonly cmd: 'exit' }
  | { readonly cmd: 'setEnabled'; readonly value: boolean }
  | { readonly cmd: 'stepDown' }
  | { readonly cmd: 'status' }
  | { readonly cmd: 'liveNodes' }
  /** Report this process's memory use (`memory` event with `rss` and `heapUsed` in bytes). */
  | { readonly cmd: 'memory' }
  /** Report the event loop's longest and p99 delay (ms) since the last report or the start, and start over. */
  | { readonly cmd: 'loopDelay' }
  /** Block the event loop for `ms` (a hung primary). */
  | { readonly cmd: 'block'; readonly ms: number }
  /** Call `setMetadata()`; reports `metadataSet`, or `metadataRefused` with the error's option. */
  | { readonly cmd: 'setMetadata'; readonly metadata: Readonly<Record<string, string>> };

// Every instant reported to the parent is on the run's one host clock (child-runtime.ts).
const wall = hostNow;
const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, at: wall(), ...data });
};

const config = JSON.parse(process.argv[2] ?? '{}') as NodeConfig;
// Written to (filled with 1s), so every page is resident: the process is as large as asked.
const ballast = Array.from({ length: Math.max(0, Math.floor(config.ballastMb ?? 0)) }, () => Buffer.alloc(1 << 20, 1));
let promotes = 0;
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const stderrLogger = {
  debug: () => {},
  info: (m: string) => process.stderr.write(`${m}\n`),
  warn: (m: string) => process.stderr.write(`${m}\n`),
  error: (m: string) => process.stderr.write(`${m}\n`),
};
const rehearsalsEnv = process.env[REHEARSALS_ENV];
const rehearsals = config.rehearsals ?? (rehearsalsEnv === undefined || rehearsalsEnv === '' ? undefined : Number(rehearsalsEnv));
const options: WatcherOptions = {
  endpoint: config.endpoint,
  instanceId: config.instanceId,
  workdir: config.workdir,
  role: config.role ?? 'auto',
  heartbeatInterval: config.heartbeatInterval,
  heartbeatTimeout: config.heartbeatTimeout,
  enabled: config.enabled ?? true,
  retryInterval: config.retryInterval ?? 50,
  maxRetryInterval: Math.max(config.retryInterval ?? 50, 1000),
  ...(config.verbose ? { logger: stderrLogger } : {}),
  ...(config.reportLogs
    ? {
        logger: {
          debug: (m: string) => send('log', { level: 'debug', message: m }),
          info: (m: string) => send('log', { level: 'info', message: m }),
          warn: (m: string) => send('log', { level: 'warn', message: m }),
          error: (m: string) => send('log', { level: 'error', message: m }),
        },
      }
    : {}),
  ...(config.curve !== undefined ? { curve: config.curve } : {}),
  ...(config.priority !== undefined ? { priority: config.priority } : {}),
  ...(config.priorityStagger !== undefined ? { priorityStagger: config.priorityStagger } : {}),
  ...(config.preempt !== undefined ? { preempt: config.preempt } : {}),
  ...(config.preemptDelay !== undefined ? { preemptDelay: config.preemptDelay } : {}),
  ...(config.fencing !== undefined ? { fencing: config.fencing } : {}),
  ...(config.livenessProbeTimeout !== undefined ? { livenessProbeTimeout: config.livenessProbeTimeout } : {}),
  ...(rehearsals !== undefined ? { rehearsals } : {}),
  ...(config.metadata !== undefined ? { metadata: config.metadata } : {}),
  onPromote: async ({ epoch, reason }) => {
    const at = wall();
    promotes++;
    const fail = promotes <= (config.failPromotes ?? 0);
    send('promote', { epoch, reason, promoteAt: at, willFail: fail });
    if (config.promoteDelay) await new Promise((r) => setTimeout(r, config.promoteDelay));
    if (fail) throw new Error(`scripted onPromote failure ${promotes}`);
  },
  onDemote: ({ epoch, reason }) => {
    send('demote', { epoch, reason });
  },
};

const watcher = new Watcher(options);
watcher.on('roleChanged', (c) => send('roleChanged', { from: c.from, to: c.to, epoch: c.epoch, reason: c.reason, changedAt: toHostClock(c.at) }));
watcher.on('primaryLost', (e) => send('primaryLost', { instanceId: e.instanceId, cause: e.cause, willPromote: e.willPromote, reason: e.reason }));
watcher.on('primaryChanged', (e) => send('primaryChanged', { instanceId: e.instanceId, epoch: e.epoch, metadata: e.metadata }));
watcher.on('primaryMetadataChanged', (e) => send('primaryMetadataChanged', { instanceId: e.instanceId, epoch: e.epoch, metadata: e.metadata }));
watcher.on('promotionFailed', (e) => send('promotionFailed', { epoch: e.epoch, error: e.error, retryInMs: e.retryInMs }));

let stopped = false;
let exitRequested = config.exitOnStop !== false;
process.on('message', (raw) => {
  const command = raw as Command;
  switch (command.cmd) {
    case 'shutdown':
      send('shutdownCalled');
      void watcher.shutdown().then(() => {
        send('stopped', { status: watcher.status() });
        stopped = true;
        if (exitRequested) process.disconnect?.();
      });
      return;
    case 'exit':
      exitRequested = true;
      if (stopped) process.disconnect?.();
      return;
    case 'setEnabled':
      watcher.setEnabled(command.value);
      send('enabledSet', { value: command.value });
      return;
    case 'stepDown':
      watcher.stepDown();
      return;
    case 'status':
      send('status', { status: watcher.status() });
      return;
    case 'liveNodes':
      void watcher.liveNodes().then((nodes) => send('liveNodes', { nodes }));
      return;
    case 'memory': {
      const { rss, heapUsed } = process.memoryUsage();
      send('memory', { rss, heapUsed, ballastMb: ballast.length });
      return;
    }
    case 'loopDelay': {
      send('loopDelay', { maxMs: loopDelay.max / 1e6, p99Ms: loopDelay.percentile(99) / 1e6 });
      loopDelay.reset();
      return;
    }
    case 'setMetadata':
      try {
        watcher.setMetadata(command.metadata);
        send('metadataSet', { metadata: watcher.metadata });
      } catch (error) {
        send('metadataRefused', { option: (error as { option?: string }).option, message: String(error) });
      }
      return;
    case 'block': {
      send('blocking', { ms: command.ms });
      const until = performance.now() + command.ms;
      while (performance.now() < until) {
        // Busy on purpose: a hung event loop.
      }
      send('unblocked');
      return;
    }
  }
});
// The parent going away ends this process (never leave orphans behind).
process.on('disconnect', () => {
  loopDelay.disable();
  void watcher.shutdown().finally(() => process.exit());
});

watcher.start().then(
  () => send('ready', { role: watcher.role, epoch: watcher.epoch, pid: process.pid }),
  (error: unknown) => {
    send('startFailed', { code: (error as { code?: string }).code, message: String(error) });
    // Also on stderr, which the parent's timeout errors quote.
    process.stderr.write(`start failed: ${String(error)}\n`);
    process.exitCode = 3;
    process.disconnect?.();
  },
);
