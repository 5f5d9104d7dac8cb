/**
 * One watcher that starts, reports how `start()` ended as one JSON line on stdout, and leaves:
 * `{ outcome: 'started', role, epoch, workdir }` or `{ outcome: 'refused', code, message }` (or
 * `{ outcome: 'timeout' }` after 10 s). Used by the two-user tests, run as the victim.
 *
 * Usage: `node --import tsx harness/workdir-node.ts ENDPOINT [WORKDIR]` (without WORKDIR, the
 * default one, under TMPDIR).
 *
 * @module
 */
import { Watcher } from '../src/index.js';

const [endpoint, workdir] = process.argv.slice(2);
if (endpoint === undefined) throw new Error('usage: workdir-node.ts ENDPOINT [WORKDIR]');
const watcher = new Watcher({
  endpoint,
  role: 'auto',
  heartbeatInterval: 50,
  heartbeatTimeout: 500,
  rehearsals: 0,
  ...(workdir !== undefined ? { workdir } : {}),
});
let result: Record<string, unknown>;
let timer: NodeJS.Timeout | undefined;
try {
  await Promise.race([
    watcher.start(),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), 10_000);
    }),
  ]);
  result = { outcome: 'started', role: watcher.role, epoch: watcher.epoch, workdir: watcher.options.workdir };
} catch (error) {
  const e = error as { code?: string; message?: string };
  result = e.message === 'timeout' ? { outcome: 'timeout', role: watcher.role, epoch: watcher.epoch } : { outcome: 'refused', code: e.code, message: e.message };
} finally {
  clearTimeout(timer);
}
await watcher.shutdown();
process.stdout.write(`${JSON.stringify(result)}\n`);
