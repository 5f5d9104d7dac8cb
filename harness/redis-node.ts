/**
 * A Redis election node in its own OS process, driven by a parent over the IPC channel (see
 * `redis-cluster.ts`). Used by the integration tests and the benchmarks; not part of the library.
 *
 * argv[2] is a JSON {@link RedisNodeConfig}. The child reports every callback and event to the
 * parent as `{ type, at, ...data }` with `at` in ms since the Unix epoch (sub-ms), so several
 * processes on one host share a clock.
 *
 * @module
 */
import { formatStats, run, type Cluster, type ClusterConfig } from '../src/redis.js';
import { hostNow, toHostClock } from './child-runtime.js';

export interface RedisNodeConfig {
  readonly project: string;
  readonly nodeId: string;
  readonly redisUrl: string;
  readonly strategy?: 'race' | 'priority';
  readonly nodePriority?: number;
  readonly tickInterval?: number;
  readonly leaseTTL?: number;
  readonly maxDrift?: number;
  readonly startTimeout?: number;
  /** The first N onStart calls reject (after `startRejectDelay` ms). */
  readonly failStarts?: number;
  readonly startRejectDelay?: number;
  /** onStop takes this long. */
  readonly stopDelay?: number;
  /** Log the cluster's messages to stderr. */
  readonly verbose?: boolean;
}

export type RedisNodeCommand =
  | { readonly cmd: 'close' }
  /** `cluster.stepDown()`; answers `stepDownCalled` right before the call. */
  | { readonly cmd: 'stepDown' }
  | { readonly cmd: 'status' }
  | { readonly cmd: 'liveNodes' }
  | { readonly cmd: 'events' }
  | { readonly cmd: 'stats' }
  /** Block the event loop for `ms` (a hung leader). */
  | { readonly cmd: 'block'; readonly ms: number };

// Every instant reported to the parent is on the run's one host clock (child-runtime.ts).
const wall = hostNow;
const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, at: wall(), ...data });
};

const config = JSON.parse(process.argv[2] ?? '{}') as RedisNodeConfig;
let starts = 0;
const stderrLogger = {
  debug: () => {},
  info: (m: string) => process.stderr.write(`${m}\n`),
  warn: (m: string) => process.stderr.write(`${m}\n`),
  error: (m: string) => process.stderr.write(`${m}\n`),
};
const warnings: string[] = [];
const logger = {
  debug: () => {},
  info: (m: string) => {
    if (config.verbose) stderrLogger.info(m);
  },
  warn: (m: string) => {
    warnings.push(m);
    send('warning', { message: m });
    if (config.verbose) stderrLogger.warn(m);
  },
  error: (m: string) => {
    send('error', { message: m });
    stderrLogger.error(m);
  },
};

const options: ClusterConfig = {
  project: config.project,
  nodeId: config.nodeId,
  redisUrl: config.redisUrl,
  logger,
  ...(config.strategy === undefined ? {} : { strategy: config.strategy }),
  ...(config.nodePriority === undefined ? {} : { nodePriority: config.nodePriority }),
  ...(config.tickInterval === undefined ? {} : { tickInterval: config.tickInterval }),
  ...(config.leaseTTL === undefined ? {} : { leaseTTL: config.leaseTTL }),
  ...(config.maxDrift === undefined ? {} : { maxDrift: config.maxDrift }),
  ...(config.startTimeout === undefined ? {} : { startTimeout: config.startTimeout }),
  onStart: async ({ revision, reason, signal }) => {
    starts++;
    const fail = starts <= (config.failStarts ?? 0);
    send('start', { revision, reason, willFail: fail });
    if (fail) {
      if (config.startRejectDelay) await new Promise((r) => setTimeout(r, config.startRejectDelay));
      throw new Error(`scripted onStart failure ${starts}`);
    }
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    send('abort', { revision });
  },
  onStop: async ({ revision }) => {
    send('stop', { revision });
    if (config.stopDelay) await new Promise((r) => setTimeout(r, config.stopDelay));
    send('stopDone', { revision });
  },
};

let cluster: Cluster | undefined;

async function close(): Promise<void> {
  if (cluster === undefined) return;
  let error: string | undefined;
  try {
    await cluster.close();
  } catch (e) {
    error = String(e);
  }
  send('closed', { status: cluster.status(), error });
}

process.on('message', (raw) => {
  const command = raw as RedisNodeCommand;
  switch (command.cmd) {
    case 'close':
      send('closeCalled');
      void close().then(() => process.disconnect?.());
      return;
    case 'stepDown':
      send('stepDownCalled');
      cluster?.stepDown();
      return;
    case 'status':
      send('status', { status: cluster?.status(), line: cluster?.formatStatus(), info: cluster?.nodeInfo() });
      return;
    case 'liveNodes':
      void cluster?.liveNodes().then(
        (nodes) => send('liveNodes', { nodes }),
        (e: unknown) => send('liveNodes', { error: String(e) }),
      );
      return;
    case 'events':
      void cluster?.events().then(
        (events) => send('events', { events }),
        (e: unknown) => send('events', { error: String(e) }),
      );
      return;
    case 'stats':
      void cluster?.stats().then(
        (stats) => send('stats', { html: formatStats(stats) }),
        (e: unknown) => send('stats', { error: String(e) }),
      );
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
  void close().finally(() => process.exit(0));
});

run(options).then(
  (c) => {
    cluster = c;
    c.on('roleChanged', (ch) => send('roleChanged', { from: ch.from, to: ch.to, epoch: ch.epoch, reason: ch.reason, changedAt: toHostClock(ch.at) }));
    // The initial role settled before the listener was attached: report it too.
    send('ready', { role: c.role, revision: c.revision, pid: process.pid });
  },
  (error: unknown) => {
    send('runFailed', { code: (error as { code?: string }).code, message: String(error) });
    process.exitCode = 3;
    process.disconnect?.();
  },
);
