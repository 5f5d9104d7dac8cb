/**
 * The Redis election over TLS against a real TLS-only `redis-server` (`--port 0 --tls-port`),
 * with a throwaway CA and certificates made by `openssl` in a temp directory: the `redisOptions`
 * form (`tls: { ca }`, and a client certificate when the server demands one), the `rediss://`
 * URL form in node processes that trust the CA through `NODE_EXTRA_CA_CERTS`, and clear failures
 * for a plain client, an untrusted CA and a missing client certificate.
 *
 * Skipped with the reason printed when redis-server, openssl or redis-server's TLS support is
 * missing; with CI set, that fails instead.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisNodes, uniqueProject, type RedisNodeEvent } from '../../harness/redis-cluster.js';
import { RedisServer } from '../../harness/redis-server.js';
import { makeTestCerts, redisTlsSkipReason, type TestCerts } from '../../harness/redis-tls.js';
import { isFailoverError, run, type Cluster, type ClusterConfig, type RoleChange } from '../../src/redis.js';

const skip = redisTlsSkipReason();
const fast = { leaseTTL: 1000, maxDrift: 500, tickInterval: 100 } as const;
const READY = 20_000;

let certs: TestCerts;
let server: RedisServer;
let nodes: RedisNodes | undefined;
const open: Cluster[] = [];

beforeAll(async () => {
  if (skip !== undefined) return;
  certs = makeTestCerts();
  server = await RedisServer.start(10_000, [], {
    certFile: certs.serverCertFile,
    keyFile: certs.serverKeyFile,
    caFile: certs.caFile,
    ca: certs.ca,
    authClients: false,
  });
});
afterAll(async () => {
  await server?.kill();
  certs?.remove();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close().catch(() => undefined)));
  await nodes?.stopAll();
  nodes = undefined;
});

async function start(config: ClusterConfig): Promise<Cluster> {
  const c = await run(config);
  open.push(c);
  return c;
}

function nextChange(cluster: Cluster, pred: (c: RoleChange) => boolean, timeout = 5000): Promise<RoleChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cluster.off('roleChanged', on);
      reject(new Error(`no matching roleChanged within ${timeout} ms (${cluster.formatStatus()})`));
    }, timeout);
    const on = (c: RoleChange) => {
      if (!pred(c)) return;
      clearTimeout(timer);
      cluster.off('roleChanged', on);
      resolve(c);
    };
    cluster.on('roleChanged', on);
  });
}

/** run() that must fail: the error it rejects with. */
async function failure(config: ClusterConfig): Promise<Error> {
  const error: unknown = await run(config).then(
    (c) => {
      open.push(c);
      return new Error(`run() resolved as ${c.role}`);
    },
    (e: unknown) => e,
  );
  return error as Error;
}

