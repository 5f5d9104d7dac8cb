/**
 * The examples in examples/ run as users would run them, so they never rot.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { uniqueIpc } from '../../harness/cluster.js';
import { RedisServer, redisSkipReason } from '../../harness/redis-server.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, 'SIGKILL'); // a detached child's whole group (all started here)
    } catch {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    }
  }
});

/** Starts a TypeScript example; `waitForLine` resolves on the first stdout line matching. */
function runExample(file: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(child);
  const lines: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (l: string) => void }> = [];
  let buffer = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) if (w.re.test(line)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(line);
    }
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    lines,
    exited,
    waitForLine(re: RegExp, timeout = 20_000): Promise<string> {
      const seen = lines.find((l) => re.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line ${re} within ${timeout} ms; stdout: ${lines.join(' | ')}; stderr: ${stderr}`)), timeout);
        waiters.push({ re, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      });
    },
  };
}

describe('examples/desktop-app.ts', () => {
  it('the first instance becomes primary, the second follows, and takes over when the first quits', async () => {
    const env = { APP_ENDPOINT: uniqueIpc('fw-example') };
    const first = runExample('examples/desktop-app.ts', env);
    await first.waitForLine(/^started as primary/);
    const second = runExample('examples/desktop-app.ts', env);
    await second.waitForLine(/^started as secondary/);
    await second.waitForLine(/^following the primary instance/);
    process.kill(first.child.pid as number, 'SIGTERM');
    await first.waitForLine(/^stopped/);
    expect(await first.exited).toBe(0);
    const promoted = await second.waitForLine(/^primary \(epoch \d+, shutdown\)/);
    expect(promoted).toContain('opening the shared database');
  });
});

describe('examples/metrics-app.ts', () => {
  it('serves the watcher\'s metrics and health; they follow a takeover', async () => {
    const env = { APP_ENDPOINT: uniqueIpc('fw-example-metrics') };
    const first = runExample('examples/metrics-app.ts', env);
    const urlOf = (line: string): string => (/(http:\/\/127\.0\.0\.1:\d+)\//.exec(line) as RegExpExecArray)[1] as string;
    const firstUrl = urlOf(await first.waitForLine(/^serving http/));
    await first.waitForLine(/^started as primary/);
    const second = runExample('examples/metrics-app.ts', env);
    const secondUrl = urlOf(await second.waitForLine(/^serving http/));
    await second.waitForLine(/^started as secondary/);

    const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();
    const labels = 'app="my-metrics-app"';
    expect(await scrape(firstUrl)).toContain(`failover_watch_role{${labels},role="primary"} 1`);
    const before = await scrape(secondUrl);
    expect(before).toContain(`failover_watch_role{${labels},role="secondary"} 1`);
    expect(before).toContain('process_cpu_user_seconds_total'); // the application's own metrics too
    await second.waitForLine(/^following /);
    const healthz = await fetch(`${secondUrl}/healthz`);
    expect(healthz.status).toBe(200);
    expect(await healthz.text()).toMatch(/^ok: following /);

    process.kill(first.child.pid as number, 'SIGTERM');
    await first.waitForLine(/^stopped/);
    expect(await first.exited).toBe(0);
    await second.waitForLine(/^primary \(epoch \d+, shutdown\)/);
    const after = await scrape(secondUrl);
    expect(after).toContain(`failover_watch_role{${labels},role="primary"} 1`);
    expect(after).toContain(`failover_watch_failovers_total{${labels},cause="shutdown"} 1`);
    expect(after).toMatch(/failover_watch_last_takeover_seconds\{app="my-metrics-app"\} \d/);
  });
});

describe.skipIf(redisSkipReason() !== undefined)('examples/redis-worker.ts', () => {
  it('one worker leads through Redis; a standby leads once it closes', async () => {
    const server = await RedisServer.start();
    try {
      const first = runExample('examples/redis-worker.ts', { REDIS_URL: server.url, NODE_ID: 'w1' });
      await first.waitForLine(/^leading \(revision \d+\)/);
      const second = runExample('examples/redis-worker.ts', { REDIS_URL: server.url, NODE_ID: 'w2' });
      await second.waitForLine(/^started as secondary/);
      process.kill(first.child.pid as number, 'SIGTERM');
      await first.waitForLine(/^closed/);
      expect(await first.exited).toBe(0);
      await second.waitForLine(/^leading \(revision \d+\)/);
    } finally {
      await server.kill();
    }
  });
});

describe('examples/supervisor.sh', () => {
  it('runs the HTTP server only on the primary and stops it on SIGTERM', async () => {
    const { freePort } = await import('../../harness/cluster.js');
    const port = await freePort();
    const child = spawn('sh', ['examples/supervisor.sh'], {
      env: { ...process.env, ENDPOINT: uniqueIpc('fw-example-sh'), PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
      // Its own process group, so the test can press "Ctrl-C" on the whole of it, as a terminal does.
      detached: true,
    });
    started.push(child);
    let stderr = '';
    const primary = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not primary within 20 s: ${stderr}`)), 20_000);
      child.stderr?.setEncoding('utf8').on('data', (c: string) => {
        stderr += c;
        if (/started node \(pid \d+\) as primary/.test(stderr)) (clearTimeout(timer), resolve());
      });
    });
    await primary;
    let body = '';
    for (let i = 0; i < 100 && body === ''; i++) {
      body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text(), () => '');
      if (body === '') await new Promise((r) => setTimeout(r, 20));
    }
    expect(body).toMatch(/^served by \d+/);
    // 'close': every process holding the stderr pipe (npx and the CLI under it) has exited.
    const exited = new Promise<void>((r) => child.once('close', () => r()));
    // Ctrl-C in a terminal: SIGINT to the foreground process group (npx, the CLI, the server),
    // all of them started by this test.
    process.kill(-(child.pid as number), 'SIGINT');
    await exited;
    expect(stderr).toMatch(/stopped node \((SIGTERM|SIGINT|0)\) on shutdown/);
    expect(stderr).toMatch(/failover-watch: stopped\n/);
    await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
  });
});

