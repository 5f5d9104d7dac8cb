/**
 * `failover-watch status`: one-shot "is a primary alive on this endpoint, and who is it?".
 * Listens passively (with a liveness probe, so a live primary answers at once instead of at its
 * next heartbeat) until the first heartbeat or promotion, or until the timeout. With
 * `--redis URL`, `--etcd URL` or `--postgres URL` (and `--project P`), one read-only read of that
 * election instead (`../lease-observers.ts`), with the same exit codes and the same JSON fields
 * where they apply.
 *
 * @module
 */
import { defineOptions, HELP_OPTION } from '../args.js';
import { backendOrUsageError, ENDPOINT_OPTION, ETCD_OPTIONS, POSTGRES_OPTIONS, REDIS_OPTIONS, type LeaseBackendChoice } from '../backend-options.js';
import { defineCommand, EXIT, USAGE_EXIT, type CommandContext } from '../command.js';
import { CURVE_OPTIONS, curveOrUsageError } from '../curve-options.js';
import { aborted } from '../io.js';
import { observerOrUsageError, SERVER_NAME } from '../lease-observers.js';
import type { LeaseSnapshot } from '../redis-observer.js';
import { initialView, primaryOf, reduce, type ClusterView, type SenderView } from '../view/cluster-view.js';
import { listen, wallNow, type WireListener } from '../wire-listener.js';
import { formatMetadata, type Metadata } from '../../protocol/metadata.js';

export const statusOptions = defineOptions({
  ...ENDPOINT_OPTION,
  ...REDIS_OPTIONS,
  ...ETCD_OPTIONS,
  ...POSTGRES_OPTIONS,
  timeout: {
    type: 'integer',
    alias: 't',
    value: 'MS',
    unit: 'milliseconds',
    min: 1,
    max: 2_147_483_647,
    default: 3000,
    description: "How long to wait for the primary's heartbeat (with --redis, --etcd, --postgres: for the server to answer).",
    example: '500',
  },
  json: { type: 'boolean', description: 'Print one JSON object instead of a sentence.' },
  ...CURVE_OPTIONS,
  ...HELP_OPTION,
});

