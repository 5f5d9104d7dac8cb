/**
 * The conformance kit run with the library playing both sides: the reference peer
 * (conformance/library-peer.ts) as the peer under test, library nodes beside it. Each test runs
 * one scenario through the kit's runner, in this process, and expects it to pass.
 *
 * The set is chosen to keep the file near 40 s on a 2-core host (every scenario starts two to
 * four node processes through tsx): on tcp, the graceful takeover peer -> library, the crash
 * takeover library -> peer (higher-epoch adds a crash peer -> library, presence a graceful
 * library -> peer is not run here: `npm run conformance` runs all fourteen), the epoch, presence,
 * probe, garbage and state-file scenarios; on ipc:///PATH the two path-lock scenarios.
 *
 * Expected to fail on this branch, with the reason, until the change they check lands:
 * - welcome-from-peer, welcome-to-peer: no welcome heartbeat yet (the `flood` branch, issue 16
 *   item 1); checked to pass with that branch's changes applied.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../harness/child-runtime.js';
import { runConformance } from '../../conformance/runner.js';
import type { Transport } from '../../conformance/scenario.js';

const LIBRARY_PEER = [
  `"${process.execPath}"`,
  '--import tsx',
  `"${join(ROOT, 'conformance/library-peer.ts')}"`,
  '--endpoint {endpoint} --id {id} --priority {priority} --workdir {workdir}',
  '--heartbeat-interval {heartbeatInterval} --heartbeat-timeout {heartbeatTimeout}',
].join(' ');

/** Runs one scenario with the library peer; returns its result. */
async function run(name: string, transport: Transport) {
  const report = await runConformance({ peer: LIBRARY_PEER, transport, only: [name] });
  const [result] = report.results;
  return result;
}

const TIMEOUT = 60_000;

/** A scenario that must pass: the failure's detail is the assertion's message. */
function passes(name: string, transport: Transport): void {
  it(`${name} passes (${transport})`, { timeout: TIMEOUT }, async () => {
    const result = await run(name, transport);
    expect(result?.detail ?? '').toBe('');
    expect(result?.status).toBe('pass');
  });
}

/**
 * A scenario expected to fail on this branch (see the header); `it.fails` turns into a failure
 * the day it passes, which is when to change it to {@link passes}.
 */
function failsUntil(name: string, transport: Transport, reason: string): void {
  it.fails(`${name} fails until ${reason} (${transport})`, { timeout: TIMEOUT }, async () => {
    const result = await run(name, transport);
    expect(result?.status).toBe('pass');
  });
}

describe('conformance kit, library on both sides, tcp', () => {
  passes('graceful-peer-to-library', 'tcp');
  passes('crash-library-to-peer', 'tcp');
  passes('higher-epoch', 'tcp');
  passes('stale-epoch', 'tcp');
  passes('presence', 'tcp');
  passes('probe', 'tcp');
  passes('malformed-input', 'tcp');
  passes('state-file', 'tcp');
  failsUntil('welcome-from-peer', 'tcp', 'welcome lands');
  failsUntil('welcome-to-peer', 'tcp', 'welcome lands');
});

describe('conformance kit, library on both sides, ipc:///PATH', () => {
  passes('path-lock-collision', 'ipc-path');
  passes('path-lock-address', 'ipc-path');
});

describe('conformance kit runner', () => {
  it('skips a scenario that needs another transport', async () => {
    const report = await runConformance({ peer: LIBRARY_PEER, transport: 'tcp', only: ['path-lock-address'] });
    expect(report.results.map((r) => [r.name, r.status])).toEqual([['path-lock-address', 'skip']]);
    expect(report.ok).toBe(true);
  });

  it('fails a peer that exits before its ready line', { timeout: TIMEOUT }, async () => {
    // A peer that writes nothing and exits: the kit must report it, not hang.
    const report = await runConformance({ peer: `"${process.execPath}" -e "process.exit(0)"`, transport: 'tcp', only: ['probe'] });
    expect(report.ok).toBe(false);
    expect(report.results[0]?.detail).toMatch(/no "ready" line before it exited/);
  });
});
