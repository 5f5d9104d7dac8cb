/**
 * Throwaway TLS material for tests that run `redis-server` with TLS: a CA, a server certificate
 * for 127.0.0.1/localhost and a client certificate, made with the `openssl` command in a private
 * temp directory (EC P-256 keys, valid for two days). Never use them for anything else.
 *
 * {@link redisTlsSkipReason} says why TLS tests cannot run here (no redis-server, no openssl, a
 * redis-server built without TLS); with `CI` set it throws instead, like `redisSkipReason`.
 *
 * @module
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REDIS_SERVER, redisAvailability } from './redis-server.js';

/** The command to run; `OPENSSL` overrides it. */
export const OPENSSL = process.env.OPENSSL ?? 'openssl';

/** Paths and contents of a throwaway CA, server and client certificate. */
export interface TestCerts {
  readonly dir: string;
  readonly caFile: string;
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** PEM of the CA certificate (for `tls: { ca }`). */
  readonly ca: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Removes the directory. */
  remove(): void;
}

const ciIsSet = (): boolean => process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false';

/** Why this host cannot run redis-server with TLS, or undefined when it can. Never throws. */
export function redisTlsUnavailable(): string | undefined {
  const redis = redisAvailability();
  if (!redis.available) return redis.reason;
  const ssl = spawnSync(OPENSSL, ['version'], { encoding: 'utf8', timeout: 10_000 });
  if (ssl.error !== undefined || ssl.status !== 0) {
    return `${OPENSSL} cannot run (${ssl.error?.message ?? `exit ${ssl.status}: ${ssl.stderr}`}); install it (apt-get install -y openssl) or set OPENSSL`;
  }
  // A build without TLS rejects the tls-* directives; one with TLS complains only about the
  // bogus directive after them. Either way it exits at once.
  const probe = spawnSync(REDIS_SERVER, ['--port', '0', '--tls-port', '0', '--failover-watch-tls-probe', 'yes'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  const out = `${probe.stdout ?? ''}${probe.stderr ?? ''}`;
  if (out.includes('failover-watch-tls-probe')) return undefined;
  const line = out.split('\n').find((l) => l.startsWith('>>>')) ?? out.trim().split('\n').slice(-1)[0] ?? '';
  return `${REDIS_SERVER} (${redis.version}) has no TLS support (it rejects --tls-port: ${line.trim()}); install a build with TLS (Debian's redis-server has it)`;
}

/**
 * Decides whether the TLS tests run: a skip reason (printed), or undefined. Throws when they
 * cannot run and `CI` is set.
 */
export function redisTlsSkipReason(): string | undefined {
  const why = redisTlsUnavailable();
  if (why === undefined) return undefined;
  if (ciIsSet()) throw new Error(`CI is set but the Redis TLS tests cannot run: ${why}`);
  const reason = `SKIPPING the Redis TLS tests: ${why}`;
  process.stderr.write(`\n*** ${reason} ***\n\n`);
  return reason;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync(OPENSSL, args, { cwd: dir, encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined || r.status !== 0) {
    throw new Error(`${OPENSSL} ${args.join(' ')} failed: ${r.error?.message ?? `exit ${r.status}: ${r.stderr}`}`);
  }
}

/** Makes a CA, a server certificate (127.0.0.1, localhost) and a client certificate in a new temp directory. */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'fw-tls-'));
  try {
    const key = (name: string) => openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name]);
    key('ca.key');
    openssl(dir, [
      'req', '-x509', '-new', '-key', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=failover-watch throwaway test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    const leaf = (name: string, cn: string, ext: string) => {
      key(`${name}.key`);
      openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
      writeFileSync(join(dir, `${name}.ext`), ext);
      openssl(dir, [
        'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
        '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`,
      ]);
    };
    leaf('server', '127.0.0.1', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
    leaf('client', 'failover-watch test client', 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n');
    const read = (name: string) => readFileSync(join(dir, name), 'utf8');
    return {
      dir,
      caFile: join(dir, 'ca.crt'),
      serverCertFile: join(dir, 'server.crt'),
      serverKeyFile: join(dir, 'server.key'),
      clientCertFile: join(dir, 'client.crt'),
      clientKeyFile: join(dir, 'client.key'),
      ca: read('ca.crt'),
      clientCert: read('client.crt'),
      clientKey: read('client.key'),
      remove: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}