export const statusCommand = defineCommand({
  name: 'status',
  summary: 'One-shot: is a primary alive (ZeroMQ endpoint, Redis, etcd or PostgreSQL election), and who is it?',
  description:
    'Connects to the endpoint without taking part in the election, waits for the first heartbeat ' +
    '(or promotion) from the primary and prints who it is. A live primary is asked for an ' +
    'immediate heartbeat (a liveness-probe subscription), so the answer usually comes in ' +
    'milliseconds whatever its heartbeat interval. With --redis URL --project P it reads the ' +
    "Redis election's lease instead (read-only: it never runs for leader and writes no key) and " +
    "prints the leader, its revision, the lease's remaining time and the live nodes. With --etcd " +
    'URL --project P it reads the campaign keys of the etcd election (the first in line leads, its ' +
    'create revision is the epoch; read-only: no lease, no key written); with --postgres URL ' +
    '--project P the PostgreSQL election\'s leader row and whether its advisory lock is held (a ' +
    'read-only session that never takes the lock). Results go to stdout, problems to stderr.',
  options: statusOptions,
  examples: [
    'failover-watch status --endpoint tcp://127.0.0.1:5555',
    'failover-watch status -e ipc://@my-app --timeout 500 --json',
    'failover-watch status --endpoint ipc://@my-app && echo "a primary is alive"',
    'failover-watch status --redis redis://10.0.0.5:6379 --project billing --json',
    'failover-watch status --etcd http://10.0.0.1:2379,http://10.0.0.2:2379 --project billing',
    'failover-watch status --postgres postgres://viewer@db:5432/app --project billing --json',
  ],
  exitCodes: [
    { code: EXIT.ok, meaning: 'a primary heartbeat arrived (Redis, etcd, PostgreSQL: a node leads)' },
    { code: EXIT.failure, meaning: 'no primary heartbeat within the timeout, or the socket could not be opened (Redis, etcd, PostgreSQL: nobody leads, or the server did not answer within the timeout)' },
    USAGE_EXIT,
    { code: EXIT.interrupted, meaning: 'interrupted by SIGINT/SIGTERM before an answer' },
  ],

  async run({ values }, context) {
    const { timeout, json } = values;
    const backend = backendOrUsageError(values, context.io.platform);
    if ('error' in backend) {
      context.warn(`${backend.error}; see --help`);
      return EXIT.usage;
    }
    if (backend.kind !== 'zmq') return leaseStatus(backend, timeout, json, context);
    const { endpoint } = backend;
    const keys = await curveOrUsageError(values['curve-dir'], values['curve-name']);
    if ('error' in keys) {
      context.warn(`${keys.error}; see --help`);
      return EXIT.usage;
    }
    const { curve } = keys;
    const style = context.style(json);
    const startedNow = performance.now();
    let view = initialView(endpoint.address, startedNow);

    let answered!: (outcome: 'primary' | 'timeout' | 'interrupted') => void;
    const outcome = new Promise<'primary' | 'timeout' | 'interrupted'>((resolve) => (answered = resolve));
    const interrupted = aborted(context.io.signal);
    void interrupted.promise.then(() => answered('interrupted'));
    const timer = setTimeout(() => answered('timeout'), timeout);

    let listener: WireListener;
    try {
      listener = await listen(
        endpoint,
        (input) => {
          view = reduce(view, input, performance.now());
          if (view.emitted.some((e) => e.event === 'heartbeat' || e.event === 'promoted')) answered('primary');
        },
        { probe: true, curve },
      );
    } catch (error) {
      clearTimeout(timer);
      interrupted.dispose();
      context.warn(error instanceof Error ? error.message : String(error));
      return EXIT.failure;
    }
    const result = await outcome;
    clearTimeout(timer);
    interrupted.dispose();
    await listener.close();

    const waitedMs = Math.round(performance.now() - startedNow);
    const primary = primaryOf(view);
    if (result === 'primary' && primary !== undefined) {
      if (json) {
        context.out(`${JSON.stringify(primaryJson(view, primary, waitedMs))}\n`);
      } else {
        const every =
          primary.heartbeatInterval === undefined ? 'heartbeat interval not announced' : `heartbeat every ${primary.heartbeatInterval} ms`;
        context.out(
          `primary ${style.bold(style.green(primary.instanceId))} (pid ${primary.pid} on ${primary.host}), epoch ${primary.epoch}, seq ${primary.seq}, ${every}${metadataText(primary.metadata)}\n`,
        );
      }
      return EXIT.ok;
    }

    if (result === 'interrupted') {
      context.warn(`interrupted after ${waitedMs} ms without a primary heartbeat on ${endpoint.address}`);
      return EXIT.interrupted;
    }
    const shutdown = view.lastShutdown;
    const why =
      shutdown === undefined
        ? `no primary heartbeat on ${endpoint.address} within ${timeout} ms`
        : `no primary on ${endpoint.address}: ${shutdown.instanceId} (epoch ${shutdown.epoch}) shut down and no successor announced itself within ${timeout} ms`;
    const dropped = view.dropped.total > 0 ? ` (${view.dropped.total} invalid messages dropped)` : '';
    if (json) {
      context.out(
        `${JSON.stringify({
          ok: false,
          backend: 'zmq',
          endpoint: endpoint.address,
          instanceId: null,
          error: why,
          lastShutdown: shutdown === undefined ? null : { instanceId: shutdown.instanceId, epoch: shutdown.epoch },
          dropped: view.dropped.total,
          waitedMs,
          at: wallNow(),
        })}\n`,
      );
    } else {
      context.out(`${style.yellow(why)}${dropped}\n`);
    }
    return EXIT.failure;
  },
});

/** `; metadata port=7001`, or nothing when there is none. */
function metadataText(metadata: Metadata | null | undefined): string {
  return metadata === undefined || metadata === null || Object.keys(metadata).length === 0 ? '' : `; metadata ${formatMetadata(metadata)}`;
}

function primaryJson(view: ClusterView, p: SenderView, waitedMs: number): Record<string, unknown> {
  return {
    ok: true,
    backend: 'zmq',
    endpoint: view.endpoint,
    instanceId: p.instanceId,
    epoch: p.epoch,
    seq: p.seq,
    pid: p.pid,
    host: p.host,
    heartbeatInterval: p.heartbeatInterval ?? null,
    priority: p.priority ?? null,
    members: p.members ?? null,
    /** Its application metadata (`{}` when none). */
    metadata: p.metadata ?? {},
    /** Local receive time of the heartbeat, ms since the Unix epoch. */
    at: p.lastAt,
    dropped: view.dropped.total,
    waitedMs,
  };
}

