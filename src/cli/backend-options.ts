/**
 * The backend options shared by `status` and `watch`: `--endpoint E` (ZeroMQ, one host) or
 * `--redis URL --project P` (a Redis election), checked the way `run` checks them.
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
    description: 'Redis backend: the election name (the key prefix), as given to `run --project`.',
    example: 'billing-worker',
  },
} as const;

/** Which backend the options name. */
export type BackendChoice =
  | { readonly kind: 'zmq'; readonly endpoint: Endpoint }
  | { readonly kind: 'redis'; readonly url: string; readonly project: string; readonly cluster: string };

/**
 * The backend, or the usage error to report (one line). An endpoint kind that `platform` does not
 * have (`ipc://` off Linux, docs/PLATFORMS.md) is a usage error too: it could never be reached.
 */
export function backendOrUsageError(
  values: {
    readonly endpoint: Endpoint | undefined;
    readonly redis: string | undefined;
    readonly project: string | undefined;
    readonly 'curve-dir'?: string | undefined;
  },
  platform: NodeJS.Platform | string = process.platform,
): BackendChoice | { readonly error: string } {
  const { endpoint, redis, project } = values;
  if ((endpoint === undefined) === (redis === undefined)) return { error: 'give exactly one backend: --endpoint E or --redis URL' };
  if (endpoint !== undefined) {
    if (project !== undefined) return { error: '--project is for the Redis backend (--redis URL)' };
    try {
      assertSupported(endpointFeature(endpoint.kind), platform);
    } catch (error) {
      if (!isFailoverError(error, 'ERR_FAILOVER_UNSUPPORTED')) throw error;
      return { error: `--endpoint ${endpoint.address}: ${error.message} (${error.code})` };
    }
    return { kind: 'zmq', endpoint };
  }
  const url = redis as string;
  if (project === undefined) return { error: '--redis needs --project NAME' };
  if (!/^rediss?:\/\//.test(url)) return { error: '--redis must be a redis:// or rediss:// URL' };
  if (!PROJECT_PATTERN.test(project)) {
    return { error: `--project expects 1-128 characters from A-Z a-z 0-9 _ . : - (not starting with . : -), received ${JSON.stringify(project)}` };
  }
  if (values['curve-dir'] !== undefined) return { error: '--curve-dir is for the ZeroMQ backend (use rediss:// for Redis)' };
  return { kind: 'redis', url, project, cluster: `${redact(url)} ${project}` };
}

/** The URL without its password, for messages and JSON. */
export function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);
}
