/**
 * The `instanceId` rule and presence (issue 15, item 4): an id within the old 256-character
 * limit but over about 290 bytes of UTF-8 made a presence subscription longer than the primary
 * reads, so the node was silently never listed nor ranked. The rule is now 1-256 bytes of UTF-8,
 * checked at construction (test/unit/options.test.ts); this test shows the longest valid id, with
 * the largest priority, is listed by a real primary through real sockets.
 */
import { afterEach, expect, it } from 'vitest';
import { Cluster, tempWorkdir, uniqueIpc, waitReady, type WatcherProcess } from '../../harness/cluster.js';

let cluster: Cluster | undefined;
let workdir: ReturnType<typeof tempWorkdir> | undefined;
afterEach(async () => {
  await cluster?.stopAll();
  workdir?.cleanup();
});

async function listed(n: WatcherProcess): Promise<string[]> {
  n.send({ cmd: 'liveNodes' });
  const reply = await n.next((e) => e.type === 'liveNodes', 5000, 'liveNodes');
  return (reply.nodes as Array<{ instanceId: string }>).map((x) => x.instanceId);
}

it('lists a node whose id is the longest valid one', async () => {
  workdir = tempWorkdir();
  cluster = new Cluster();
  const endpoint = uniqueIpc('fw-long-id');
  // 85 three-byte characters and one byte: 256 bytes of UTF-8, 86 UTF-16 code units.
  const longest = `${'€'.repeat(85)}x`;
  expect(Buffer.byteLength(longest)).toBe(256);
  const common = { endpoint, workdir: workdir.path, heartbeatInterval: 50, heartbeatTimeout: 10_000 };
  const primary = cluster.spawn({ ...common, instanceId: 'p0', role: 'primary' });
  await waitReady(primary);
  const secondary = cluster.spawn({ ...common, instanceId: longest, role: 'secondary', priority: 1_000_000_000 });
  await waitReady(secondary);
  const deadline = Date.now() + 10_000;
  let ids = await listed(primary);
  while (!ids.includes(longest) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    ids = await listed(primary);
  }
  expect(ids).toContain(longest);
});
