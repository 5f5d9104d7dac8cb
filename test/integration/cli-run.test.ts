/**
 * `failover-watch run` and `demo`, end to end: the real CLI as separate OS processes, real
 * sockets, a real redis-server. The supervised command is a small node script that reports its
 * own start by writing a line to a file named after its node.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';
import { cleanups, cli, isPrimary, type CliProcess, type JsonEvent } from './cli-run-process.js';

type Node = CliProcess;

/**
 * The supervised command: records its start (role and epoch) in DIR/<id>.log, then runs until
 * signalled, or exits with `exitCode` after `lifeMs`, or (lifeMs = 'trigger') once DIR/exit-<id> exists.
 */
function childCommand(dir: string, lifeMs?: number | 'trigger', exitCode = 0): string[] {
  const path = `require('path').join(${JSON.stringify(dir)}, `;
  const script =
    `require('fs').appendFileSync(${path}process.env.FAILOVER_INSTANCE_ID + '.log'), ` +
    `process.env.FAILOVER_ROLE + ' ' + process.env.FAILOVER_EPOCH + '\\n');` +
    (lifeMs === undefined
      ? 'setInterval(() => {}, 1000);'
      : lifeMs === 'trigger'
        ? `setInterval(() => { if (require('fs').existsSync(${path}'exit-' + process.env.FAILOVER_INSTANCE_ID))) process.exit(${exitCode}); }, 20);`
        : `setTimeout(() => process.exit(${exitCode}), ${lifeMs});`);
  return [process.execPath, '-e', script];
}

