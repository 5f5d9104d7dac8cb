/**
 * The conformance kit with the library on both sides, on `ipc:///PATH`: the path lock between
 * implementations and at its documented address; the shared state file and garbage sent up to a
 * primary (here rather than on tcp, to keep each file near 40 s). Also the kit's runner itself: skipping, and a peer that
 * dies at once.
 */
import { describe, expect, it } from 'vitest';
import { libraryPeerCommand } from '../../conformance/library-peer-command.js';
import { runConformance } from '../../conformance/runner.js';
import { KIT_TEST_TIMEOUT, passes } from './conformance-kit.js';

const peer = (): string => libraryPeerCommand();

describe('conformance kit, library on both sides, ipc:///PATH', () => {
  passes(peer, 'path-lock-collision', 'ipc-path');
  passes(peer, 'path-lock-address', 'ipc-path');
  passes(peer, 'state-file', 'ipc-path');
  passes(peer, 'malformed-upstream', 'ipc-path');
});

describe('conformance kit runner', () => {
  it('skips, and does not pass, a named scenario of ipc-path', async () => {
    // Asked for by name on tcp, it cannot run: the run is not a pass (exit code 1).
    const report = await runConformance({ peer: peer(), transport: 'tcp', only: ['path-lock-address'] });
    expect(report.results.map((r) => [r.name, r.status, r.detail])).toEqual([['path-lock-address', 'skip', 'needs --transport ipc-path']]);
    expect(report.ok).toBe(false);
  });

  it('fails a peer that exits before its ready line', { timeout: KIT_TEST_TIMEOUT }, async () => {
    // A peer that writes nothing and exits: the kit reports it at once, not at the start bound.
    const report = await runConformance({ peer: `"${process.execPath}" -e "process.exit(0)"`, transport: 'tcp', only: ['probe'] });
    expect(report.ok).toBe(false);
    expect(report.results[0]?.detail).toMatch(/no "ready" line before it exited/);
  });
});