describe.skipIf(skip !== undefined)('Redis election over TLS', () => {
  it('redisOptions { host, port, tls: { ca } }: one of two nodes leads; close() hands over through the TLS subscriber', async () => {
    const project = uniqueProject('tls');
    const redisOptions = { host: '127.0.0.1', port: server.port, tls: { ca: certs.ca } };
    const a = await start({ project, nodeId: 'a', redisOptions, ...fast });
    const b = await start({ project, nodeId: 'b', redisOptions, ...fast });
    expect([a.role, b.role]).toEqual(['primary', 'secondary']);
    expect(b.status()).toMatchObject({ primary: { instanceId: 'a', epoch: 1 }, redis: { connection: 'ok', leader: { nodeId: 'a', revision: 1 } } });
    expect((await b.liveNodes()).map((n) => n.instanceId)).toEqual(['a', 'b']);

    const bLeads = nextChange(b, (c) => c.to === 'primary');
    const closing = performance.now();
    await a.close();
    const change = await bLeads;
    // The release notice came over pub/sub on TLS: far sooner than b's next tick would allow.
    expect(change).toMatchObject({ reason: 'handover', epoch: 2 });
    expect(performance.now() - closing).toBeLessThan(500);
  });

  it('redisUrl next to redisOptions is ignored, with a warning naming where it connects instead', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) };
    const c = await start({
      project: uniqueProject('tls-both'),
      redisUrl: 'rediss://app:secret@127.0.0.1:1',
      redisOptions: { host: '127.0.0.1', port: server.port, tls: { ca: certs.ca } },
      logger,
      ...fast,
    });
    expect(c.role).toBe('primary');
    expect(warnings.find((w) => w.includes('is ignored because redisOptions is set'))).toContain(
      `rediss://app:***@127.0.0.1:1 is ignored because redisOptions is set: give host, port (and tls) in redisOptions; connecting to rediss://127.0.0.1:${server.port} (redisOptions)`,
    );
    expect(warnings.join('\n')).not.toContain('secret');
  });

  it('a rediss:// URL in node processes that trust the CA (NODE_EXTRA_CA_CERTS): a leader, and a crash failover', async () => {
    const project = uniqueProject('tls-url');
    nodes = new RedisNodes();
    const env = { NODE_EXTRA_CA_CERTS: certs.caFile };
    const config = { project, redisUrl: server.url, ...fast };
    expect(server.url).toBe(`rediss://127.0.0.1:${server.port}`);
    const all = [nodes.spawn({ ...config, nodeId: 'u1' }, env), nodes.spawn({ ...config, nodeId: 'u2' }, env)];
    await Promise.all(all.map((n) => n.waitFor((e) => e.type === 'ready', READY, 'ready')));
    const isPrimary = (e: RedisNodeEvent) => e.type === 'roleChanged' && e.to === 'primary';
    const leader = await Promise.any(all.map((n) => n.waitFor(isPrimary, 5000, 'a leader').then(() => n)));
    const other = all.find((n) => n !== leader);
    expect(nodes.primaries()).toEqual([leader]);
    leader.kill('SIGKILL');
    const taken = await other?.next(isPrimary, 5000, 'takeover');
    expect(taken?.reason).toBe('expired');
    expect(nodes.primaries()).toEqual([other]);
  });

  it('a plain redis:// client to the TLS port fails run() clearly, naming the reset and suggesting rediss://', async () => {
    const error = await failure({ project: uniqueProject('tls-plain'), redisUrl: `redis://127.0.0.1:${server.port}`, startTimeout: 1000, ...fast });
    expect(isFailoverError(error, 'ERR_FAILOVER_TIMEOUT')).toBe(true);
    expect(error.message).toContain(`could not reach redis://127.0.0.1:${server.port} within startTimeout (1000 ms)`);
    expect(error.message).toMatch(/not connected: .*(ECONNRESET|EPIPE|Connection is closed)/);
    expect(error.message).toContain('if the server requires TLS, use a rediss:// URL or redisOptions.tls');
  });

  it('rediss:// without trusting the CA fails run() naming the certificate problem', async () => {
    const error = await failure({ project: uniqueProject('tls-untrusted'), redisUrl: server.url, startTimeout: 1000, ...fast });
    expect(isFailoverError(error, 'ERR_FAILOVER_TIMEOUT')).toBe(true);
    expect(error.message).toMatch(/not connected: .*certificate/);
    expect(error.message).not.toContain('use a rediss:// URL');
  });

  it('closing while TLS handshakes fail (untrusted CA) never crashes the process with an unhandled socket error', async () => {
    // Each close ends sockets in the middle of a failing handshake; a second error of such a
    // socket (the server's alert) used to have no listener and crashed the process.
    const project = uniqueProject('tls-close');
    const rounds = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 20 + ((i * 37) % 260));
        const e = await failure({ project, nodeId: `n${i}`, redisUrl: server.url, signal: controller.signal, ...fast });
        return isFailoverError(e);
      }),
    );
    expect(rounds.every(Boolean)).toBe(true);
    // Unhandled errors would surface after the closes: give them a moment to, then the test's end.
    await new Promise((r) => setTimeout(r, 300));
  });

  it('a server that demands client certificates: without one run() fails; with the client pair it elects', async () => {
    const mutual = await RedisServer.start(10_000, [], {
      certFile: certs.serverCertFile,
      keyFile: certs.serverKeyFile,
      caFile: certs.caFile,
      ca: certs.ca,
      authClients: true,
      clientCert: certs.clientCert,
      clientKey: certs.clientKey,
    });
    try {
      const project = uniqueProject('mtls');
      const base = { host: '127.0.0.1', port: mutual.port };
      const error = await failure({ project, nodeId: 'anon', redisOptions: { ...base, tls: { ca: certs.ca } }, startTimeout: 1000, ...fast });
      expect(isFailoverError(error, 'ERR_FAILOVER_TIMEOUT')).toBe(true);
      expect(error.message).toContain(`rediss://127.0.0.1:${mutual.port} (redisOptions)`);
      expect(error.message).toContain('not connected');
      const ok = await start({
        project,
        nodeId: 'cert',
        redisOptions: { ...base, tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } },
        ...fast,
      });
      expect(ok.role).toBe('primary');
      await ok.close();
    } finally {
      await mutual.kill();
    }
  });
});
