/**
 * `failover-watch run [options] -- <command> [args...]`: make any program highly available.
 * The command runs only while this node is primary. Argument handling only; the work is in
 * `../supervisor/`.
 *
 * @module
 */
import { hostname } from 'node:os';
import { defineOptions, HELP_OPTION } from '../args.js';
import { defineCommand, EXIT, USAGE_EXIT } from '../command.js';
import { CURVE_OPTIONS, curveOrUsageError } from '../curve-options.js';
import { METADATA_OPTION, metadataOrUsageError } from '../metadata-options.js';
import { isFailoverError } from '../../errors.js';
import { assertSupported } from '../../platform.js';
import { etcdBackend, postgresBackend, redisBackend, zmqBackend } from '../supervisor/backends.js';
import { leaveBudget, runSupervisor, type OnExit } from '../supervisor/supervisor.js';

export const runOptions = defineOptions({
  endpoint: {
    type: 'endpoint',
    alias: 'e',
    value: 'E',
    description: 'ZeroMQ backend (one host): the cluster endpoint, tcp://HOST:PORT, ipc://@NAME or ipc:///PATH.',
    example: 'ipc://@my-service',
  },
  redis: {
    type: 'string',
    value: 'URL',
    description: 'Redis backend (across hosts): the Redis URL (redis:// or rediss://, with user:password@ if needed). Needs --project.',
    example: 'redis://127.0.0.1:6379',
  },
  etcd: {
    type: 'string',
    value: 'URLS',
    description: 'etcd backend (across hosts): the etcd endpoints, http:// or https://, comma-separated. Needs --project and the etcd3 package.',
    example: 'http://127.0.0.1:2379',
  },
  postgres: {
    type: 'string',
    value: 'URL',
    description: 'PostgreSQL backend (across hosts): the connection URL (postgres:// or postgresql://). Needs --project and the pg package.',
    example: 'postgres://app@db.internal/app',
  },
  project: {
    type: 'string',
    value: 'NAME',
    description: 'Redis, etcd and PostgreSQL backends: the election name.',
    example: 'billing-worker',
  },
  strategy: {
    type: 'string',
    value: 'race|priority',
    default: 'race',
    description: 'Redis backend: race (whoever takes the free lease) or priority (the best --priority leads).',
  },
  'lease-ttl': {
    type: 'integer',
    value: 'MS',
    unit: 'milliseconds',
    min: 100,
    max: 86_400_000,
    description: 'Redis and etcd backends: lease time to live (default 3000).',
  },
  id: { type: 'string', value: 'ID', description: 'This node\'s id (default: hostname-pid; Redis: hostname).', example: 'node-a' },
  priority: {
    type: 'integer',
    value: 'N',
    unit: 'priority',
    min: 0,
    max: 1_000_000_000,
    description: 'Successor preference, lower is preferred (default 1).',
  },
  interval: {
    type: 'integer',
    value: 'MS',
    unit: 'milliseconds',
    min: 1,
    max: 2_147_483_647,
    default: 1000,
    description: 'ZeroMQ backend: heartbeat interval.',
  },
  timeout: {
    type: 'integer',
    value: 'MS',
    unit: 'milliseconds',
    min: 2,
    max: 2_147_483_647,
    default: 5000,
    description: 'ZeroMQ backend: silence after which the primary is lost (crashes and graceful stops are detected in milliseconds anyway).',
  },
  workdir: {
    type: 'string',
    value: 'DIR',
    description:
      "Where the command's unit record is kept, and with ZeroMQ the epoch (default: per user and endpoint, or Redis server and project, under the temp dir). Nodes on one host must share it.",
  },
  'observe-only': {
    type: 'boolean',
    description: 'Never take over: only report the cluster (failover is on by default in run, since a supervisor exists to fail over).',
  },
  fencing: { type: 'boolean', description: 'ZeroMQ backend: kill a hung primary (same host) after a failed liveness probe.' },
  preempt: { type: 'boolean', description: 'ZeroMQ backend: hand over to a connected node of better priority.' },
  'stop-timeout': {
    type: 'integer',
    value: 'MS',
    unit: 'milliseconds',
    min: 0,
    max: 2_147_483_647,
    default: 10_000,
    description: 'How long the command gets between SIGTERM and SIGKILL (Redis backend: at most 900).',
  },
  'on-exit': {
    type: 'string',
    value: 'stepdown|restart|exit',
    default: 'stepdown',
    description: 'When the command exits on its own while primary: hand the role to another node, restart it here, or exit with its code.',
  },
  'on-promote': { type: 'string', value: 'CMD', description: 'Shell command run before the command starts (env: FAILOVER_ROLE, FAILOVER_EPOCH, FAILOVER_INSTANCE_ID, FAILOVER_REASON).' },
  'on-demote': { type: 'string', value: 'CMD', description: 'Shell command run after the command stopped (same environment).' },
  health: {
    type: 'string',
    value: 'HOST:PORT',
    description: 'Serve GET /healthz (200 healthy / 503), /status (JSON) and /metrics (Prometheus; needs prom-client installed) on this address.',
    example: '127.0.0.1:9090',
  },
  json: { type: 'boolean', description: 'One JSON object per line on stdout and nothing else (the command\'s stdout goes to stderr).' },
  ...METADATA_OPTION,
  ...CURVE_OPTIONS,
  ...HELP_OPTION,
});

