/**
 * The watcher on the application's own bus (examples/bus-app.ts, real OS processes): app
 * messages and failover messages on one socket and one port, a crash (SIGKILL) and a graceful
 * takeover, and the app's own numbered messages read by a follower without a gap or a reorder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, tempWorkdir } from '../../harness/cluster.js';

interface Line {
  readonly id: string;
  readonly event: string;
  readonly [key: string]: unknown;
}

const started: ChildProcess[] = [];
afterEach(() => {
  for (const child of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function app(id: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/bus-app.ts'], {
    env: { ...process.env, ...env, APP_ID: id },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  const lines: Line[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const text = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      if (text.startsWith('{')) lines.push(JSON.parse(text) as Line);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    id,
    child,
    lines,
    exited,
    /** Resolves with the first line matching, within `timeout`. */
    async until(match: (l: Line) => boolean, what: string, timeout = 20_000): Promise<Line> {
      const deadline = Date.now() + timeout;
      while (Date.now() < deadline) {
        const found = lines.find(match);
        if (found !== undefined) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`${id}: no ${what} within ${timeout} ms; stderr: ${stderr}`);
    },
    /** The app.tick sequence numbers this process read from `from`, in the order read. */
    seqFrom(from: string): number[] {
      return lines.filter((l) => l.event === 'app' && l.from === from).map((l) => l.seq as number);
    },
  };
}

type App = ReturnType<typeof app>;

/** `seqs` is n, n+1, n+2, ...: nothing lost, nothing reordered, nothing twice. */
function contiguous(seqs: number[]): boolean {
  return seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1);
}

describe('the watcher on the app bus', () => {
  it('keeps app traffic through a crash and a handover', async () => {
    const port = await freePort();
    const work = tempWorkdir('fw-bus-');
    try {
      const env = { APP_ENDPOINT: `tcp://127.0.0.1:${port}`, APP_WORKDIR: work.path };
      const a = app('a', env);
      await a.until((l) => l.event === 'primary', 'promotion');
      const b = app('b', env);
      const c = app('c', env);
      await b.until((l) => l.event === 'started', 'start');
      await c.until((l) => l.event === 'started', 'start');
      // Both followers read a's app messages, which share the socket with its heartbeats.
      await b.until((l) => l.event === 'app' && l.from === 'a' && (l.seq as number) > 0 && b.seqFrom('a').length >= 50, "50 of a's ticks");
      await c.until(() => c.seqFrom('a').length >= 50, "50 of a's ticks");
      expect(a.seqFrom('a').length).toBeGreaterThan(0); // the primary reads its own too

      // A crash: the kernel frees the port, a follower takes over on the disconnect.
      a.child.kill('SIGKILL');
      await a.exited;
      const next = await Promise.race([
        b.until((l) => l.event === 'primary', 'takeover', 20_000).then(() => b),
        c.until((l) => l.event === 'primary', 'takeover', 20_000).then(() => c),
      ]);
      const follower: App = next === b ? c : b;
      expect(follower.lines.some((l) => l.event === 'primary')).toBe(false);
      await follower.until(() => follower.seqFrom(next.id).length >= 50, `50 of ${next.id}'s ticks`);

      // A graceful handover: every tick the primary sent before it left reaches the follower.
      next.child.kill('SIGTERM');
      const stopping = await next.until((l) => l.event === 'stopping', 'stopping');
      await next.exited;
      await follower.until((l) => l.event === 'primary', 'the handover');
      const lastSent = stopping.lastSent as number;
      const fromA = follower.seqFrom('a');
      const fromNext = follower.seqFrom(next.id);
      expect(contiguous(fromA)).toBe(true);
      expect(contiguous(fromNext)).toBe(true);
      expect(fromNext.at(-1)).toBe(lastSent);
    } finally {
      for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      work.cleanup();
    }
  }, 90_000);
});
