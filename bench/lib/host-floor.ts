/**
 * What the host costs before failover-watch does anything: the floors under the takeover
 * figures, measured without the library.
 *
 * - {@link measureTeardown}: SIGKILL of a bare node + zeromq process holding a bound XPUB
 *   (`teardown-victim.mjs`) to a SUB's disconnect event in this process. The kernel closes a
 *   killed process's sockets only after it has freed its memory, so no crash detection on this
 *   host can be faster.
 * - {@link measureWake}: one system call (`fstat`) and one XPUB send to four connected
 *   subscribers, each timed right after this process slept 30 ms (as a watcher sleeps between
 *   heartbeats) and again right after that (back to back). Every process of a takeover starts
 *   from such a sleep; on a virtual machine whose idle CPUs halt, the first calls after it cost
 *   many times the later ones, and a takeover is a few dozen of them in three processes.
 *
 * Loopback only; kills only the processes it started, by pid; every wait and loop is bounded.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as zmq from 'zeromq';
import { freePort, uniqueIpc } from '../../harness/cluster.js';
import { trackChild } from './live-processes.js';

const VICTIM = fileURLToPath(new URL('./teardown-victim.mjs', import.meta.url));

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    }),
  ]);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Kill → disconnect samples (ms) for a victim holding `extraMb` more touched memory, and its RSS (bytes). */
export async function measureTeardown(extraMb: number, trials: number): Promise<{ samples: number[]; rssBytes: number }> {
  const samples: number[] = [];
  let rssBytes = 0;
  for (let t = 0; t < trials; t++) {
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const child = spawn(process.execPath, [VICTIM, endpoint], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      env: { ...process.env, EXTRA_MB: String(extraMb) },
    });
    trackChild(child);
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const sub = new zmq.Subscriber({ linger: 0 });
    try {
      const ready = await within(new Promise<{ rss: number }>((resolve) => child.once('message', (m) => resolve(m as { rss: number }))), 20_000, 'ready');
      rssBytes = ready.rss;
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
  return { samples, rssBytes };
}

/** What {@link measureWake} returns: samples in ms. */
export interface WakeSamples {
  readonly syscallAfterSleep: number[];
  readonly syscallBackToBack: number[];
  readonly sendAfterSleep: number[];
  readonly sendBackToBack: number[];
}

/** The wake-up cost of one system call and of one XPUB send (see the module's description). */
export async function measureWake(trials: number, sleepMs = 30): Promise<WakeSamples> {
  const out: WakeSamples = { syscallAfterSleep: [], syscallBackToBack: [], sendAfterSleep: [], sendBackToBack: [] };
  const fd = openSync(tmpdir(), 'r');
  const endpoint = uniqueIpc('fw-host-floor');
  const pub = new zmq.XPublisher({ linger: 0, sendTimeout: 0, sendHighWaterMark: 1000, verbosity: 'allSubs' });
  const subs: zmq.Subscriber[] = [];
  try {
    await pub.bind(endpoint);
    for (let i = 0; i < 4; i++) {
      const sub = new zmq.Subscriber({ linger: 0, receiveHighWaterMark: 10_000 });
      sub.subscribe('instance.');
      sub.connect(endpoint);
      subs.push(sub);
    }
    // Subscriptions reach the XPUB asynchronously: wait (bounded) until all four are in.
    let joined = 0;
    pub.receiveTimeout = 2000;
    while (joined < subs.length) {
      const [frame] = await pub.receive();
      if (frame?.[0] === 1) joined++;
    }
    const frames = [Buffer.from('instance.heartbeat'), Buffer.alloc(160, 1)];
    for (let i = 0; i < trials; i++) {
      await sleep(sleepMs);
      let t = performance.now();
      fstatSync(fd);
      out.syscallAfterSleep.push(performance.now() - t);
      t = performance.now();
      fstatSync(fd);
      out.syscallBackToBack.push(performance.now() - t);
      await sleep(sleepMs);
      t = performance.now();
      void pub.send(frames);
      out.sendAfterSleep.push(performance.now() - t);
      t = performance.now();
      void pub.send(frames);
      out.sendBackToBack.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    pub.close();
    for (const sub of subs) sub.close();
  }
  return out;
}