export const runCommand = defineCommand({
  name: 'run',
  summary: 'Run a command only while this node is primary; hand it over when it stops or crashes.',
  description:
    'Joins the cluster and runs COMMAND only while this node is primary: started after promotion, ' +
    'stopped on demotion or shutdown (SIGTERM, then SIGKILL after --stop-timeout), its output ' +
    'passed through. Failover is enabled (use --observe-only to only watch). SIGTERM or SIGINT ' +
    'hands over gracefully: the command is stopped, then the others are told at once, and run ' +
    'exits 0. Backends: --endpoint (ZeroMQ, one host), or across hosts --redis, --etcd or --postgres ' +
    'with --project.',
  options: runOptions,
  operands: { usage: '-- COMMAND [ARGS...]', description: 'The program to keep running on the primary.', min: 1, max: 10_000, passThrough: true },
  examples: [
    'failover-watch run --endpoint ipc://@web -- node server.js',
    'failover-watch run -e tcp://127.0.0.1:5555 --on-exit restart --health 127.0.0.1:9090 -- ./worker --queue jobs',
    'failover-watch run --redis redis://10.0.0.5:6379 --project billing --strategy priority --priority 1 -- ./billing',
    'failover-watch run --etcd http://10.0.0.5:2379,http://10.0.0.6:2379 --project billing -- ./billing',
    'failover-watch run --postgres postgres://app@db.internal/app --project billing -- ./billing',
    'failover-watch run -e ipc://@web --json --on-promote "logger promoted" -- python3 -m http.server 8080',
    'failover-watch run -e ipc://@web --metadata port=8080 --metadata zone=a -- python3 -m http.server 8080',
  ],
  exitCodes: [
    { code: EXIT.ok, meaning: "stopped by SIGTERM/SIGINT after a graceful handover (with --on-exit exit: the command's own exit code, 1 if a signal killed it)" },
    { code: EXIT.failure, meaning: 'the election could not start (endpoint held by a non-watcher, Redis, etcd or PostgreSQL unreachable, their package not installed; on Windows, run is unsupported)' },
    USAGE_EXIT,
  ],

  async run({ values: v, operands }, context) {
    const usage = (message: string): number => {
      context.warn(`${message}; see --help`);
      return EXIT.usage;
    };
    try {
      // Process groups, POSIX signals and the sh guardian: not on Windows (docs/PLATFORMS.md).
      assertSupported('cli-run', context.io.platform ?? process.platform);
    } catch (error) {
      if (!isFailoverError(error, 'ERR_FAILOVER_UNSUPPORTED')) throw error;
      context.warn(`${error.message} (${error.code})`);
      return EXIT.failure;
    }
    const [command, ...args] = operands as [string, ...string[]];
    const given = (['endpoint', 'redis', 'etcd', 'postgres'] as const).filter((k) => v[k] !== undefined);
    if (given.length !== 1) {
      return usage(`give exactly one backend: --endpoint E, --redis URL, --etcd URLS or --postgres URL${given.length > 1 ? ` (got --${given.join(', --')})` : ''}`);
    }
    const backend = given[0] as 'endpoint' | 'redis' | 'etcd' | 'postgres';
    if (backend !== 'endpoint' && v.project === undefined) return usage(`--${backend} needs --project NAME`);
    if (backend === 'postgres' && v['lease-ttl'] !== undefined) return usage('--lease-ttl is for --redis and --etcd (PostgreSQL holds a lock, not a lease)');
    if (backend === 'postgres' && v.priority !== undefined) return usage('--priority has no effect with --postgres (the lock goes to the first in line)');
    if (backend !== 'redis' && v.strategy !== 'race') return usage('--strategy is for --redis');
    const ttl = v['lease-ttl'];
    if (backend === 'etcd' && ttl !== undefined && (ttl < 2000 || ttl % 1000 !== 0)) {
      return usage(`--lease-ttl with --etcd must be whole seconds, at least 2000 (etcd leases count seconds), not ${ttl}`);
    }
    let etcdHosts: string[] = [];
    if (v.etcd !== undefined) {
      etcdHosts = v.etcd.split(',').map((h) => h.trim());
      const bad = etcdHosts.find((h) => !/^https?:\/\/[^\s/]+/.test(h));
      if (bad !== undefined) return usage(`--etcd must be http:// or https:// URLs separated by commas, not "${bad}"`);
    }
    if (v.postgres !== undefined && !/^postgres(ql)?:\/\//.test(v.postgres)) return usage('--postgres must be a postgres:// or postgresql:// URL');
    if (v.strategy !== 'race' && v.strategy !== 'priority') return usage(`--strategy must be race or priority, not "${v.strategy}"`);
    const onExit = v['on-exit'];
    if (onExit !== 'stepdown' && onExit !== 'restart' && onExit !== 'exit') {
      return usage(`--on-exit must be stepdown, restart or exit, not "${onExit}"`);
    }
    let health: { host: string; port: number } | undefined;
    if (v.health !== undefined) {
      const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v.health);
      const port = Number(m?.[2]);
      if (m === null || port > 65535) return usage(`--health must be HOST:PORT, not "${v.health}"`);
      health = { host: (m[1] as string).replace(/^\[|\]$/g, ''), port };
    }
    if (v.redis !== undefined && !/^rediss?:\/\//.test(v.redis)) return usage(`--redis must be a redis:// or rediss:// URL`);
    if (v.timeout <= v.interval) return usage(`--timeout (${v.timeout} ms) must be greater than --interval (${v.interval} ms)`);
    const parsedMetadata = metadataOrUsageError(v.metadata);
    if ('error' in parsedMetadata) return usage(parsedMetadata.error);
    const { metadata } = parsedMetadata;

    const keys = await curveOrUsageError(v['curve-dir'], v['curve-name']);
    if ('error' in keys) return usage(keys.error);
    const { curve } = keys;
    if (curve !== undefined && backend !== 'endpoint') return usage('--curve-dir is for the ZeroMQ backend (use TLS URLs for the others)');
    const io = context.io;
    const lines = {
      out: (line: string) => io.stdout(`${line}\n`),
      err: (line: string) => io.stderr(`${line}\n`),
      env: io.env,
      signal: io.signal,
    };
    try {
      return await runSupervisor(
        {
          command,
          args,
          stopTimeout: v['stop-timeout'],
          onExit: onExit as OnExit,
          onPromoteHook: v['on-promote'],
          onDemoteHook: v['on-demote'],
          json: v.json,
          health,
        },
        (callbacks) => {
          const common = {
            project: v.project as string,
            instanceId: v.id,
            observeOnly: v['observe-only'],
            workdir: v.workdir,
          };
          switch (backend) {
            case 'endpoint':
              return zmqBackend(
                {
                  endpoint: (v.endpoint as { address: string }).address,
                  role: 'auto',
                  enabled: !v['observe-only'],
                  heartbeatInterval: v.interval,
                  heartbeatTimeout: v.timeout,
                  instanceId: v.id ?? `${hostname()}-${process.pid}`,
                  ...(v.workdir !== undefined ? { workdir: v.workdir } : {}),
                  ...(v.priority !== undefined ? { priority: v.priority } : {}),
                  fencing: v.fencing,
                  preempt: v.preempt,
                  shutdownTimeout: leaveBudget(v['stop-timeout']),
                  ...(curve !== undefined ? { curve } : {}),
                  metadata,
                },
                callbacks,
              );
            case 'redis':
              return redisBackend(
                {
                  ...common,
                  redisUrl: v.redis as string,
                  priority: v.priority,
                  strategy: v.strategy as 'race' | 'priority',
                  leaseTTL: v['lease-ttl'],
                  metadata,
                },
                callbacks,
              );
            case 'etcd':
              return etcdBackend(
                { ...common, hosts: etcdHosts, priority: v.priority, leaseTTL: v['lease-ttl'], demoteTimeout: leaveBudget(v['stop-timeout']), metadata },
                callbacks,
              );
            case 'postgres':
              return postgresBackend(
                { ...common, connectionString: v.postgres as string, demoteTimeout: leaveBudget(v['stop-timeout']), metadata },
                callbacks,
              );
          }
        },
        lines,
      );
    } catch (error) {
      const code = (error as { code?: string }).code;
      context.warn(`${error instanceof Error ? error.message : String(error)}${code ? ` (${code})` : ''}`);
      return code === 'ERR_FAILOVER_INVALID_OPTION' ? EXIT.usage : EXIT.failure;
    }
  },
});
