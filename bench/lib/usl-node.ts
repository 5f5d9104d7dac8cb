/**
 * A `unix-socket-leader` instance in its own OS process, for the comparison in
 * `bench/scenarios/usl-compare.ts`. argv[2] is the socket path (absolute). Reports to the parent
 * over IPC as `{ type, at }` with `at` in wall-clock ms from the run's one host clock
 * (`hostNow` in harness/child-runtime.ts, as the watcher harness uses):
 *
 * - `leader`: the package's `leader` event (this instance now serves the socket);
 * - `client`: connected to a leader (the package emits it for the leader itself too);
 * - `closeCalled` / `closed`: around `close()`, on the parent's `{ cmd: 'close' }`; the process
 *   then exits.
 *
 * The parent going away ends this process.
 *
 * @module
 */
import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { hostNow } from '../../harness/child-runtime.js';

interface Leader extends EventEmitter {
  close(cb?: () => void): void;
}

const require = createRequire(import.meta.url);
const leader = require('unix-socket-leader') as (file: string) => Leader;

const wall = hostNow; // the run's one host clock (harness/child-runtime.ts)
const send = (type: string, data: Record<string, unknown> = {}): void => {
  if (process.connected) process.send?.({ type, at: wall(), ...data });
};

const sockPath = process.argv[2];
if (sockPath === undefined) {
  process.stderr.write('usage: usl-node <socket path>\n');
  process.exit(2);
}

const instance = leader(sockPath);
instance.on('leader', () => send('leader', { pid: process.pid }));
instance.on('client', () => send('client'));
instance.on('error', (error: Error) => send('error', { message: String(error) }));

process.on('message', (raw) => {
  const command = raw as { cmd?: string };
  if (command.cmd === 'close') {
    send('closeCalled');
    instance.close(() => {
      send('closed');
      process.disconnect?.();
      process.exit(0);
    });
  }
});
process.on('disconnect', () => process.exit(0));
send('started', { pid: process.pid });
