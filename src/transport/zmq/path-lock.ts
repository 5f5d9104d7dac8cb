/**
 * An exclusive, crash-safe lock for filesystem ipc endpoints.
 *
 * Binding `ipc:///path` is not exclusive: libzmq unlinks any existing socket file and binds anew,
 * so two processes could both "win". Before binding such a path, the transport takes this lock:
 * a Linux abstract unix stream socket bound to an address derived from the path. The kernel
 * makes the address exclusive and frees it the instant the holder dies, just like a tcp port.
 *
 * Guarantees:
 * - **One address for every implementation.** The address is the 108 bytes of `sun_path` that
 *   {@link lockAddress} returns: a NUL, `failover-watch-lock-`, 40 hex digits of the path's
 *   SHA-256, and hyphens up to the end of `sun_path` (PROTOCOL.md 2.2 gives it byte for byte, with
 *   an example that a test checks). Because the name fills `sun_path` and holds no other NUL, a
 *   binder that passes the exact length and one that passes the whole `sockaddr_un` (both 110)
 *   bind the same address: Node 20 (libuv 1.46 pads every abstract name with NULs to 108 bytes),
 *   Node 22 and later (libuv 1.48+ binds exactly the bytes given; its current source also
 *   refuses NULs after the first byte), Python, socat and C all agree on it.
 * - **Accepts nothing.** The socket is bound and never listens: another user's `connect()` gets
 *   `ECONNREFUSED` from the kernel, costs this process no descriptor and no event-loop turn, and
 *   releasing the lock closes one descriptor without waiting for anyone. Node offers no public
 *   API that binds a unix socket without listening, so this uses the `pipe_wrap` binding that
 *   `node:net` itself is built on (see {@link pipeBinding}). Where that binding is unavailable (a
 *   future Node, or the permission model), the lock falls back to a listener on the same address
 *   that destroys every connection in the turn it arrives and never waits for one on release.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { getSystemErrorName } from 'node:util';
import { FailoverError } from '../../errors.js';

/** A held lock; `release()` frees it. */
export interface PathLock {
  release(): Promise<void>;
}

/** `sizeof(sun_path)` of Linux's `struct sockaddr_un`: every lock address is this long. */
export const LOCK_ADDRESS_BYTES = 108;

/** The text after the leading NUL byte, before the hash. */
const LOCK_PREFIX = 'failover-watch-lock-';

/** Lock addresses by path, as the latin1 strings Node takes: hashed once, ahead of a takeover. */
const addresses = new Map<string, string>();

/**
 * The lock's abstract address for the filesystem endpoint `path` (everything after `ipc://`):
 * the 108 bytes of `sun_path`, that is one NUL, `failover-watch-lock-`, the first 40 lowercase
 * hex digits of SHA-256(path in UTF-8), and 47 hyphens. PROTOCOL.md 2.2 specifies it.
 */
export function lockAddress(path: string): Buffer {
  return Buffer.from(addressString(path), 'latin1');
}

function addressString(path: string): string {
  let address = addresses.get(path);
  if (address === undefined) {
    address = padded(`\0${LOCK_PREFIX}${createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 40)}`);
    addresses.set(path, address);
  }
  return address;
}

/**
 * `name` (ASCII, starting with NUL) filled with hyphens to {@link LOCK_ADDRESS_BYTES}: a name
 * that fills `sun_path` is the same address whether a binder pads it or passes its length.
 */
function padded(name: string): string {
  return name + '-'.repeat(LOCK_ADDRESS_BYTES - name.length);
}

/** Tries to take the lock for `path`: the lock, `'in-use'`, or throws on other failures. */
export async function tryLockPath(path: string): Promise<PathLock | 'in-use'> {
  if (process.platform !== 'linux') {
    throw new FailoverError(
      'ERR_FAILOVER_UNSUPPORTED',
      `filesystem ipc endpoints need Linux (abstract socket locks); use tcp://127.0.0.1:PORT on ${process.platform}`,
    );
  }
  return await bindExclusive(addressString(path), path);
}

/**
 * Runs the locking code once, off the clock, on an address of its own: the first lock in a
 * process otherwise pays for hashing and for loading the socket binding, which took a takeover
 * one to four milliseconds on a 2-core VM. Never throws.
 */
export async function warmPathLock(path: string): Promise<void> {
  if (process.platform !== 'linux') return;
  addressString(path);
  try {
    const warm = padded(`\0failover-watch-warm-${process.pid}-${Math.random().toString(36).slice(2)}`);
    const lock = await bindExclusive(warm, path);
    if (lock !== 'in-use') await lock.release();
  } catch {
    // The real lock reports its own failures.
  }
}

