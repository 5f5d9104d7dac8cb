/**
 * The epoch ceiling with real sockets (three Watchers in this process on one ipc endpoint): a
 * node that takes 2^53 - 1 is followed; when it leaves, the secondary that knows that epoch
 * refuses to promote (no bind: it never holds the endpoint) and says so; a node that holds the
 * endpoint next with a lower epoch (here one with its own, empty workdir, as a node reset by
 * hand) is followed all the same, with a warning and a count.
 */
import { afterEach, expect, it } from 'vitest';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { Watcher, type EpochExhaustedEvent, type PrimaryChangedEvent, type PrimaryLostEvent } from '../../src/index.js';
import { StateFile } from '../../src/runtime/state-file.js';

const MAX = Number.MAX_SAFE_INTEGER;
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function next<K extends 'primaryChanged' | 'primaryLost' | 'epochExhausted'>(
  w: Watcher,
  event: K,
  pred: (e: { primaryChanged: PrimaryChangedEvent; primaryLost: PrimaryLostEvent; epochExhausted: EpochExhaustedEvent }[K]) => boolean,
  timeout = 5000,
): Promise<{ primaryChanged: PrimaryChangedEvent; primaryLost: PrimaryLostEvent; epochExhausted: EpochExhaustedEvent }[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeout} ms (${w.formatStatus()})`)), timeout);
    const on = (e: never): void => {
      if (!pred(e)) return;
      clearTimeout(timer);
      w.off(event, on as never);
      resolve(e);
    };
    w.on(event, on as never);
  });
}

function watcher(endpoint: string, workdir: string, instanceId: string, warnings: string[] = []): Watcher {
  const w = new Watcher({
    endpoint,
    workdir,
    instanceId,
    enabled: true,
    heartbeatInterval: 50,
    heartbeatTimeout: 300,
    rehearsals: 0,
    logger: { debug() {}, info() {}, warn: (m: string) => void warnings.push(m), error: (m: string) => void warnings.push(m) },
  });
  cleanups.push(() => w.shutdown());
  return w;
}

it('refuses to promote past 2^53 - 1 and follows the next holder', async () => {
  const shared = tempWorkdir('fw-ceiling-');
  const fresh = tempWorkdir('fw-ceiling-fresh-');
  cleanups.push(shared.cleanup, fresh.cleanup);
  new StateFile(shared.path).writeSync({ epoch: MAX - 1, primary: null, updatedAt: 1 });
  const endpoint = uniqueIpc('fw-ceiling');

  const a = watcher(endpoint, shared.path, 'a');
  await a.start();
  expect(a.status()).toMatchObject({ role: 'primary', epoch: MAX });

  const bLogs: string[] = [];
  const b = watcher(endpoint, shared.path, 'b', bLogs);
  const followsA = next(b, 'primaryChanged', (e) => e.instanceId === 'a');
  await b.start();
  await followsA;

  const refused = next(b, 'epochExhausted', () => true);
  const lost = next(b, 'primaryLost', () => true);
  await a.shutdown();
  expect(await lost).toMatchObject({ instanceId: 'a', epoch: MAX, cause: 'shutdown', willPromote: false });
  expect(await refused).toMatchObject({ code: 'ERR_FAILOVER_EPOCH_EXHAUSTED', epoch: MAX, reason: 'shutdown' });
  expect(bLogs.join('\n')).toMatch(/stop every node, delete the state file/);
  // Two refusals: at its start (role auto, and the shared state file says 2^53 - 1), and now.
  expect(b.status()).toMatchObject({ role: 'secondary', epochExhausted: true, epochRefusals: 2 });

  // A node that knows nothing of the ceiling takes the free endpoint at epoch 1; b follows it.
  const c = watcher(endpoint, fresh.path, 'c');
  const followsC = next(b, 'primaryChanged', (e) => e.instanceId === 'c');
  await c.start();
  expect(c.status()).toMatchObject({ role: 'primary', epoch: 1 });
  expect(await followsC).toMatchObject({ epoch: 1 });
  expect(b.status()).toMatchObject({ role: 'secondary', staleEpochFollows: 1, epoch: MAX });
  expect(bLogs.join('\n')).toMatch(/following c with epoch 1, lower than epoch 9007199254740991 already seen/);
  // b never promoted, and the shared state file still says 2^53 - 1.
  expect(b.status().promotions).toBe(0);
  expect(new StateFile(shared.path).readSync().epoch).toBe(MAX);
});
