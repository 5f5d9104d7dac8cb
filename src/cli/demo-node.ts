/**
 * One node of `failover-watch demo`, in its own process. Reports to the parent over the IPC
 * channel: `ready`, `promote` (with the wall-clock ms when onPromote was called), `role`, and a
 * `status` snapshot every 100 ms. Ends on a `shutdown` message or when the parent goes away.
 *
 * @internal
 * @module
 */
import { Watcher } from '../watcher.js';

interface DemoNodeConfig {
  readonly endpoint: string;
  readonly instanceId: string;
  readonly workdir: string;
  readonly heartbeatInterval: number;
  readonly heartbeatTimeout: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as DemoNodeConfig;
const wall = (): number => performance.timeOrigin + performance.now();
const send = (message: Record<string, unknown>): void => {
  if (process.connected) process.send?.({ ...message, at: wall() });
};

const watcher = new Watcher({
  ...config,
  role: 'auto',
  enabled: true,
  onPromote: ({ epoch, reason }) => send({ type: 'promote', epoch, reason, promoteAt: wall() }),
});
watcher.on('roleChanged', (c) => send({ type: 'role', from: c.from, to: c.to, epoch: c.epoch, reason: c.reason }));
const ticker = setInterval(() => send({ type: 'status', status: watcher.status() }), 100);

const stop = (): void => {
  clearInterval(ticker);
  void watcher.shutdown().then(() => {
    send({ type: 'stopped' });
    if (process.connected) process.disconnect();
  });
};
process.on('message', (m) => {
  if ((m as { cmd?: string }).cmd === 'shutdown') stop();
});
process.on('disconnect', () => {
  clearInterval(ticker);
  void watcher.shutdown();
});
await watcher.start();
send({ type: 'ready', role: watcher.role, pid: process.pid });
