/**
 * The path lock of `ipc:///PATH` endpoints (PROTOCOL.md 2.2), tried from outside the library:
 * - binders that are not Node (Python's `socket`, socat) bind the address the document names,
 *   before or after the library, and exactly one of the two gets it;
 * - another user of the host (SECURITY.md) connects to the lock of a live primary: the kernel
 *   refuses every connection, the primary's descriptors stay flat, and a connection attempt does
 *   not delay its shutdown().
 *
 * Needs python3 and socat (.ci/run installs them); the two-user tests need root (CI runs as root).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempWorkdir, waitPrimary, waitReady, WatcherProcess } from '../../harness/cluster.js';
import { privateDirOf, removeDir, spawnAs, testUsers, twoUserSkipReason, type TestUsers } from '../../harness/os-users.js';
import type { TransportHandlers } from '../../src/transport/transport.js';
import { parseEndpoint, type Endpoint } from '../../src/transport/zmq/endpoint.js';
import {
  lockAddress,
  lockMethod,
  tryLockPath,
  useLockMethodForTests,
  type PathLock,
} from '../../src/transport/zmq/path-lock.js';
import { ZmqTransport } from '../../src/transport/zmq/zmq-transport.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  useLockMethodForTests(undefined);
});

const handlers: TransportHandlers = { onMessage: () => {}, onPresence: () => {}, onEvent: () => {} };

/** The lock's address as PROTOCOL.md 2.2 words it, computed here without the library's code. */
function documentedAddress(path: string): Buffer {
  const hex = createHash('sha256').update(path, 'utf8').digest('hex').slice(0, 40);
  const name = Buffer.from(`\0failover-watch-lock-${hex}`, 'latin1');
  return Buffer.concat([name, Buffer.alloc(108 - name.length, '-')]);
}

type PathEndpoint = Extract<Endpoint, { kind: 'ipc-path' }>;

/** A fresh filesystem endpoint in a private temporary directory. */
function pathEndpoint(): PathEndpoint {
  const tmp = tempWorkdir('fw-lock-');
  cleanups.push(() => tmp.cleanup());
  const endpoint = parseEndpoint(`ipc://${join(tmp.path, 'cluster.sock')}`);
  if (typeof endpoint === 'string' || endpoint.kind !== 'ipc-path') throw new Error(String(endpoint));
  return endpoint;
}

async function openTransport(endpoint: Endpoint): Promise<ZmqTransport> {
  const transport = new ZmqTransport(endpoint, { prepareBind: false });
  cleanups.push(() => transport.close());
  await transport.open(handlers);
  return transport;
}

