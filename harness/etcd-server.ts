/**
 * Real etcd members for tests and benchmarks: each on free loopback ports, its data dir in a temp
 * dir, killed, paused and resumed by pid. `startEtcd(n)` starts an n-member cluster and resolves
 * once every member said it is ready to serve clients. `relay()` puts a TCP relay between one
 * node and a member, to cut or blackhole that link. Never mocks.
 *
 * @module
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { noop } from 'cockatiel';

export interface EtcdMember {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  proc: ChildProcess | undefined;
}

export interface EtcdCluster {
  readonly members: EtcdMember[];
  readonly hosts: string[];
  kill(index: number): Promise<void>;
  restart(index: number): Promise<void>;
  /** SIGSTOP (pause) or SIGCONT (resume) of one member, by pid. */
  signal(index: number, signal: 'SIGSTOP' | 'SIGCONT'): void;
  stop(): Promise<void>;
  /** The index of the member the live members agree leads raft; undefined while none does. */
  raftLeader(): Promise<number | undefined>;
}

/** The etcd binary; `ETCD_BIN` overrides it. */
export const ETCD_BIN = process.env.ETCD_BIN ?? 'etcd';

/** Whether etcd can run here, and if not, why. */
export function etcdAvailability(): { available: true; version: string } | { available: false; reason: string } {
  const r = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined || r.status !== 0) {
    return { available: false, reason: `${ETCD_BIN} cannot run (${r.error?.message ?? `exit ${r.status}`}); apt-get install -y etcd-server, or set ETCD_BIN` };
  }
  return { available: true, version: (r.stdout.split('\n')[0] ?? '').trim() };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function startEtcd(size: number, binary = ETCD_BIN): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'fw-etcd-'));
  const members: EtcdMember[] = [];
  for (let i = 0; i < size; i++) {
    members.push({ name: `m${i}`, clientUrl: `http://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, proc: undefined });
  }
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const launch = (m: EtcdMember, state: 'new' | 'existing'): Promise<void> =>
    new Promise((resolve, reject) => {
      const proc = spawn(
        binary,
        [
          '--name', m.name,
          '--data-dir', join(dir, m.name),
          '--listen-client-urls', m.clientUrl,
          '--advertise-client-urls', m.clientUrl,
          '--listen-peer-urls', m.peerUrl,
          '--initial-advertise-peer-urls', m.peerUrl,
          '--initial-cluster', initialCluster,
          '--initial-cluster-state', state,
          '--initial-cluster-token', 'fw-test',
          '--heartbeat-interval', '50',
          '--election-timeout', '500',
          '--log-level', 'info',
          '--logger', 'zap',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      m.proc = proc;
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`etcd ${m.name} not ready within 15 s: ${seen.slice(-500)}`)), 15_000);
      proc.stderr!.on('data', (chunk: Buffer) => {
        if (seen.length < 200_000) seen += chunk.toString('utf8');
        if (/ready to serve client requests|serving insecure client requests|serving client traffic insecurely/.test(seen)) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`etcd ${m.name} exited with ${code}: ${seen.slice(-500)}`));
      });
    });
  await Promise.all(members.map((m) => launch(m, 'new')));
  const kill = async (i: number): Promise<void> => {
    const proc = members[i]!.proc;
    if (proc === undefined || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGKILL');
    await exited;
    members[i]!.proc = undefined;
  };
  return {
    members,
    hosts: members.map((m) => m.clientUrl),
    kill,
    restart: (i) => launch(members[i]!, 'existing'),
    signal(i, signal) {
      const proc = members[i]!.proc;
      if (proc?.pid !== undefined && proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, signal);
    },
    async raftLeader() {
      const ids = new Map<string, number>();
      const leaders = new Set<string>();
      for (let i = 0; i < members.length; i++) {
        if (members[i]!.proc === undefined) continue;
        const client = new Etcd3({ hosts: [members[i]!.clientUrl], faultHandling: { host: () => noop, global: noop } });
        try {
          const st = await Promise.race([client.maintenance.status(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 500))]);
          ids.set(st.header.member_id, i);
          if (st.leader !== '0') leaders.add(st.leader);
        } catch {
          // a member that does not answer has no say
        } finally {
          client.close();
        }
      }
      if (leaders.size !== 1) return undefined;
      return ids.get([...leaders][0]!);
    },
    async stop() {
      for (let i = 0; i < members.length; i++) await kill(i);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Relay {
  readonly url: string;
  /** Closes the relay and resets every connection through it: the node's process died. */
  cut(): Promise<void>;
  /** Drops everything from now on, connections left open and new ones accepted: a partition. */
  blackhole(): void;
}

/** A TCP relay to an etcd member, for one node: `cut()` and `blackhole()` fail its link. */
export async function relay(target: string): Promise<Relay> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let dropping = false;
  const drop = (s: Socket): void => {
    s.unpipe();
    s.removeAllListeners('data');
    s.on('data', () => undefined);
  };
  const server: Server = createServer((inbound) => {
    sockets.add(inbound);
    inbound.on('close', () => sockets.delete(inbound));
    inbound.on('error', () => undefined);
    if (dropping) {
      drop(inbound);
      return;
    }
    const outbound = createConnection({ host: hostname, port: Number(port) });
    sockets.add(outbound);
    outbound.on('close', () => sockets.delete(outbound));
    outbound.on('error', () => undefined);
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const local = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${local}`,
    cut: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.resetAndDestroy();
        server.close(() => resolve());
      }),
    blackhole() {
      dropping = true;
      for (const s of sockets) drop(s);
    },
  };
}
