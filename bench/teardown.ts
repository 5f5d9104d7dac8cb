/**
 * `npx tsx bench/teardown.ts [trials]`: how long the kernel takes to close a SIGKILLed
 * process's sockets, without failover-watch: a bare node process with zeromq and a bound XPUB
 * (`lib/teardown-victim.mjs`), a SUB in this process connected to it, and the time from
 * `kill()` to the SUB's disconnect event, for a few sizes of the victim. This is the floor under
 * any crash detection; `crash-failover` and `crash-memory` add failover-watch on top of it.
 *
 * Loopback only; kills only the processes it started, by pid; every wait is bounded.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePort } from '../harness/cluster.js';
import { summarize } from './stats.js';

const VICTIM = fileURLToPath(new URL('./lib/teardown-victim.mjs', import.meta.url));
const trials = Math.min(Math.max(Number(process.argv[2] ?? 20) || 20, 1), 500);

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    }),
  ]);
}

for (const extraMb of [0, 100, 400]) {
  const samples: number[] = [];
  let rss = 0;
  for (let t = 0; t < trials; t++) {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const child = spawn(process.execPath, [VICTIM, endpoint], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...process.env, EXTRA_MB: String(extraMb) } });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const sub = new zmq.Subscriber({ linger: 0 });
    try {
      const ready = await within(new Promise<{ rss: number }>((resolve) => child.once('message', (m) => resolve(m as { rss: number }))), 20_000, 'ready');
      rss = ready.rss;
      sub.subscribe('');
      const connected = new Promise<void>((resolve) => sub.events.on('handshake', () => resolve()));
      sub.connect(endpoint);
      await within(connected, 5000, 'handshake');
      const disconnected = new Promise<number>((resolve) => sub.events.on('disconnect', () => resolve(performance.now())));
      const killAt = performance.now();
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      samples.push((await within(disconnected, 5000, 'disconnect')) - killAt);
    } finally {
      sub.close();
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      await within(exited, 10_000, 'exit').catch(() => undefined);
    }
  }
  const s = summarize(samples);
  process.stdout.write(
    `victim +${extraMb} MB (RSS ${(rss / 2 ** 20).toFixed(0)} MiB): kill -> disconnect, ${samples.length} trials: ` +
      `min ${s?.min.toFixed(2)} p50 ${s?.p50.toFixed(2)} p99 ${s?.p99.toFixed(2)} ms\n`,
  );
}