/** How the lock binds: {@link bindOnly} where Node's binding allows it, else {@link listenAndDrop}. */
export type LockMethod = 'bind-only' | 'listen-and-drop';

/** The method this process uses (tests pin the fallback with {@link useLockMethodForTests}). */
let method: LockMethod | undefined;

/** @internal Pins the method (undefined: detect again). For tests only. */
export function useLockMethodForTests(next: LockMethod | undefined): void {
  method = next;
}

/** The method in use: `'bind-only'` unless Node's pipe binding is unavailable. */
export function lockMethod(): LockMethod {
  if (method === undefined) method = pipeBinding() === undefined ? 'listen-and-drop' : 'bind-only';
  return method;
}

async function bindExclusive(address: string, path: string): Promise<PathLock | 'in-use'> {
  if (lockMethod() === 'bind-only') {
    const binding = pipeBinding();
    if (binding !== undefined) return bindOnly(binding, address, path);
  }
  return await listenAndDrop(address, path);
}

/** The part of Node's internal `pipe_wrap` binding used here (the handle under `net.Server`). */
interface PipeHandle {
  bind(name: string): number;
  close(callback?: () => void): void;
  unref(): void;
}
interface PipeBinding {
  readonly Pipe: new (type: number) => PipeHandle;
  readonly constants: { readonly SERVER: number };
}

let binding: PipeBinding | null | undefined;

/**
 * Node's `pipe_wrap` binding, or undefined where it is unavailable. `process.binding()` is
 * deprecated (DEP0111, a warning only under `--pending-deprecation`) but it is the one way Node
 * offers to bind a unix socket without listening; the warning is muted for this one call, since
 * the library knows and documents the use and falls back when the binding goes away.
 */
function pipeBinding(): PipeBinding | undefined {
  if (binding !== undefined) return binding ?? undefined;
  binding = null;
  const legacy = (process as unknown as { binding?: (name: string) => unknown }).binding;
  if (typeof legacy !== 'function') return undefined;
  const muted = process.noDeprecation;
  process.noDeprecation = true;
  try {
    const found = legacy.call(process, 'pipe_wrap') as Partial<PipeBinding> | undefined;
    const Pipe = found?.Pipe;
    const server = found?.constants?.SERVER;
    if (typeof Pipe === 'function' && typeof server === 'number' && typeof Pipe.prototype.bind === 'function') {
      binding = { Pipe, constants: { SERVER: server } };
    }
  } catch {
    // Removed, or refused by the permission model: fall back.
  } finally {
    process.noDeprecation = muted;
  }
  return binding ?? undefined;
}

/**
 * Binds a unix stream socket to `address` and never listens on it. `bind()` returns 0 or a
 * negative errno. `release()` closes the handle, and with it its one descriptor, in the call
 * (libuv closes the descriptor inside `uv_close`): the address is free before it returns.
 */
function bindOnly(pipes: PipeBinding, address: string, path: string): PathLock | 'in-use' {
  const handle = new pipes.Pipe(pipes.constants.SERVER);
  const status = handle.bind(address);
  if (status !== 0) {
    handle.close();
    const code = getSystemErrorName(status);
    if (code === 'EADDRINUSE') return 'in-use';
    const error = Object.assign(new Error(`bind: ${code}`), { code, errno: status });
    throw new FailoverError('ERR_FAILOVER_TRANSPORT', `cannot lock ${path}: ${error.message}`, { cause: error });
  }
  handle.unref();
  let released: Promise<void> | undefined;
  return {
    release: () => (released ??= new Promise<void>((done) => handle.close(done))),
  };
}

/**
 * The fallback: listens on `address` and destroys every connection in the turn it is accepted,
 * so a peer holds none of this process's descriptors; release closes the listener, which frees
 * the address at once, and does not wait for `close`'s callback (that one waits for connections).
 */
function listenAndDrop(address: string, path: string): Promise<PathLock | 'in-use'> {
  const server: Server = createServer({ pauseOnConnect: true }, (socket) => socket.destroy());
  return new Promise<PathLock | 'in-use'>((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException): void => {
      server.close();
      if (error.code === 'EADDRINUSE') resolve('in-use');
      else reject(new FailoverError('ERR_FAILOVER_TRANSPORT', `cannot lock ${path}: ${error.message}`, { cause: error }));
    };
    server.once('error', failed);
    server.listen({ path: address, exclusive: true, backlog: 1 }, () => {
      server.off('error', failed);
      // An accept that fails (EMFILE while someone floods this process) costs nothing here.
      server.on('error', () => {});
      server.unref();
      resolve({
        release: () => {
          if (server.listening) server.close();
          return Promise.resolve();
        },
      });
    });
  });
}