describe('examples/metadata-follower.ts', () => {
  it('a follower reconnects to the new primary port', async () => {
    const env = { APP_ENDPOINT: uniqueIpc('fw-example-meta') };
    const portOf = (line: string): number => Number((/:(\d+) as /.exec(line) as RegExpExecArray)[1]);
    const a = runExample('examples/metadata-follower.ts', { ...env, INSTANCE_ID: 'a', PRIORITY: '1' });
    const portA = portOf(await a.waitForLine(/^serving on 127\.0\.0\.1:\d+ as a$/));
    await a.waitForLine(/^started as primary/);
    const b = runExample('examples/metadata-follower.ts', { ...env, INSTANCE_ID: 'b', PRIORITY: '2' });
    const c = runExample('examples/metadata-follower.ts', { ...env, INSTANCE_ID: 'c', PRIORITY: '3' });
    const ports = {
      b: portOf(await b.waitForLine(/^serving on 127\.0\.0\.1:\d+ as b$/)),
      c: portOf(await c.waitForLine(/^serving on 127\.0\.0\.1:\d+ as c$/)),
    };
    expect(await c.waitForLine(/^connected to a /)).toBe(`connected to a at port ${portA}: hello from a`);
    await b.waitForLine(/^connected to a /);

    process.kill(a.child.pid as number, 'SIGKILL');
    // b is preferred (priority), but under load c may win the bind: either way the other follows.
    const winner = await Promise.any([b, c].map((n, i) => n.waitForLine(/^primary \(epoch \d+/).then((line) => ({ id: i === 0 ? 'b' : 'c', line }))));
    const id = winner.id as 'b' | 'c';
    const follower = id === 'b' ? c : b;
    expect(winner.line).toMatch(new RegExp(`^primary \\(epoch \\d+, \\w+\\): clients connect to port ${ports[id]}$`));
    expect(await follower.waitForLine(new RegExp(`^connected to ${id} `))).toBe(`connected to ${id} at port ${ports[id]}: hello from ${id}`);
    expect(follower.lines).toContain(`following ${id}: connecting to its advertised port ${ports[id]}`);
  });
});
