/**
 * Old and new nodes in one cluster, through the conformance kit: the peer under test is the
 * library as it was before issue 16 (commit OLD, extracted from git history into a temporary
 * directory and run through the same reference peer), the other nodes are this build. What
 * PROTOCOL.md section 10 promises for such a cluster:
 * - on tcp (and abstract ipc) they interoperate: takeovers in both directions, presence;
 * - a new primary's welcome reaches an old follower (it is an ordinary heartbeat; issue 16
 *   item 1);
 * - on `ipc:///PATH` they do not exclude each other: the old node's path lock is another address
 *   (PROTOCOL.md 2.2), which this test checks too, so that the statement stays true.
 *
 * Skipped, with the reason, where the git history is not at hand (a shallow clone).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/child-runtime.js';
import { libraryPeerCommand } from '../../conformance/library-peer-command.js';
import { runConformance } from '../../conformance/runner.js';
import type { Transport } from '../../conformance/scenario.js';

/** main before any change of issue 16 (and before the 108-byte path lock of issue 14 item 2). */
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
if (skipReason !== undefined) console.warn(`conformance-mixed-versions: skipped: ${skipReason}`);

let oldDir: string | undefined;

beforeAll(() => {
  if (skipReason !== undefined) return;
  oldDir = mkdtempSync(join(tmpdir(), 'fw-old-'));
  const archive = execFileSync('git', ['-C', ROOT, 'archive', '--format=tar', OLD, 'src', 'package.json'], { maxBuffer: 64 << 20 });
  execFileSync('tar', ['-x', '-C', oldDir], { input: archive });
  symlinkSync(join(ROOT, 'node_modules'), join(oldDir, 'node_modules'));
  mkdirSync(join(oldDir, 'conformance'));
  copyFileSync(join(ROOT, 'conformance/library-peer.ts'), join(oldDir, 'conformance/library-peer.ts'));
});

afterAll(() => {
  if (oldDir !== undefined) rmSync(oldDir, { recursive: true, force: true });
});

const oldPeer = (): string => libraryPeerCommand(join(oldDir as string, 'conformance/library-peer.ts'));

async function run(name: string, transport: Transport) {
  const report = await runConformance({ peer: oldPeer(), transport, only: [name] });
  return report.results[0];
}

const TIMEOUT = 60_000;

describe.skipIf(skipReason !== undefined)('old node (before issue 16) among new nodes', () => {
  it('old primary stops, a new node takes over (tcp)', { timeout: TIMEOUT }, async () => {
    const result = await run('graceful-peer-to-library', 'tcp');
    expect(result?.detail ?? '').toBe('');
    expect(result?.status).toBe('pass');
  });

  it('new primary killed, the old node takes over (tcp)', { timeout: TIMEOUT }, async () => {
    const result = await run('crash-library-to-peer', 'tcp');
    expect(result?.detail ?? '').toBe('');
    expect(result?.status).toBe('pass');
  });

  it('new primary lists the old node in members (tcp)', { timeout: TIMEOUT }, async () => {
    const result = await run('presence', 'tcp');
    expect(result?.detail ?? '').toBe('');
    expect(result?.status).toBe('pass');
  });

  it('a new primary welcomes an old follower', { timeout: TIMEOUT }, async () => {
    const result = await run('welcome-to-peer', 'tcp');
    expect(result?.status).toBe('pass');
  });

  it('old node does not hold the 108-byte path lock', { timeout: TIMEOUT }, async () => {
    // The documented incompatibility: the old lock is another address, so on ipc:///PATH old and
    // new nodes do not exclude each other (PROTOCOL.md 10).
    const result = await run('path-lock-address', 'ipc-path');
    expect(result?.status).toBe('fail');
    expect(result?.detail).toMatch(/while the kit held its lock's address/);
  });
});
