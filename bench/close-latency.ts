/**
 * `npx tsx bench/close-latency.ts [trials]`: how long libzmq takes to free a bound address after
 * `close()`, without failover-watch. This process binds an XPUB, three subscriber processes
 * (`lib/close-latency-subscriber.mjs`) connect to it, and each trial sends one message, closes
 * the XPUB and then tries to bind the same address again with a second socket, in a bounded busy
 * loop, until it succeeds. libzmq closes the listening socket on its I/O thread after its reaper
 * thread has handled the close, so the address is free a little after `close()` returns: that
 * delay is what a graceful handover on tcp or abstract ipc may wait for (see bench/README.md).
 * A filesystem endpoint's lock is freed in the closing call itself.
 *
 * Loopback only; kills only the processes it started, by pid; every wait and loop is bounded.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePort, uniqueIpc } from '../harness/cluster.js';
import { summarize } from './stats.js';

const SUBSCRIBER = fileURLToPath(new URL('./lib/close-latency-subscriber.mjs', import.meta.url));
const trials = Math.min(Math.max(Number(process.argv[2] ?? 30) || 30, 1), 500);
/** Give up on one trial's re-bind after this long. */
const BIND_BOUND_MS = 100;

async function trial(endpoint: string): Promise<number | undefined> {
  const pub = new zmq.XPublisher({ linger: 500, sendTimeout: 0 });
  const probe = new zmq.XPublisher({ linger: 0 });
  const subs = [1, 2, 3].map(() => fork(SUBSCRIBER, [endpoint], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  try {
    pub.bindSync(endpoint);
    // Each subscriber reports once it received a message: publish until all three did (bounded).
    const ready = subs.map((s) => new Promise<void>((resolve) => s.once('message', () => resolve())));
    let all = false;
    void Promise.all(ready).then(() => {
      all = true;
    });
    for (let i = 0; i < 500 && !all; i++) {
      await pub.send(['warm-up', 'x']);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    if (!all) return undefined;
    const started = performance.now();
    await pub.send(['farewell', 'x']);
    pub.close();
    for (;;) {
      try {
        probe.bindSync(endpoint);
        return performance.now() - started;
      } catch {
        if (performance.now() - started > BIND_BOUND_MS) return undefined;
      }
    }
  } finally {
    if (!pub.closed) pub.close();
    probe.close();
    for (const s of subs) if (s.exitCode === null && s.pid !== undefined) s.kill('SIGKILL');
  }
}

for (const kind of ['tcp', 'ipc'] as const) {
  const samples: number[] = [];
  let failed = 0;
  for (let t = 0; t < trials; t++) {
    const endpoint = kind === 'tcp' ? `tcp://127.0.0.1:${await freePort()}` : uniqueIpc('fw-close');
    const ms = await trial(endpoint);
    if (ms === undefined) failed++;
    else samples.push(ms);
  }
  const s = summarize(samples);
  const label = kind === 'tcp' ? 'tcp://127.0.0.1' : 'ipc://@ (abstract)';
  console.log(
    s === undefined
      ? `${label}: no samples (${failed} failed)`
      : `${label}: close() -> address bindable again, ${s.n} trials${failed > 0 ? ` (${failed} failed)` : ''}: min ${s.min.toFixed(2)} p50 ${s.p50.toFixed(2)} p99 ${s.p99.toFixed(2)} ms`,
  );
}
