/**
 * `failover-watch watch`: a live view of the cluster as seen on the wire, until SIGINT/SIGTERM
 * or `--timeout`. The view is the pure reducer in `view/cluster-view.ts`; this file only feeds
 * it and picks a renderer: in-place redraw on a terminal, one line per event otherwise, one JSON
 * object per event with `--json`. With `--redis`, `--etcd` or `--postgres URL --project P` the
 * view is fed reads of that election's leader (on every notice of the election, and every
 * {@link LEASE_POLL_INTERVAL} ms) instead of wire messages.
 *
 * @module
 */
import { defineOptions, HELP_OPTION } from '../args.js';
import { backendOrUsageError, ENDPOINT_OPTION, ETCD_OPTIONS, POSTGRES_OPTIONS, REDIS_OPTIONS } from '../backend-options.js';
import { defineCommand, EXIT, USAGE_EXIT } from '../command.js';
import { CURVE_OPTIONS, curveOrUsageError } from '../curve-options.js';
import { aborted } from '../io.js';
import { observerOrUsageError, SERVER_NAME, type LeaseObserver } from '../lease-observers.js';
import { initialView, reduce, type ViewInput } from '../view/cluster-view.js';
import { eventToJson, eventToText } from '../view/line-renderer.js';
import { renderFrame, TtyScreen } from '../view/tty-renderer.js';
import { listen, wallNow } from '../wire-listener.js';

/** How often the terminal view is redrawn, so ages move while nothing arrives. */
export const REDRAW_INTERVAL = 250;

/**
 * With a lease backend: the leader is read at once on every notice of the election (Redis
 * pub/sub, etcd watch, PostgreSQL NOTIFY), and at least this often (a lease that expires, a
 * PostgreSQL leader that crashed, publish no notice).
 */
export const LEASE_POLL_INTERVAL = 250;

/** With a lease backend: the bound on each call to the server (at start: exit 1 past it). */
export const START_TIMEOUT = 3000;

export const watchOptions = defineOptions({
  ...ENDPOINT_OPTION,
  ...REDIS_OPTIONS,
  ...ETCD_OPTIONS,
  ...POSTGRES_OPTIONS,
  json: {
    type: 'boolean',
    description:
      'One JSON object per line and event: {"event":"heartbeat"|"promoted"|"primaryChanged"|"primaryMetadataChanged"|"shutdown"|"gap"|"endpointStolen"|"dropped", ' +
      '"instanceId","epoch","seq","pid","host","at",...} with "at" the local receive time in ms since the Unix epoch; primaryChanged and primaryMetadataChanged carry the primary\'s "metadata". ' +
      'With --redis, --etcd, --postgres: {"event":"primaryChanged"|"primaryMetadataChanged"|"primaryLost","instanceId","epoch" (the revision),"previous","ttlMs" (null for PostgreSQL),"metadata" (the leader\'s, {} when none; a value that breaks the rules keeps the last good),"at"}.',
  },
  timeout: {
    type: 'integer',
    alias: 't',
    value: 'MS',
    unit: 'milliseconds',
    min: 1,
    max: 2_147_483_647,
    description: 'Stop after this long (exit 0). Without it, runs until SIGINT/SIGTERM.',
    example: '60000',
  },
  ...CURVE_OPTIONS,
  ...HELP_OPTION,
});

