/**
 * The backend options shared by `status` and `watch`: `--endpoint E` (ZeroMQ, one host),
 * `--redis URL --project P` (a Redis election), `--etcd URL[,URL...] --project P [--etcd-prefix
 * PREFIX]` (an etcd election) or `--postgres URL --project P [--table-prefix PREFIX]` (a
 * PostgreSQL election), checked the way `run` checks them. The names the etcd and PostgreSQL
 * elections would refuse are checked by their observers (InvalidOptionError, a usage error).
 *
 * @module
 */
import { PROJECT_PATTERN } from '../redis/lease-options.js';
import { isFailoverError } from '../errors.js';
import { assertSupported, endpointFeature } from '../platform.js';
import type { Endpoint } from '../transport/zmq/endpoint.js';

export const ENDPOINT_OPTION = {
  endpoint: {
    type: 'endpoint',
    alias: 'e',
    value: 'E',
    description: "ZeroMQ backend: the cluster's endpoint, tcp://HOST:PORT, ipc://@NAME or ipc:///PATH.",
    example: 'tcp://127.0.0.1:5555',
  },
} as const;

export const REDIS_OPTIONS = {
  redis: {
    type: 'string',
    value: 'URL',
    description:
      'Redis backend: the Redis URL (redis:// or rediss://, with user:password@ if needed). Needs --project. Read-only: never runs for leader, never writes a key.',
    example: 'redis://127.0.0.1:6379',
  },
  project: {
    type: 'string',
    value: 'NAME',
    description:
      'Redis, etcd and PostgreSQL backends: the election name (the `project` of the election: the key prefix, or the lock key and rows), as given to `run --project`.',
    example: 'billing-worker',
  },
} as const;

export const ETCD_OPTIONS = {
  etcd: {
    type: 'string',
    value: 'URL',
    description:
      'etcd backend: client URLs of the members, comma-separated (http:// or https://, with user:password@ for etcd auth). Needs --project. Read-only: never campaigns, never writes a key.',
    example: 'http://10.0.0.1:2379,http://10.0.0.2:2379',
  },
  'etcd-prefix': {
    type: 'string',
    value: 'PREFIX',
    description: "etcd backend: the election's key prefix (its `prefix` option); keys live under PREFIX/PROJECT/election/. Default /failover-watch.",
    example: '/failover-watch',
  },
} as const;

export const POSTGRES_OPTIONS = {
  postgres: {
    type: 'string',
    value: 'URL',
    description:
      'PostgreSQL backend: a postgres:// URL. Needs --project. Read-only: a read-only session that never takes the lock, never writes a row.',
    example: 'postgres://viewer@db.internal:5432/app',
  },
  'table-prefix': {
    type: 'string',
    value: 'PREFIX',
    description: "PostgreSQL backend: the election's `tablePrefix` (tables PREFIX_election, PREFIX_nodes, PREFIX_events; NOTIFY channel). Default failover_watch.",
    example: 'failover_watch',
  },
} as const;

/** What the lease backends' options hold once checked. */
interface LeaseBackendFields {
  readonly project: string;
  /** The cluster as messages and JSON name it: server (without password) and project. */
  readonly cluster: string;
}

/** Which backend the options name. */
export type BackendChoice =
  | { readonly kind: 'zmq'; readonly endpoint: Endpoint }
  | ({ readonly kind: 'redis'; readonly url: string } & LeaseBackendFields)
  | ({ readonly kind: 'etcd'; readonly hosts: readonly string[]; readonly prefix: string } & LeaseBackendFields)
  | ({ readonly kind: 'postgres'; readonly url: string; readonly tablePrefix: string | undefined } & LeaseBackendFields);

/** The lease backends' choices. */
export type LeaseBackendChoice = Exclude<BackendChoice, { readonly kind: 'zmq' }>;

/**
 * The backend, or the usage error to report (one line). An endpoint kind that `platform` does not
 * have (`ipc://` off Linux, docs/PLATFORMS.md) is a usage error too: it could never be reached.
 */
export function backendOrUsageError(
  values: {
    readonly endpoint: Endpoint | undefined;
    readonly redis: string | undefined;
    readonly project: string | undefined;
    readonly etcd?: string | undefined;
    readonly 'etcd-prefix'?: string | undefined;
    readonly postgres?: string | undefined;
    readonly 'table-prefix'?: string | undefined;
    readonly 'curve-dir'?: string | undefined;
  },
  platform: NodeJS.Platform | string = process.platform,
): BackendChoice | { readonly error: string } {
  const { endpoint, redis, project, etcd, postgres } = values;
  const given = [endpoint, redis, etcd, postgres].filter((v) => v !== undefined).length;
  if (given !== 1) return { error: 'give exactly one backend: --endpoint E, --redis URL, --etcd URL or --postgres URL' };
  if (values['etcd-prefix'] !== undefined && etcd === undefined) return { error: '--etcd-prefix is for the etcd backend (--etcd URL)' };
  if (values['table-prefix'] !== undefined && postgres === undefined) return { error: '--table-prefix is for the PostgreSQL backend (--postgres URL)' };
  if (endpoint !== undefined) {
    if (project !== undefined) return { error: '--project is for the Redis, etcd and PostgreSQL backends (--redis, --etcd, --postgres URL)' };
    try {
      assertSupported(endpointFeature(endpoint.kind), platform);
    } catch (error) {
      if (!isFailoverError(error, 'ERR_FAILOVER_UNSUPPORTED')) throw error;
      return { error: `--endpoint ${endpoint.address}: ${error.message} (${error.code})` };
    }
    return { kind: 'zmq', endpoint };
  }
  const flag = redis !== undefined ? '--redis' : etcd !== undefined ? '--etcd' : '--postgres';
  if (project === undefined) return { error: `${flag} needs --project NAME` };
  if (values['curve-dir'] !== undefined) return { error: `--curve-dir is for the ZeroMQ backend (use ${flag === '--redis' ? 'rediss://' : flag === '--etcd' ? 'https://' : 'sslmode=require'} instead)` };
  if (etcd !== undefined) {
    const hosts = etcd.split(',').map((h) => h.trim());
    if (hosts.some((h) => !/^https?:\/\/[^/]+\/?$/.test(h))) return { error: `--etcd expects http:// or https:// client URLs, comma-separated, received ${JSON.stringify(etcd)}` };
    const prefix = values['etcd-prefix'] ?? '/failover-watch';
    if (!prefix.startsWith('/') || prefix.endsWith('/') || /\s/.test(prefix)) return { error: `--etcd-prefix expects a key prefix starting with / and not ending with /, received ${JSON.stringify(prefix)}` };
    return { kind: 'etcd', hosts, prefix, project, cluster: `${hosts.map(redact).join(',')} ${prefix}/${project}` };
  }
  if (postgres !== undefined) {
    if (!/^postgres(?:ql)?:\/\//.test(postgres)) return { error: '--postgres must be a postgres:// or postgresql:// URL' };
    return { kind: 'postgres', url: postgres, tablePrefix: values['table-prefix'], project, cluster: `${redact(postgres)} ${project}` };
  }
  const url = redis as string;
  if (!/^rediss?:\/\//.test(url)) return { error: '--redis must be a redis:// or rediss:// URL' };
  if (!PROJECT_PATTERN.test(project)) {
    return { error: `--project expects 1-128 characters from A-Z a-z 0-9 _ . : - (not starting with . : -), received ${JSON.stringify(project)}` };
  }
  return { kind: 'redis', url, project, cluster: `${redact(url)} ${project}` };
}

/** The URL without its password, for messages and JSON. */
export function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);
}
