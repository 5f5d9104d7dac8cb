/**
 * The short chaos runs of the lease backends: four real election processes against a private
 * etcd, PostgreSQL or Redis server on a free loopback port, attacked for a few seconds with
 * random SIGKILLs, SIGSTOP/SIGCONTs, graceful shutdowns, step-downs, setEnabled toggles, restarts,
 * and pauses and restarts of the server (chaos/lease-injector.ts); then the recorded history is
 * checked by the pure checker in lease mode (chaos/checker.ts): no split brain, epochs strictly
 * grow, every lost primary replaced within its backend's bound, no process crashed on its own.
 *
 * The long run on demand: `FW_CHAOS_LEASE_SECONDS=600 npx vitest run test/chaos/lease-chaos.test.ts`
 * (seconds of faults per backend; `FW_CHAOS_LEASE_BACKENDS=etcd,postgres` picks backends;
 * every backend's server is paused too; `FW_CHAOS_LEASE_SERVER_FAULTS=1` forces it, and is
 * kept for scripts that set it). The seed is random and printed; CHAOS_SEED replays a run's choices.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkHistory } from '../../chaos/checker.js';
import { runLeaseChaos, type LeaseBackend } from '../../chaos/lease-injector.js';
import { randomSeed } from '../../chaos/prng.js';
import { formatSummary } from '../../chaos/summary.js';
import { etcdAvailability } from '../../harness/etcd-server.js';
import { postgresSkipReason } from '../../harness/postgres-server.js';
import { redisSkipReason } from '../../harness/redis-server.js';

/** Seconds of faults per backend in the suite (a short run) unless FW_CHAOS_LEASE_SECONDS says more. */
const SHORT: Readonly<Record<LeaseBackend, number>> = { etcd: 10, postgres: 8, redis: 6 };
const LONG = Number(process.env.FW_CHAOS_LEASE_SECONDS ?? '');
const ONLY = (process.env.FW_CHAOS_LEASE_BACKENDS ?? '').split(',').filter(Boolean);

function skipReason(backend: LeaseBackend): string | undefined {
  if (ONLY.length > 0 && !ONLY.includes(backend)) return 'not in FW_CHAOS_LEASE_BACKENDS';
  if (backend === 'redis') return redisSkipReason();
  if (backend === 'postgres') return postgresSkipReason();
  const a = etcdAvailability();
  if (a.available) return undefined;
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') throw new Error(`CI is set but etcd cannot run: ${a.reason}`);
  return a.reason;
}

describe.each(['etcd', 'postgres', 'redis'] as const)('lease chaos: %s', (backend) => {
  const skip = skipReason(backend);
  const seconds = Number.isFinite(LONG) && LONG > 0 ? LONG : SHORT[backend];
  it.skipIf(skip !== undefined)(
    `${backend}: no split brain under random faults`,
    async () => {
      const seed = process.env.CHAOS_SEED !== undefined ? Number(process.env.CHAOS_SEED) : randomSeed();
      console.log(`lease chaos ${backend}: seed ${seed} (replay with CHAOS_SEED=${seed})`);
      const serverFaults = process.env.FW_CHAOS_LEASE_SERVER_FAULTS === '1' ? { serverFaults: true } : {};
      const started = performance.now();
      const run = await runLeaseChaos({ backend, seed, durationMs: seconds * 1000, nodes: 4, log: (l) => console.log(`${l} (+${Math.round(performance.now() - started)} ms)`), ...serverFaults });
      const bounds = run.profile.bounds;
      const report = checkHistory(run.history, bounds);
      const summary = formatSummary(
        { seed, endpoint: run.server, nodes: 4, durationMs: seconds * 1000, heartbeatInterval: run.profile.interval, heartbeatTimeout: run.profile.lease, bounds },
        report,
      );
      console.log(summary);
      if (!report.ok) {
        const file = join(tmpdir(), `fw-lease-chaos-${backend}-${seed}.json`);
        writeFileSync(file, JSON.stringify(run.history));
        console.log(`lease chaos ${backend}: history written to ${file}`);
      }
      expect(report.violations.map((v) => `[${v.kind}] ${v.message}`), summary).toEqual([]);
      expect(report.stats.splitBrains).toBe(0);
      // The run did attack the primary and saw it replaced.
      const failovers = Object.values(report.stats.failovers).reduce((a, b) => a + b, 0);
      expect(failovers + report.stats.replacedWhileStopped, summary).toBeGreaterThanOrEqual(1);
      expect(Object.keys(report.stats.faultsByKind).length, summary).toBeGreaterThan(1);
    },
    (seconds + 120) * 1000,
  );
});