export const watchCommand = defineCommand({
  name: 'watch',
  summary: 'Live view of the cluster as seen on the wire: primary, epoch, heartbeat age, gaps, events.',
  description:
    'Connects to the endpoint without taking part in the election and shows the primary (id, ' +
    'epoch, seq, pid@host, age of its last heartbeat, its application metadata), primaryChanged when another node (or a new epoch) is heard as primary, primaryMetadataChanged when it announces other metadata, gaps (a heartbeat later than 1.5x the ' +
    "sender's announced heartbeatInterval, or a skipped seq), shutdown and promoted events, a primary " +
    'whose filesystem socket file was taken by another process (endpointStolen, from its heartbeats), and ' +
    'the count of invalid messages dropped. On a terminal the view is redrawn in place; ' +
    'otherwise one line is printed per event (one JSON object with --json). With --redis URL ' +
    "--project P it follows a Redis election instead (read-only): the lease is read on every notice of the project's " +
    `channel and every ${LEASE_POLL_INTERVAL} ms, and a new holder or revision shows as primaryChanged, a free lease as primaryLost. ` +
    'With --etcd URL --project P the same for an etcd election, read on every change under its prefix (a watch); ' +
    'with --postgres URL --project P for a PostgreSQL election, read on every NOTIFY of its channel (LISTEN) and ' +
    `every ${LEASE_POLL_INTERVAL} ms, since a leader that crashed sends none. Read-only: no campaign, no lock, no write.`,
  options: watchOptions,
  examples: [
    'failover-watch watch --endpoint tcp://127.0.0.1:5555',
    'failover-watch watch -e ipc://@my-app --json | jq -c \'select(.event != "heartbeat")\'',
    'failover-watch watch -e ipc://@my-app --timeout 60000 > cluster.log',
    'failover-watch watch --redis redis://10.0.0.5:6379 --project billing --json',
    'failover-watch watch --etcd http://10.0.0.1:2379 --project billing',
    'failover-watch watch --postgres postgres://viewer@db:5432/app --project billing --json',
  ],
  exitCodes: [
    { code: EXIT.ok, meaning: 'stopped by SIGINT/SIGTERM or at --timeout' },
    { code: EXIT.failure, meaning: `the socket could not be opened (Redis, etcd, PostgreSQL: the server did not answer within ${START_TIMEOUT / 1000} s at start)` },
    USAGE_EXIT,
  ],

  async run({ values }, context) {
    const { json, timeout } = values;
    const backend = backendOrUsageError(values, context.io.platform);
    if ('error' in backend) {
      context.warn(`${backend.error}; see --help`);
      return EXIT.usage;
    }
    const keys = await curveOrUsageError(values['curve-dir'], values['curve-name']);
    if ('error' in keys) {
      context.warn(`${keys.error}; see --help`);
      return EXIT.usage;
    }
    const { curve } = keys;
    let observer: LeaseObserver | undefined;
    if (backend.kind !== 'zmq') {
      const made = await observerOrUsageError(backend, START_TIMEOUT);
      if ('error' in made) {
        context.warn(`${made.error}; see --help`);
        return EXIT.usage;
      }
      observer = made;
    }
    const { io } = context;
    const style = context.style(json);
    const mode = json ? 'json' : io.isTTY ? 'tty' : 'lines';
    let view = initialView(backend.kind === 'zmq' ? backend.endpoint.address : backend.cluster, performance.now());

    const screen = mode === 'tty' ? new TtyScreen(io.stdout, io.columns) : undefined;
    const redraw = (final = false): void => screen?.draw(renderFrame(view, performance.now(), style, final));
    if (mode === 'lines') context.warn(`watching ${view.endpoint}; Ctrl-C to stop`);
    const feed = (input: ViewInput): void => {
      view = reduce(view, input, performance.now());
      if (screen !== undefined) {
        // Heartbeats show at the next tick; anything else at once.
        if (input.type === 'connection' || view.emitted.some((e) => e.event !== 'heartbeat')) redraw();
        return;
      }
      for (const event of view.emitted) {
        context.out(`${json ? eventToJson(event) : eventToText(event, style)}\n`);
      }
    };

    let listener: { close(): Promise<void> };
    try {
      listener =
        backend.kind === 'zmq'
          ? await listen(backend.endpoint, feed, { probe: true, curve })
          : await followLease(observer as LeaseObserver, SERVER_NAME[backend.kind], feed, (line) => context.warn(line));
    } catch (error) {
      context.warn(error instanceof Error ? error.message : String(error));
      return EXIT.failure;
    }

    redraw();
    const ticker = screen === undefined ? undefined : setInterval(() => redraw(), REDRAW_INTERVAL);
    const stop = aborted(io.signal);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<void>((resolve) => {
      if (timeout !== undefined) timer = setTimeout(resolve, timeout);
    });
    await Promise.race([stop.promise, timedOut]);
    stop.dispose();
    clearTimeout(timer);
    clearInterval(ticker);
    await listener.close();
    redraw(true);
    // The last JSON line: the socket is closed and nothing more will be printed (exit follows at once).
    if (mode === 'json') context.out(`${JSON.stringify({ event: 'stopped', at: wallNow() })}\n`);
    return EXIT.ok;
  },
});

/**
 * Feeds `lease` inputs from a lease backend's observer: a read at start, on every notice of the
 * election (Redis pub/sub, an etcd watch on the prefix, PostgreSQL LISTEN) and every
 * {@link LEASE_POLL_INTERVAL} ms, one read at a time (a notice during a read asks for one more).
 * Rejects when the server does not answer at start; closes the observer then.
 */
async function followLease(
  observer: LeaseObserver,
  server: string,
  feed: (input: ViewInput) => void,
  warn: (line: string) => void,
): Promise<{ close(): Promise<void> }> {
  let closed = false;
  let reading = false;
  let again = false;
  let up = true;
  const read = async (): Promise<void> => {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      do {
        again = false;
        try {
          const snapshot = await observer.read();
          if (closed) return;
          if (!up) feed({ type: 'connection', state: 'connected', at: wallNow() });
          up = true;
          feed({ type: 'lease', leader: snapshot.leader, at: wallNow() });
        } catch (error) {
          if (closed) return;
          if (up) {
            warn(`${server} read failed: ${error instanceof Error ? error.message : String(error)}`);
            feed({ type: 'connection', state: 'disconnected', at: wallNow() });
          }
          up = false;
        }
      } while (again && !closed);
    } finally {
      reading = false;
    }
  };
  try {
    await observer.connect();
    await observer.subscribe(() => void read());
    await observer.read();
  } catch (error) {
    await observer.close();
    throw error;
  }
  feed({ type: 'connection', state: 'connected', at: wallNow() });
  await read();
  const poller = setInterval(() => void read(), LEASE_POLL_INTERVAL);
  return {
    async close() {
      closed = true;
      clearInterval(poller);
      await observer.close();
    },
  };
}
