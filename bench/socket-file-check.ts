/**
 * `npx tsx bench/socket-file-check.ts [checks]`: what the primary's check of its filesystem
 * socket file costs (see the README's "A stolen filesystem socket"): one `lstat` of a listening
 * unix socket through `fs.promises`, as the transport makes it at each heartbeat. Prints the time
 * the event loop spends issuing it, the round trip through libuv's thread pool, and the CPU per
 * check, in microseconds, after a warm-up.
 *
 * Touches only a socket in a fresh temporary directory, which it removes.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const checks = Math.min(Math.max(Number(process.argv[2] ?? 20_000) || 20_000, 100), 1_000_000);
const dir = mkdtempSync(join(tmpdir(), 'fw-lstat-'));
const path = join(dir, 'x.sock');
const server = createServer().listen(path);
await new Promise<void>((resolve) => server.once('listening', () => resolve()));
try {
  for (let i = 0; i < 1000; i++) await lstat(path, { bigint: true });
  let issuing = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < checks; i++) {
    const a = performance.now();
    const pending = lstat(path, { bigint: true });
    issuing += performance.now() - a;
    await pending;
  }
  const total = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const us = (ms: number): string => (ms * 1000).toFixed(1);
  process.stdout.write(
    `${checks} checks: on the event loop ${us(issuing / checks)} us, round trip ${us(total / checks)} us, ` +
      `CPU ${((cpu.user + cpu.system) / checks).toFixed(1)} us per check\n`,
  );
} finally {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
}