/** The lines of DIR/<id>.log once there are at least `count` (the command writes it right after it starts). */
async function logLines(dir: string, id: string, count: number, timeout = 5000): Promise<string[]> {
  const deadline = Date.now() + timeout;
  const file = join(dir, `${id}.log`);
  for (;;) {
    const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
    if (lines.length >= count) return lines;
    if (Date.now() > deadline) throw new Error(`${file} has ${lines.length} lines, expected ${count}, after ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function zmqNode(endpoint: string, id: string, dir: string, extra: string[] = [], command = childCommand(dir)): Node {
  return cli(['run', '--endpoint', endpoint, '--id', id, '--workdir', dir, '--interval', '50', '--timeout', '5000', '--json', ...extra, '--', ...command]);
}

describe('failover-watch run over ZeroMQ', () => {
  it('runs the command only on the primary, prints the documented JSON lines, and hands over on SIGTERM', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const endpoint = uniqueIpc('fw-run');
    const a = zmqNode(endpoint, 'a', work.path);
    await a.waitFor(isPrimary, 20_000, 'a primary');
    const b = zmqNode(endpoint, 'b', work.path);
    const c = zmqNode(endpoint, 'c', work.path);
    // A secondary's role comes from the bind it lost, before its subscription reaches the
    // primary; a SIGTERM then would be seen as a disconnect. Hearing a's heartbeat
    // (primaryChanged) is what makes a's farewell reach it.
    const follows = (e: JsonEvent): boolean => e.event === 'primaryChanged' && e.instanceId === 'a';
    await Promise.all([b, c].map((n) => n.waitFor(follows, 20_000, 'follows a')));
    expect(b.events.find(follows)).toMatchObject({ epoch: 1, metadata: {} });

    const startedLine = a.events[0] as JsonEvent;
    expect(startedLine).toMatchObject({ event: 'started', instanceId: 'a', backend: 'zmq', endpoint, onExit: 'stepdown' });
    const change = a.events.find(isPrimary) as JsonEvent;
    expect(Object.keys(change)).toEqual(['event', 'from', 'to', 'epoch', 'at', 'instanceId', 'reason']);
    expect(change).toMatchObject({ from: 'starting', to: 'primary', epoch: 1, instanceId: 'a', reason: 'startup' });
    expect(typeof change.at).toBe('number');
    expect(a.events.filter((e) => e.event === 'childStarted')).toHaveLength(1);
    expect(b.events.filter((e) => e.event === 'childStarted')).toHaveLength(0);
    expect(c.events.filter((e) => e.event === 'childStarted')).toHaveLength(0);
    expect(a.nonJson).toEqual([]);

    a.term();
    expect((await a.exited).code).toBe(0);
    const stopped = a.events.find((e) => e.event === 'childExited');
    expect(stopped).toMatchObject({ onItsOwn: false, signal: 'SIGTERM' });
    const winner = await Promise.any([b, c].map((n) => n.waitFor(isPrimary, 5000).then(() => n)));
    const promoted = winner.events.find(isPrimary) as JsonEvent;
    expect(promoted).toMatchObject({ from: 'secondary', to: 'primary', epoch: 2, reason: 'shutdown' });
    await winner.waitFor((e) => e.event === 'childStarted', 5000);
    // The successor's command started only after a's command had stopped.
    expect((winner.events.find((e) => e.event === 'childStarted') as JsonEvent).at as number).toBeGreaterThan(stopped?.at as number);
    const id = winner === b ? 'b' : 'c';
    expect(await logLines(work.path, id, 1)).toEqual(['primary 2']);
    expect(await logLines(work.path, 'a', 1)).toEqual(['primary 1']);
  });

  it('exits right after its stopped event, primary or secondary', async () => {
    // The process used to drain its event loop and tear the runtime down after `stopped` (issue
    // 19: 1.5 s reported; 60-350 ms here on a loaded 2-core host). The bound is what cannot flake
    // on such a host: a parent sees even a bare node exit 20-50 ms after its last line there.
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const endpoint = uniqueIpc('fw-run-exit-time');
    const a = zmqNode(endpoint, 'a', work.path);
    await a.waitFor(isPrimary, 20_000, 'a primary');
    const b = zmqNode(endpoint, 'b', work.path);
    await b.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary', 20_000, 'b secondary');
    const stoppedToExit = async (n: Node): Promise<number> => {
      let stoppedAt = 0;
      const seen = n.waitFor((e) => e.event === 'stopped', 20_000, 'stopped').then(() => (stoppedAt = performance.now()));
      n.term();
      const { code } = await n.exited;
      const exitAt = performance.now();
      await seen;
      expect(code).toBe(0);
      return exitAt - stoppedAt;
    };
    const secondary = await stoppedToExit(b);
    const primary = await stoppedToExit(a);
    if (process.env.FW_TIMINGS === '1') console.info(`[timing] stopped -> exit: secondary ${secondary.toFixed(1)} ms, primary ${primary.toFixed(1)} ms`);
    expect(secondary).toBeLessThan(1000);
    expect(primary).toBeLessThan(1000);
  });

  it('--on-exit stepdown hands the role to another node when the command exits on its own', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const endpoint = uniqueIpc('fw-run-step');
    const a = zmqNode(endpoint, 'a', work.path, [], childCommand(work.path, 'trigger'));
    await a.waitFor(isPrimary);
    const b = zmqNode(endpoint, 'b', work.path);
    await b.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary');
    writeFileSync(join(work.path, 'exit-a'), '');
    const change = await b.waitFor(isPrimary, 20_000, 'b primary');
    expect(change.reason).toBe('shutdown');
    const exited = a.events.find((e) => e.event === 'childExited');
    expect(exited).toMatchObject({ onItsOwn: true, code: 0 });
    expect(a.events.find((e) => e.event === 'roleChanged' && e.to === 'secondary')).toMatchObject({ reason: 'stepdown' });
  });

  it('--on-exit restart restarts the command on the same primary', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const a = zmqNode(uniqueIpc('fw-run-restart'), 'a', work.path, ['--on-exit', 'restart'], childCommand(work.path, 200));
    await a.waitFor((e) => e.event === 'childStarted' && a.events.filter((x) => x.event === 'childStarted').length >= 3, 20_000, 'three starts');
    expect(a.events.filter((e) => e.event === 'roleChanged')).toHaveLength(1);
    expect((await logLines(work.path, 'a', 3)).slice(0, 3)).toEqual(['primary 1', 'primary 1', 'primary 1']);
  });

  it('--on-exit exit exits with the command\'s code and a secondary takes over', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const endpoint = uniqueIpc('fw-run-exit');
    const a = zmqNode(endpoint, 'a', work.path, ['--on-exit', 'exit'], childCommand(work.path, 'trigger', 7));
    await a.waitFor(isPrimary);
    const b = zmqNode(endpoint, 'b', work.path);
    await b.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary');
    writeFileSync(join(work.path, 'exit-a'), '');
    expect((await a.exited).code).toBe(7);
    await b.waitFor(isPrimary, 5000);
  });

  it('runs the --on-promote and --on-demote hooks with the role, epoch and node id in the environment', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const file = join(work.path, 'hooks.txt');
    const hook = (name: string) => `echo ${name} $FAILOVER_ROLE $FAILOVER_EPOCH $FAILOVER_INSTANCE_ID >> ${file}`;
    const a = zmqNode(uniqueIpc('fw-run-hooks'), 'a', work.path, ['--on-promote', hook('promote'), '--on-demote', hook('demote')]);
    await a.waitFor((e) => e.event === 'hook' && e.name === 'onPromote');
    a.term();
    expect((await a.exited).code).toBe(0);
    expect(a.events.find((e) => e.event === 'hook' && e.name === 'onDemote')).toMatchObject({ exitCode: 0 });
    expect(readFileSync(file, 'utf8')).toBe('promote primary 1 a\ndemote secondary 1 a\n');
  });

  it('--health serves /healthz, /status and /metrics', async () => {
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const endpoint = uniqueIpc('fw-run-health');
    const a = zmqNode(endpoint, 'a', work.path, ['--health', '127.0.0.1:0']);
    const portA = (await a.waitFor((e) => e.event === 'healthListening')).port as number;
    await a.waitFor(isPrimary);
    const b = zmqNode(endpoint, 'b', work.path, ['--health', '127.0.0.1:0']);
    const portB = (await b.waitFor((e) => e.event === 'healthListening')).port as number;
    await b.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary');
    // Healthy once the primary's own heartbeat came back and the secondary heard the primary.
    const healthz = async (port: number) => {
      for (let i = 0; i < 100; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (res.status === 200) return { status: res.status, text: await res.text() };
        await new Promise((r) => setTimeout(r, 20));
      }
      return { status: 503, text: '' };
    };
    expect(await healthz(portA)).toMatchObject({ status: 200, text: expect.stringContaining('primary') });
    expect(await healthz(portB)).toMatchObject({ status: 200, text: expect.stringContaining('following a') });
    const status = (await (await fetch(`http://127.0.0.1:${portA}/status`)).json()) as { role: string; instanceId: string };
    expect(status).toMatchObject({ role: 'primary', instanceId: 'a' });
    const metrics = await (await fetch(`http://127.0.0.1:${portA}/metrics`)).text();
    expect(metrics).toContain('failover_watch_role{role="primary"} 1');
    expect(metrics).toMatch(/failover_watch_heartbeats_sent_total \d+/);
    // A stopped (SIGSTOP) primary does not answer at all: orchestrators see it as unhealthy.
    process.kill(a.child.pid as number, 'SIGSTOP');
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 500);
    await expect(fetch(`http://127.0.0.1:${portA}/healthz`, { signal: controller.signal })).rejects.toThrow();
    clearTimeout(timer);
    process.kill(a.child.pid as number, 'SIGCONT');
  });

  it('a successor starts its command only after this one has stopped, even when it takes longer than the Watcher\'s default shutdownTimeout (5 s)', async () => {
    const work = tempWorkdir('fw-cli-slowstop-');
    cleanups.push(work.cleanup);
    const endpoint = uniqueIpc('fw-cli-slowstop');
    // A command that takes 6 s to exit after SIGTERM (--stop-timeout 10000 allows it).
    const slow = [process.execPath, '-e', "process.on('SIGTERM', () => setTimeout(() => process.exit(0), 6000)); setInterval(() => {}, 1000);"];
    const a = zmqNode(endpoint, 'a', work.path, [], slow);
    await a.waitFor(isPrimary, 20_000, 'a primary');
    const aStarted = await a.waitFor((e) => e.event === 'childStarted');
    const b = zmqNode(endpoint, 'b', work.path, [], slow);
    await b.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary', 20_000, 'b secondary');
    a.term();
    const aExited = await a.waitFor((e) => e.event === 'childExited' && e.pid === aStarted.pid, 15_000, "a's command exited");
    const bStarted = await b.waitFor((e) => e.event === 'childStarted', 15_000, "b's command started");
    expect(bStarted.at as number).toBeGreaterThan(aExited.at as number);
    expect((aExited.at as number) - (aStarted.at as number)).toBeGreaterThan(5500);
    expect((await a.exited).code).toBe(0);
  }, 40_000);

  it('a SIGTERM while the --on-promote hook runs: the command is never started', async () => {
    const work = tempWorkdir('fw-cli-hookterm-');
    cleanups.push(work.cleanup);
    const node = zmqNode(uniqueIpc('fw-cli-hookterm'), 'h', work.path, ['--on-promote', `${JSON.stringify(process.execPath)} -e "setTimeout(() => {}, 2000)"`]);
    await node.waitFor((e) => e.event === 'started');
    // The first node of a cluster binds at once and runs its hook (2 s): leave in the middle of it.
    await new Promise((r) => setTimeout(r, 500));
    node.term();
    expect((await node.exited).code).toBe(0);
    expect(node.events.some((e) => e.event === 'hook' && e.name === 'onPromote')).toBe(true);
    expect(node.events.filter((e) => e.event === 'childStarted')).toEqual([]);
    expect(existsSync(join(work.path, 'h.log'))).toBe(false);
  }, 30_000);

  it('checks the --etcd and --postgres options like --redis', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--etcd', 'http://127.0.0.1:1', '--', 'true'], /--etcd needs --project/],
      [['run', '--etcd', 'ftp://x', '--project', 'p', '--', 'true'], /--etcd must be http/],
      [['run', '--postgres', 'mysql://x', '--project', 'p', '--', 'true'], /--postgres must be a postgres/],
      [['run', '--postgres', 'postgres://x/y', '--project', 'p', '--lease-ttl', '1000', '--', 'true'], /--lease-ttl is for --redis and --etcd/],
      [['run', '--redis', 'redis://127.0.0.1:1', '--postgres', 'postgres://x/y', '--', 'true'], /exactly one backend/],
      [['run', '--etcd', 'http://127.0.0.1:1', '--project', 'p', '--lease-ttl', '1500', '--', 'true'], /--lease-ttl with --etcd must be whole seconds/],
    ];
    const runs = cases.map(([args]) => cli(args));
    for (const [i, [args, message]] of cases.entries()) {
      const p = runs[i]!;
      const { code } = await p.exited;
      expect(code, args.join(' ')).toBe(2);
      const lines = p.stderr.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
  }, 30_000);

  it('reports each documented usage error on one line with exit code 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--', 'true'], /exactly one backend/],
      [['run', '--endpoint', 'ipc://@x', '--redis', 'redis://127.0.0.1:1', '--', 'true'], /exactly one backend/],
      [['run', '--redis', 'redis://127.0.0.1:1', '--', 'true'], /--redis needs --project/],
      [['run', '--endpoint', 'ipc://@x', '--on-exit', 'sometimes', '--', 'true'], /--on-exit must be/],
      [['run', '--endpoint', 'ipc://@x', '--health', 'nowhere', '--', 'true'], /--health must be HOST:PORT/],
      [['run', '--endpoint', 'ipc://@x', '--interval', '500', '--timeout', '400', '--', 'true'], /--timeout/],
      [['run', '--endpoint', 'ftp://x', '--', 'true'], /endpoint/],
      [['run', '--endpoint', 'ipc://@x'], /COMMAND|operand|command/i],
    ];
    for (const [args, message] of cases) {
      const p = cli(args);
      const { code } = await p.exited;
      expect(code, args.join(' ')).toBe(2);
      const lines = p.stderr.trim().split('\n');
      expect(lines, args.join(' ')).toHaveLength(1);
      expect(lines[0]).toMatch(message);
    }
  });
});