/** Resolves with the first line of `child`'s `stream` that matches, or rejects after `ms`. */
function lineOf(child: ChildProcess, stream: 'stdout' | 'stderr', match: RegExp, ms: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${what} within ${ms} ms; ${stream} so far: ${text.slice(-2000)}`));
    }, ms);
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const line = text.split('\n').find((l) => match.test(l));
      if (line !== undefined) {
        cleanup();
        resolve(line);
      }
    };
    const onExit = (code: number | null): void => {
      // Let the last chunk arrive first.
      setImmediate(() => {
        const line = text.split('\n').find((l) => match.test(l));
        cleanup();
        if (line !== undefined) resolve(line);
        else reject(new Error(`${what}: the process exited (${code}) first; ${stream}: ${text.slice(-2000)}`));
      });
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child[stream]?.off('data', onData);
      child.off('exit', onExit);
    };
    child[stream]?.on('data', onData);
    child.on('exit', onExit);
  });
}

/** Kills `child` by its pid (if still running) and waits for it to end. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  await exited;
}

function started(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  cleanups.push(() => stop(child));
  return child;
}

// --- the address, byte for byte ----------------------------------------------------------------

describe('the address PROTOCOL.md names', () => {
  const doc = readFileSync(new URL('../../docs/PROTOCOL.md', import.meta.url), 'utf8');

  it("is the implementation's, for the document's example", () => {
    // The ```text title="path lock"``` block: the example PATH, its SHA-256 and the 108 bytes of
    // sun_path in hex. The same bytes three ways: the document, the library, and this file's own
    // reading of the document's words (documentedAddress, used by the binders below).
    const block = /^```text title="path lock"\n([\s\S]*?)^```$/m.exec(doc)?.[1];
    expect(block, 'PROTOCOL.md has a ```text title="path lock"``` example').toBeDefined();
    const lines = (block as string).split('\n');
    const path = lines.map((l) => /^# PATH: (\S+)$/.exec(l)?.[1]).find((p) => p !== undefined) as string;
    const sha = lines.map((l) => /^# SHA-256\(PATH\): ([0-9a-f]{64})$/.exec(l)?.[1]).find((p) => p !== undefined);
    const bytes = Buffer.from(
      lines
        .map((l) => l.replace(/#.*$/, '').trim())
        .filter((l) => l !== '')
        .join(' ')
        .split(/\s+/)
        .map((token) => {
          if (!/^[0-9a-f]{2}$/.test(token)) throw new Error(`"${token}" is not a hex byte`);
          return parseInt(token, 16);
        }),
    );
    expect(path).toBe('/run/billing/failover.sock');
    expect(sha).toBe(createHash('sha256').update(path).digest('hex'));
    expect(bytes).toHaveLength(108);
    expect(bytes.toString('hex')).toBe(lockAddress(path).toString('hex'));
    expect(bytes.toString('hex')).toBe(documentedAddress(path).toString('hex'));
  });

  it('is what the kernel lists for a held lock', async () => {
    // /proc/net/unix prints an abstract name as @ followed by its bytes (a NUL as @): one line
    // with the whole 108-byte name, nothing shorter, nothing longer.
    const endpoint = pathEndpoint();
    const lock = await tryLockPath(endpoint.path);
    if (lock === 'in-use') throw new Error('a fresh path lock is in use');
    cleanups.push(() => lock.release());
    const name = `@${documentedAddress(endpoint.path).subarray(1).toString('latin1')}`;
    const listed = readFileSync('/proc/net/unix', 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/)[7])
      .filter((p) => p?.startsWith(name.slice(0, 61)));
    expect(listed).toEqual([name]);
  });
});

// --- binders that are not Node -------------------------------------------------------------------

/** A binder of the documented address: `start()` resolves once it holds it, or with its error. */
interface ForeignBinder {
  readonly title: string;
  start(address: Buffer): Promise<'bound' | 'EADDRINUSE'>;
}

const PYTHON = `
import errno, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.bind(bytes.fromhex(sys.argv[1]))
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
    sys.exit(0)
print("bound", flush=True)
sys.stdin.read()
`;

const binders: ForeignBinder[] = [
  {
    title: "Python's socket.bind",
    async start(address) {
      const child = started('python3', ['-c', PYTHON, address.toString('hex')]);
      const line = await lineOf(child, 'stdout', /^(bound|E[A-Z]+)$/, 10_000, 'python bind result');
      if (line !== 'bound' && line !== 'EADDRINUSE') throw new Error(`python: ${line}`);
      return line;
    },
  },
  ...(['1', '0'] as const).map(
    (tight): ForeignBinder => ({
      // socat passes the name's exact length by default, the whole sockaddr_un with
      // unix-tightsocklen=0: the same address, since the name fills sun_path.
      title: `socat ABSTRACT-LISTEN (unix-tightsocklen=${tight})`,
      async start(address) {
        const name = address.subarray(1).toString('latin1');
        const child = started('socat', ['-d', '-d', `ABSTRACT-LISTEN:${name},unix-tightsocklen=${tight}`, '/dev/null']);
        const line = await lineOf(child, 'stderr', /listening on|Address already in use/, 10_000, 'socat bind result');
        return line.includes('listening on') ? 'bound' : 'EADDRINUSE';
      },
    }),
  ),
];

describe.each(binders)('$title and the library', (binder) => {
  it('the library first: the foreign bind fails', async () => {
    const endpoint = pathEndpoint();
    const transport = await openTransport(endpoint);
    expect((await transport.bind()).outcome).toBe('bound');
    expect(await binder.start(documentedAddress(endpoint.path))).toBe('EADDRINUSE');
    // Released, the address is free for the same binder: it failed for no other reason.
    await transport.release(undefined);
    expect(await binder.start(documentedAddress(endpoint.path))).toBe('bound');
  });

  it("the foreign binder first: the library's bind is in-use", async () => {
    const endpoint = pathEndpoint();
    expect(await binder.start(documentedAddress(endpoint.path))).toBe('bound');
    const transport = await openTransport(endpoint);
    expect((await transport.bind()).outcome).toBe('in-use');
  });
});

// --- accepting nothing ---------------------------------------------------------------------------

/** Connects to `address` once: 'connected' (then closes), or the error's code. */
function tryConnect(address: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(address.toString('latin1'));
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}

describe('a held lock', () => {
  it('binds without listening on this Node', () => {
    expect(lockMethod()).toBe('bind-only');
  });

  it('refuses connections', async () => {
    const endpoint = pathEndpoint();
    const lock = (await tryLockPath(endpoint.path)) as PathLock;
    cleanups.push(() => lock.release());
    expect(await tryConnect(lockAddress(endpoint.path))).toBe('ECONNREFUSED');
  });

  it('falls back to a listener that drops each connection', async () => {
    // Where Node's pipe binding is unavailable: same address, every connection closed in the turn
    // it is accepted, and release() does not wait for anyone.
    useLockMethodForTests('listen-and-drop');
    const endpoint = pathEndpoint();
    const lock = (await tryLockPath(endpoint.path)) as PathLock;
    expect(await tryLockPath(endpoint.path)).toBe('in-use');
    const address = lockAddress(endpoint.path).toString('latin1');
    const closed = await Promise.all(
      Array.from(
        { length: 50 },
        () =>
          new Promise<string>((resolve) => {
            const socket = connect(address);
            const timer = setTimeout(() => {
              socket.destroy();
              resolve('still open after 5 s');
            }, 5000);
            socket.on('error', () => {});
            socket.once('close', () => {
              clearTimeout(timer);
              resolve('closed');
            });
          }),
      ),
    );
    expect(closed.filter((c) => c !== 'closed')).toEqual([]);
    const held = connect(address);
    held.on('error', () => {});
    cleanups.push(() => held.destroy());
    const began = performance.now();
    await lock.release();
    expect(performance.now() - began).toBeLessThan(100);
    const again = (await tryLockPath(endpoint.path)) as PathLock;
    expect(again).not.toBe('in-use');
    await again.release();
  });
});

// --- another user of the host ---------------------------------------------------------------------

const skip = twoUserSkipReason();

/**
 * The attacker: opens up to `count` connections to the lock (50 at a time, each bounded by 2 s,
 * the whole by 20 s), keeps every one that succeeds, prints `{connected, refused, failed}` as
 * JSON and holds the connections until its stdin ends or it is killed.
 */
const ATTACKER = `
const net = require('node:net');
const path = Buffer.from(process.argv[1], 'hex').toString('latin1');
const total = Number(process.argv[2]);
const deadline = Date.now() + 20000;
const held = [];
const counts = { connected: 0, refused: 0, failed: 0 };
let started = 0;
const attempt = () => new Promise((resolve) => {
  const socket = net.connect(path);
  const timer = setTimeout(() => { counts.failed++; socket.destroy(); resolve(); }, 2000);
  socket.once('connect', () => { clearTimeout(timer); counts.connected++; held.push(socket); socket.on('error', () => {}); resolve(); });
  socket.once('error', (e) => { clearTimeout(timer); if (e.code === 'ECONNREFUSED') counts.refused++; else counts.failed++; resolve(); });
});
const worker = async () => { while (started < total && Date.now() < deadline) { started++; await attempt(); } };
Promise.all(Array.from({ length: 50 }, worker)).then(() => {
  process.stdout.write(JSON.stringify(counts) + '\\n');
  process.stdin.resume();
  process.stdin.on('end', () => process.exit(0));
});
`;

interface AttackCounts {
  readonly connected: number;
  readonly refused: number;
  readonly failed: number;
}

/** A primary of an `ipc:///PATH` endpoint, run by the victim account. */
async function victimPrimary(users: TestUsers): Promise<{ node: WatcherProcess; endpoint: PathEndpoint }> {
  const home = privateDirOf(users.victim, 'fw-victim-');
  cleanups.push(() => removeDir(home));
  const endpoint = parseEndpoint(`ipc://${join(home, 'run', 'cluster.sock')}`);
  if (typeof endpoint === 'string' || endpoint.kind !== 'ipc-path') throw new Error(String(endpoint));
  const node = new WatcherProcess(
    {
      endpoint: endpoint.address,
      instanceId: 'victim',
      workdir: join(home, 'work'),
      role: 'primary',
      heartbeatInterval: 50,
      heartbeatTimeout: 500,
    },
    { user: users.victim, home },
  );
  cleanups.push(() => node.stop(2000));
  await waitReady(node);
  await waitPrimary(node, 10_000);
  return { node, endpoint };
}

/** Starts the attacker account's connection loop against `address`. */
function attack(users: TestUsers, address: Buffer, count: number): { child: ChildProcess; counts: Promise<AttackCounts> } {
  const home = privateDirOf(users.attacker, 'fw-attacker-');
  cleanups.push(() => removeDir(home));
  const child = spawnAs(users.attacker, process.execPath, ['-e', ATTACKER, address.toString('hex'), String(count)], {
    home,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  cleanups.push(() => stop(child));
  const counts = lineOf(child, 'stdout', /^\{.*\}$/, 30_000, 'attacker counts').then((line) => JSON.parse(line) as AttackCounts);
  return { child, counts };
}

const descriptors = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

describe('another user and the lock of a live primary', () => {
  it.skipIf(skip !== undefined)(`costs the primary no descriptors${skip ? ` (skipped: ${skip})` : ''}`, async () => {
    // Before the lock stopped listening, every connection was accepted and kept: the primary's
    // descriptors grew by one per connection until libzmq aborted it at the limit (figures in
    // SECURITY.md). Bound without listening, the kernel refuses them all.
    const users = testUsers() as TestUsers;
    const { node, endpoint } = await victimPrimary(users);
    const before = descriptors(node.pid);
    let most = before;
    const sampler = setInterval(() => {
      most = Math.max(most, descriptors(node.pid));
    }, 5);
    cleanups.push(() => clearInterval(sampler));
    const { counts } = attack(users, lockAddress(endpoint.path), 2000);
    const result = await counts;
    clearInterval(sampler);
    most = Math.max(most, descriptors(node.pid));
    expect(most - before).toBeLessThanOrEqual(4);
    expect(result).toEqual({ connected: 0, refused: 2000, failed: 0 });
    // Still the primary, and it answers.
    node.send({ cmd: 'status' });
    const status = await node.next((e) => e.type === 'status', 5000, 'status');
    expect((status.status as { role: string }).role).toBe('primary');
    expect(node.alive).toBe(true);
  });

  it.skipIf(skip !== undefined)(`does not delay shutdown()${skip ? ` (skipped: ${skip})` : ''}`, async () => {
    // Before, one accepted connection held by the attacker kept shutdown() from returning until
    // the attacker let go (here it never does). Now there is nothing to hold.
    const users = testUsers() as TestUsers;
    const { node, endpoint } = await victimPrimary(users);
    const { counts } = attack(users, lockAddress(endpoint.path), 1);
    const result = await counts;
    node.send({ cmd: 'shutdown' });
    const called = await node.waitFor((e) => e.type === 'shutdownCalled', 5000, 'shutdownCalled');
    const stopped = await node.waitFor((e) => e.type === 'stopped', 5000, 'stopped');
    expect(stopped.at - called.at).toBeLessThan(2000);
    expect(result).toEqual({ connected: 0, refused: 1, failed: 0 });
    // It exits once stopped; wait for that, so that the cleanup finds nothing to stop.
    expect(await Promise.race([node.exited.then(() => 'exited'), new Promise((r) => setTimeout(r, 5000, 'still running'))])).toBe('exited');
  });
});

// The binders above need these tools; say so plainly rather than failing obscurely.
for (const tool of ['python3', 'socat']) {
  if (spawnSync(tool, ['-V'], { stdio: 'ignore' }).error !== undefined) {
    throw new Error(`${tool} is missing: .ci/run installs it (apt-get install ${tool === 'python3' ? 'python3-minimal' : tool})`);
  }
}
