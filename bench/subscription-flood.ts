/**
 * A primary's memory under a subscription flood, by the number of flooding connections, outside
 * the suite (docs/SECURITY.md, "Memory"). For each count: a watcher primary at 10 Hz on a tcp
 * loopback port (bench/lib/idle-node.ts), a flooding peer (harness/flood-peer.ts, `raw-topics`:
 * distinct subscriptions written straight onto each connection for `seconds`), and the primary's
 * VmRSS every 4 s from /proc. Linux only; loopback only; every child killed by pid at the end.
 *
 * `npx tsx bench/subscription-flood.ts [seconds] [connections...]` (default 20 s; 4 and 200).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, tempWorkdir } from '../harness/cluster.js';
import { childArgs, ROOT } from '../harness/child-runtime.js';
import { pause } from './lib/events.js';

const NODE = fileURLToPath(new URL('./lib/idle-node.ts', import.meta.url));
const FLOOD = fileURLToPath(new URL('../harness/flood-peer.ts', import.meta.url));

const seconds = Math.min(120, Math.max(4, Number(process.argv[2] ?? 20)));
const counts = process.argv.slice(3).map(Number).filter((n) => Number.isInteger(n) && n > 0 && n <= 1000);

const rssMiB = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Math.round(Number(m[1]) / 1024);
};

function child(args: string[]): ChildProcess {
  return spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
}

async function run(connections: number): Promise<void> {
  const workdir = tempWorkdir('fw-bench-flood-');
  const endpoint = `tcp://127.0.0.1:${await freePort()}`;
  const primary = child([
    ...childArgs(NODE),
    JSON.stringify({ mode: 'watcher-primary', endpoint, instanceId: 'p', heartbeatInterval: 100, heartbeatTimeout: 5000, workdir: workdir.path }),
  ]);
  const children: ChildProcess[] = [primary];
  try {
    const ready = await Promise.race([
      new Promise<boolean>((resolve) => primary.on('message', (m: { type?: string }) => m.type === 'ready' && resolve(true))),
      pause(20_000).then(() => false),
    ]);
    if (!ready || primary.pid === undefined) throw new Error('the primary did not start');
    const pid = primary.pid;
    await pause(2000);
    const start = rssMiB(pid);
    const flood = child([...childArgs(FLOOD), JSON.stringify({ endpoint, mode: 'raw-topics', durationMs: seconds * 1000, connections, maxTopics: 50_000_000 })]);
    children.push(flood);
    const samples: string[] = [];
    for (let t = 4; t <= seconds; t += 4) {
      await pause(4000);
      samples.push(`${t} s: ${rssMiB(pid)}`);
    }
    await Promise.race([new Promise((r) => flood.once('exit', r)), pause(10_000)]);
    await pause(2000);
    const end = rssMiB(pid);
    const rate = (end - start) / (seconds + 2);
    process.stdout.write(
      `${String(connections).padStart(5)} connections: VmRSS ${start} -> ${end} MiB (+${end - start} MiB, ${rate.toFixed(1)} MiB/s); ${samples.join(', ')}\n`,
    );
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    workdir.cleanup();
  }
}

process.stdout.write(`subscription flood on a watcher primary (10 Hz, tcp loopback), ${seconds} s per row\n`);
for (const n of counts.length > 0 ? counts : [4, 200]) await run(n);
