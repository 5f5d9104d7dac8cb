/**
 * Application metadata among old and new nodes (PROTOCOL.md sections 10 and 11): the old node
 * is the library as it was before issue 16 (commit OLD, extracted from git history), run as a
 * process through the conformance kit's reference peer. What section 10 promises:
 * - the old codec accepts a new heartbeat that carries a full 2048-byte metadata map (the
 *   unknown key is ignored, the payload stays within 4096 bytes);
 * - an old follower follows a new primary that announces metadata, and takes over from it;
 * - a new follower of the old primary sees no metadata (`{}`).
 *
 * Skipped, with the reason, where the git history is not at hand (a shallow clone).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/child-runtime.js';
import { Cluster, freePort, tempWorkdir, waitReady } from '../../harness/cluster.js';
import { libraryPeerCommand } from '../../conformance/library-peer-command.js';
import { PeerProcess } from '../../conformance/peer-process.js';
import { encode } from '../../src/protocol/codec.js';
import { MAX_METADATA_BYTES, metadataSize } from '../../src/protocol/metadata.js';

/** main before any change of issue 16 (the same old version as conformance-mixed-versions). */
const OLD = '2d6bee369d598fa05b07c76320256607564930d3';

function oldSkipReason(): string | undefined {
  try {
    execFileSync('git', ['-C', ROOT, 'cat-file', '-e', `${OLD}^{commit}`], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `git, or commit ${OLD.slice(0, 12)} (the old version) in its history, is not available here`;
  }
}
const skipReason = oldSkipReason();
if (skipReason !== undefined) console.warn(`metadata-mixed-versions: skipped: ${skipReason}`);

let oldDir: string | undefined;
let cluster: Cluster | undefined;
let peer: PeerProcess | undefined;
let workdir: ReturnType<typeof tempWorkdir> | undefined;

beforeAll(() => {
  if (skipReason !== undefined) return;
  oldDir = mkdtempSync(join(tmpdir(), 'fw-old-meta-'));
  const archive = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', OLD, 'src', 'package.json'], { maxBuffer: 64 << 20 });
  execFileSync('tar', ['-x', '-C', oldDir], { input: archive });
  symlinkSync(join(ROOT, 'node_modules'), join(oldDir, 'node_modules'));
  mkdirSync(join(oldDir, 'conformance'));
  copyFileSync(join(ROOT, 'conformance/library-peer.ts'), join(oldDir, 'conformance/library-peer.ts'));
});

afterEach(async () => {
  if (peer?.alive === true) await peer.crash();
  peer = undefined;
  await cluster?.stopAll();
  workdir?.cleanup();
});

afterAll(() => {
  if (oldDir !== undefined) rmSync(oldDir, { recursive: true, force: true });
});

/** 8 keys of 250-byte values: 2043 bytes, just within the limit. */
const FULL = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, String(i).repeat(250)]));

describe.skipIf(skipReason !== undefined)('metadata with an old node (before issue 16)', () => {
  it('the old codec reads a heartbeat with full metadata', async () => {
    expect(metadataSize(FULL)).toBeLessThanOrEqual(MAX_METADATA_BYTES);
    const frames = encode('instance.heartbeat', {
      version: 1,
      instanceId: 'i'.repeat(256),
      epoch: 9,
      seq: 1,
      sentAt: Date.now(),
      pid: 4242,
      host: 'h'.repeat(256),
      heartbeatInterval: 100,
      priority: 1,
      members: [],
      metadata: FULL,
    });
    const old = (await import(join(oldDir as string, 'src/protocol/codec.ts'))) as typeof import('../../src/protocol/codec.js');
    const result = old.decode(frames);
    expect(result.ok).toBe(true);
    expect(result.ok && result.message.epoch).toBe(9);
  });

  it('an old follower follows and succeeds a new primary', { timeout: 60_000 }, async () => {
    cluster = new Cluster();
    workdir = tempWorkdir();
    const endpoint = `tcp://127.0.0.1:${await freePort()}`;
    const timing = { heartbeatInterval: 100, heartbeatTimeout: 1000 };
    const primary = cluster.spawn({ endpoint, instanceId: 'new-1', workdir: workdir.path, role: 'primary', ...timing, metadata: FULL });
    await waitReady(primary);
    const observer = cluster.spawn({ endpoint, instanceId: 'new-2', workdir: workdir.path, role: 'secondary', enabled: false, ...timing });
    await waitReady(observer);
    const first = (await observer.waitFor((e) => e.type === 'primaryChanged' && e.instanceId === 'new-1', 10_000, 'follow new-1')) as unknown as {
      metadata: unknown;
    };
    expect(first.metadata).toEqual(FULL);

    mkdirSync(join(workdir.path, 'old'));
    peer = new PeerProcess(libraryPeerCommand(join(oldDir as string, 'conformance/library-peer.ts')), {
      endpoint,
      id: 'old-1',
      priority: 1,
      workdir: join(workdir.path, 'old'),
      ...timing,
    });
    await peer.waitFor((e) => e.event === 'following' && e.id === 'new-1', 20_000, 'following new-1');

    // The new primary stops: the old node takes over; the new follower sees it without metadata.
    const toOld = observer.next((e) => e.type === 'primaryChanged' && e.instanceId === 'old-1', 15_000, 'follow old-1');
    await primary.stop();
    await peer.waitFor((e) => e.event === 'role' && e.role === 'primary', 15_000, 'old node primary');
    expect(((await toOld) as unknown as { metadata: unknown }).metadata).toEqual({});
    expect(await peer.stop()).toBeUndefined();
  });
});