/** What a free role is called in the sentence of each lease backend. */
const FREE: Readonly<Record<LeaseBackendChoice['kind'], string>> = {
  redis: 'the lease is free',
  etcd: 'no node campaigns',
  postgres: 'the lock is free',
};

/**
 * `status --redis|--etcd|--postgres`: one read of the leader, the last epoch handed out and the
 * live nodes, through the backend's read-only observer (no campaign, no lock, no write). Exit 0
 * when a node leads, 1 when none does or the server did not answer within the timeout.
 */
async function leaseStatus(backend: LeaseBackendChoice, timeout: number, json: boolean, context: CommandContext): Promise<number> {
  const style = context.style(json);
  const startedNow = performance.now();
  const server = SERVER_NAME[backend.kind];
  const observer = await observerOrUsageError(backend, timeout);
  if ('error' in observer) {
    context.warn(`${observer.error}; see --help`);
    return EXIT.usage;
  }
  const interrupted = aborted(context.io.signal);
  let snapshot: LeaseSnapshot | 'interrupted';
  try {
    snapshot = await Promise.race([
      observer.connect().then(() => observer.read()),
      interrupted.promise.then(() => 'interrupted' as const),
    ]);
  } catch (error) {
    const why = `${server} ${backend.cluster.split(' ')[0]} did not answer within ${timeout} ms: ${error instanceof Error ? error.message : String(error)}`;
    if (json) {
      context.out(`${JSON.stringify({ ok: false, backend: backend.kind, endpoint: backend.cluster, project: backend.project, instanceId: null, error: why, waitedMs: Math.round(performance.now() - startedNow), at: wallNow() })}\n`);
    } else {
      context.warn(why);
    }
    return EXIT.failure;
  } finally {
    interrupted.dispose();
    await observer.close();
  }
  const waitedMs = Math.round(performance.now() - startedNow);
  if (snapshot === 'interrupted') {
    context.warn(`interrupted after ${waitedMs} ms without an answer from ${server}`);
    return EXIT.interrupted;
  }
  const { leader, liveNodes } = snapshot;
  if (json) {
    context.out(
      `${JSON.stringify({
        ok: leader !== undefined,
        backend: backend.kind,
        endpoint: backend.cluster,
        project: backend.project,
        instanceId: leader?.nodeId ?? null,
        epoch: leader?.revision ?? null,
        revision: leader?.revision ?? null,
        priority: leader?.priority ?? null,
        leaseTtlMs: leader?.ttlMs ?? null,
        metadata: leader?.metadata ?? null,
        since: leader?.since ?? null,
        lastRevision: snapshot.revisionCounter,
        liveNodes,
        metadataDropped: snapshot.metadataDropped ?? 0,
        ...(leader === undefined ? { error: `no node leads ${backend.project}: ${FREE[backend.kind]}` } : {}),
        /** Server time of the read (etcd: local time of the answer), ms since the Unix epoch. */
        at: snapshot.serverTime,
        waitedMs,
      })}\n`,
    );
    return leader === undefined ? EXIT.failure : EXIT.ok;
  }
  const nodes =
    liveNodes.length === 0
      ? 'no live nodes registered'
      : `live: ${liveNodes.map((n) => `${n.nodeId}${n.priority === null ? '' : ` (priority ${n.priority})`}${n.isLeader ? ' *' : ''}`).join(', ')}`;
  const dropped = snapshot.metadataDropped > 0 ? ` (${snapshot.metadataDropped} invalid metadata dropped)` : '';
  if (leader === undefined) {
    context.out(`${style.yellow(`no leader in ${backend.project}: ${FREE[backend.kind]}`)} (last revision ${snapshot.revisionCounter}); ${nodes}\n`);
    return EXIT.failure;
  }
  const since = leader.since === null ? '' : ` since ${new Date(leader.since).toISOString()}`;
  const left = leader.ttlMs === null ? '' : `, lease ${leader.ttlMs} ms left`;
  context.out(
    `leader ${style.bold(style.green(leader.nodeId))} of ${backend.project}, revision ${leader.revision}${since}${left}${metadataText(leader.metadata)}; ${nodes}${dropped}\n`,
  );
  return EXIT.ok;
}
