/**
 * The read-only observers of the lease backends behind one shape, for `status` and `watch`:
 * `redis-observer.ts`, `etcd-observer.ts` and `postgres-observer.ts`, each loaded (with its
 * client package) only when its backend is asked for.
 *
 * @module
 */
import { InvalidOptionError } from '../errors.js';
import type { LeaseBackendChoice } from './backend-options.js';
import type { LeaseSnapshot } from './redis-observer.js';

/** What `status` and `watch` need of an observer. None of them campaigns or writes. */
export interface LeaseObserver {
  /** Connects (or makes a first bounded call); rejects when the server does not answer. */
  connect(): Promise<void>;
  /** One read of the leader and the live nodes. */
  read(): Promise<LeaseSnapshot>;
  /** Calls `onChange` on every notice of the election (pub/sub, watch, LISTEN); resolves once listening. */
  subscribe(onChange: () => void): Promise<void>;
  /** Closes every connection; never rejects. */
  close(): Promise<void>;
}

/** The backend's name in messages. */
export const SERVER_NAME: Readonly<Record<LeaseBackendChoice['kind'], string>> = { redis: 'Redis', etcd: 'etcd', postgres: 'PostgreSQL' };

/**
 * The observer of `backend`, each call bounded by `timeout` ms. Throws `InvalidOptionError` for
 * names the backend's election would refuse (a usage error).
 */
export async function createObserver(backend: LeaseBackendChoice, timeout: number): Promise<LeaseObserver> {
  switch (backend.kind) {
    case 'redis': {
      const { RedisObserver } = await import('./redis-observer.js');
      return new RedisObserver({ url: backend.url, project: backend.project, timeout });
    }
    case 'etcd': {
      const { EtcdObserver } = await import('./etcd-observer.js');
      return new EtcdObserver({ hosts: backend.hosts, prefix: backend.prefix, project: backend.project, timeout });
    }
    case 'postgres': {
      const { PostgresObserver } = await import('./postgres-observer.js');
      return new PostgresObserver({ url: backend.url, project: backend.project, timeout, ...(backend.tablePrefix === undefined ? {} : { tablePrefix: backend.tablePrefix }) });
    }
  }
}

/** Which flag an election option came from. */
const FLAG: Readonly<Record<string, string>> = { project: '--project', connectionString: '--postgres', tablePrefix: '--table-prefix', prefix: '--etcd-prefix', hosts: '--etcd' };

/**
 * {@link createObserver}, with a refused name turned into the one-line usage error to print
 * (exit 2); other errors are thrown.
 */
export async function observerOrUsageError(backend: LeaseBackendChoice, timeout: number): Promise<LeaseObserver | { readonly error: string }> {
  try {
    return await createObserver(backend, timeout);
  } catch (error) {
    if (!(error instanceof InvalidOptionError)) throw error;
    return { error: `${FLAG[error.option] ?? error.option} expects ${error.expected}, received ${JSON.stringify(error.received)}` };
  }
}
