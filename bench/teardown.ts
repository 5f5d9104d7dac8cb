/**
 * `npx tsx bench/teardown.ts [trials]`: how long the kernel takes to close a SIGKILLed
 * process's sockets, without failover-watch: a bare node process with zeromq and a bound XPUB
 * (`lib/teardown-victim.mjs`), a SUB in this process connected to it, and the time from
 * `kill()` to the SUB's disconnect event, for a few sizes of the victim. This is the floor under
 * any crash detection; `crash-failover` and `crash-memory` add failover-watch on top of it.
 * (`npm run bench -- --only host-floor` measures the +0 MB case with the bench's report.)
 *
 * Loopback only; kills only the processes it started, by pid; every wait is bounded.
 *
 * @module
 */
import { measureTeardown } from './lib/host-floor.js';
import { summarize } from './stats.js';

const trials = Math.min(Math.max(Number(process.argv[2] ?? 20) || 20, 1), 500);

for (const extraMb of [0, 100, 400]) {
  const { samples, rssBytes } = await measureTeardown(extraMb, trials);
  const s = summarize(samples);
  process.stdout.write(
    `victim +${extraMb} MB (RSS ${(rssBytes / 2 ** 20).toFixed(0)} MiB): kill -> disconnect, ${samples.length} trials: ` +
      `min ${s?.min.toFixed(2)} p50 ${s?.p50.toFixed(2)} p99 ${s?.p99.toFixed(2)} ms\n`,
  );
}