describe('failover-watch demo', () => {
  it('--json runs the 3-node demo, measures a crash and a graceful takeover, and exits 0', async () => {
    const p = cli(['demo', '--json']);
    const { code } = await p.exited;
    expect(code).toBe(0);
    const summary = p.events.find((e) => e.event === 'summary') as JsonEvent & { takeovers: Array<Record<string, unknown>> };
    expect(summary.ok).toBe(true);
    expect(summary.takeovers.map((t) => [t.cause, t.reason])).toEqual([
      ['crash', 'disconnect'],
      ['graceful', 'shutdown'],
    ]);
    for (const t of summary.takeovers) expect(typeof t.latencyMs).toBe('number');
    expect(p.nonJson).toEqual([]);
  }, 40_000);
});

const redisSkip = redisSkipReason();
describe.skipIf(redisSkip !== undefined)('failover-watch run over Redis', () => {
  it('runs the command only on the leader and hands over on SIGTERM', async () => {
    const server = await RedisServer.start();
    cleanups.push(() => server.kill());
    const work = tempWorkdir();
    cleanups.push(work.cleanup);
    const node = (id: string) =>
      cli(['run', '--redis', server.url, '--project', 'clirun', '--id', id, '--lease-ttl', '1000', '--json', '--', ...childCommand(work.path)]);
    const a = node('a');
    await a.waitFor(isPrimary, 20_000, 'a leader');
    const b = node('b');
    const c = node('c');
    await Promise.all([b, c].map((n) => n.waitFor((e) => e.event === 'roleChanged' && e.to === 'secondary', 20_000)));
    expect(a.events[0]).toMatchObject({ event: 'started', backend: 'redis', project: 'clirun' });
    for (const n of [b, c]) expect(n.events.filter((e) => e.event === 'childStarted')).toHaveLength(0);
    a.term();
    expect((await a.exited).code).toBe(0);
    const winner = await Promise.any([b, c].map((n) => n.waitFor(isPrimary, 5000, 'a new leader').then(() => n)));
    await winner.waitFor((e) => e.event === 'childStarted', 5000);
    const loser = winner === b ? c : b;
    expect(loser.events.filter((e) => e.event === 'childStarted')).toHaveLength(0);
    expect(await logLines(work.path, winner === b ? 'b' : 'c', 1)).toEqual(['primary 2']);
  });

  it('an unreachable Redis is one clear line and exit code 1', async () => {
    const p = cli(['run', '--redis', 'redis://127.0.0.1:1', '--project', 'x', '--', 'true']);
    const { code } = await p.exited;
    expect(code).toBe(1);
    expect(p.stderr.trim().split('\n')).toHaveLength(1);
  });
});
