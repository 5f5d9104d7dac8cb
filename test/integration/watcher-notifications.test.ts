/**
 * Notifications of one real Watcher (in this process, real sockets): listeners are isolated,
 * the async iterator sees every change and ends after `stopped`, nothing blocks.
 */
import { expect, it } from 'vitest';
import { tempWorkdir, uniqueIpc } from '../../harness/cluster.js';
import { Watcher, type RoleChange } from '../../src/index.js';

it('a throwing or rejecting listener is counted and never stops other listeners, once-listeners or the iterator', async () => {
  const work = tempWorkdir();
  const watcher = new Watcher({ endpoint: uniqueIpc('fw-notify'), workdir: work.path, heartbeatInterval: 50, heartbeatTimeout: 500 });
  const seen: string[] = [];
  watcher.on('roleChanged', () => {
    throw new Error('listener bug');
  });
  watcher.on('roleChanged', async () => {
    throw new Error('async listener bug');
  });
  watcher.once('roleChanged', (c: RoleChange) => {
    seen.push(`once ${c.to}`);
    throw new Error('once listener bug');
  });
  watcher.on('roleChanged', (c: RoleChange) => void seen.push(c.to));
  const iterated: string[] = [];
  const iterating = (async () => {
    for await (const change of watcher.roleChanges()) iterated.push(`${change.from}->${change.to}`);
  })();

  await watcher.start();
  expect(watcher.role).toBe('primary');
  await watcher.shutdown();
  await iterating; // the iterator ended by itself after 'stopped'
  expect(iterated).toEqual(['starting->primary', 'primary->stopped']);
  expect(seen).toEqual(['once primary', 'primary', 'stopped']);
  expect(watcher.status().listenerErrors).toBe(5); // 2 x 2 changes + the once listener
  // A stream opened after the end is already over.
  const late = await watcher.roleChanges().next();
  expect(late.done).toBe(true);
  work.cleanup();
});

it('a synchronous stepDown() or setEnabled(false) inside onPromote takes effect at once: its signal is aborted before it returns', async () => {
  const work = tempWorkdir();
  const endpoint = uniqueIpc('fw-reentry');
  const aborted: boolean[] = [];
  const watcher = new Watcher({
    endpoint,
    workdir: work.path,
    role: 'primary',
    enabled: true,
    heartbeatInterval: 50,
    heartbeatTimeout: 500,
    onPromote: ({ signal }) => {
      watcher.stepDown();
      aborted.push(signal.aborted);
    },
  });
  await watcher.start().catch(() => undefined);
  expect(aborted).toEqual([true]);
  await watcher.shutdown();

  const other = new Watcher({
    endpoint: uniqueIpc('fw-reentry'),
    workdir: work.path,
    role: 'primary',
    enabled: true,
    heartbeatInterval: 50,
    heartbeatTimeout: 500,
    onPromote: () => {
      other.setEnabled(false);
      aborted.push(other.enabled);
    },
  });
  await other.start();
  expect(aborted).toEqual([true, false]);
  await other.shutdown();
  work.cleanup();
});
