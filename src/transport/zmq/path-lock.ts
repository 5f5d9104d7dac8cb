/**
 * An exclusive, crash-safe lock for filesystem ipc endpoints.
 *
 * Binding `ipc:///path` is not exclusive: libzmq unlinks any existing socket file and binds anew,
 * so two processes could both "win". Before binding such a path, the transport takes this lock:
 * a listening Linux abstract unix socket whose name is derived from the path. The kernel makes
 * the name exclusive and frees it the instant the holder dies, just like a tcp port.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { FailoverError } from '../../errors.js';

/** A held lock; `release()` frees it. */
export interface PathLock {
  release(): Promise<void>;
}

/** Lock names by path: hashed once, ahead of a takeover (see {@link warmPathLock}). */
const names = new Map<string, string>();

function lockName(path: string): string {
  let name = names.get(path);
  if (name === undefined) {
    name = `\0failover-watch-lock-${createHash('sha256').update(path).digest('hex').slice(0, 40)}`;
    names.set(path, name);
  }
  return name;
}

/** Tries to take the lock for `path`: the lock, `'in-use'`, or throws on other failures. */
export async function tryLockPath(path: string): Promise<PathLock | 'in-use'> {
  if (process.platform !== 'linux') {
    throw new FailoverError(
      'ERR_FAILOVER_UNSUPPORTED',
      `filesystem ipc endpoints need Linux (abstract socket locks); use tcp://127.0.0.1:PORT on ${process.platform}`,
    );
  }
  return await listenExclusive(lockName(path), path);
}

/**
 * Runs the locking code once, off the clock, on a name of its own: the first lock in a process
 * otherwise pays for hashing and for compiling Node's server code, which took a takeover one to
 * four milliseconds on a 2-core VM. Never throws.
 */
export async function warmPathLock(path: string): Promise<void> {
  if (process.platform !== 'linux') return;
  lockName(path);
  try {
    const lock = await listenExclusive(`\0failover-watch-warm-${process.pid}-${Math.random().toString(36).slice(2)}`, path);
    if (lock !== 'in-use') await lock.release();
  } catch {
    // The real lock reports its own failures.
  }
}

function listenExclusive(name: string, path: string): Promise<PathLock | 'in-use'> {
  const server: Server = createServer();
  return new Promise<PathLock | 'in-use'>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      server.close();
      if (error.code === 'EADDRINUSE') resolve('in-use');
      else reject(new FailoverError('ERR_FAILOVER_TRANSPORT', `cannot lock ${path}: ${error.message}`, { cause: error }));
    });
    server.listen({ path: name, exclusive: true }, () => {
      server.unref();
      resolve({
        release: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}
