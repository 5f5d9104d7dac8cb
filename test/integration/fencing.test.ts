/**
 * Opt-in fencing of a hung primary, with real processes: a SIGSTOPped primary that fails the
 * direct liveness probe is killed by the pid it announced, and a secondary takes over. Also the
 * refusals that make fencing safe: another host, a reused pid.
 */
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { Cluster, tempWorkdir, uniqueIpc, waitFollows, waitPrimary, waitReady } from '../../harness/cluster.js';
import { fenceProcess, ownProcStart, parseProcStart } from '../../src/runtime/process-identity.js';
import { readFileSync } from 'node:fs';

let cluster: Cluster | undefined;
let workdir: ReturnType<typeof tempWorkdir> | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  workdir?.cleanup();
});

describe('fencing', () => {
  it('kills a SIGSTOPped primary that fails the liveness probe, then takes over', async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = uniqueIpc('fw-fence');
    const base = { endpoint, workdir: workdir.path, heartbeatInterval: 50, heartbeatTimeout: 300, livenessProbeTimeout: 200 };
    const primary = cluster.spawn({ ...base, instanceId: 'p0', role: 'primary' });
    await waitReady(primary);
    const s1 = cluster.spawn({ ...base, instanceId: 's1', role: 'secondary', fencing: true });
    await waitFollows(s1, 'p0');
    primary.kill('SIGSTOP');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exit = await Promise.race([
      primary.exited,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the hung primary was not fenced within 10 s')), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
    expect(exit.signal).toBe('SIGKILL');
    const change = await waitPrimary(s1);
    expect(change.reason).toBe('silence');
    expect(change.epoch).toBe(2);
  });

  it('does not fence a primary that is slow but answers the liveness probe', async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = uniqueIpc('fw-nofence');
    // Heartbeats every 2 s with a 300 ms timeout: silent most of the time, but its event loop is alive.
    const primary = cluster.spawn({ endpoint, workdir: workdir.path, instanceId: 'p0', role: 'primary', heartbeatInterval: 2000, heartbeatTimeout: 2100 });
    await waitReady(primary);
    const s1 = cluster.spawn({ endpoint, workdir: workdir.path, instanceId: 's1', role: 'secondary', fencing: true, heartbeatInterval: 50, heartbeatTimeout: 300, livenessProbeTimeout: 500 });
    await waitFollows(s1, 'p0');
    const lost = await s1.waitFor((e) => e.type === 'primaryLost', 10_000, 'primaryLost');
    expect(lost.cause).toBe('silence');
    // The probe's answer (an immediate heartbeat) brings the primary back: followed again, not killed.
    await s1.next((e) => e.type === 'primaryChanged' && e.instanceId === 'p0', 5000, 'primary answers the probe');
    expect(primary.alive).toBe(true);
    expect(s1.events.filter((e) => e.type === 'promote')).toEqual([]);
  });
});

describe('process identity', () => {
  it('parses the start time even when the command name has spaces and parentheses', () => {
    const stat = '1234 (my (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10';
    expect(parseProcStart(stat)).toBe(987654);
    expect(ownProcStart()).toBe(parseProcStart(readFileSync('/proc/self/stat', 'utf8')));
  });

  it('refuses to signal a pid that is now another process (start time differs), or one on another host', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const gone = new Promise((r) => child.once('exit', r));
    try {
      const real = parseProcStart(readFileSync(`/proc/${pid}/stat`, 'utf8')) as number;
      const reused = await fenceProcess({ pid, host: (await import('node:os')).hostname(), procStart: real + 1 });
      expect(reused.ok).toBe(false);
      expect(reused.detail).toMatch(/another process/);
      const remote = await fenceProcess({ pid, host: 'some-other-host', procStart: real });
      expect(remote.ok).toBe(false);
      expect(remote.detail).toMatch(/not on this host/);
      expect(child.exitCode).toBeNull();
      const same = await fenceProcess({ pid, host: (await import('node:os')).hostname(), procStart: real });
      expect(same.ok).toBe(true);
      await gone;
      expect(child.signalCode).toBe('SIGKILL');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
