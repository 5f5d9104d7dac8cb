/**
 * Shared by the conformance kit's tests: run one scenario with a peer template, and the two
 * shapes of test (must pass; expected to fail until a change lands).
 */
import { expect, it } from 'vitest';
import { runConformance } from '../../conformance/runner.js';
import type { ScenarioResult, Transport } from '../../conformance/scenario.js';

/** Bound on one test: a scenario's processes start through tsx on a loaded 2-core host. */
export const KIT_TEST_TIMEOUT = 60_000;

/** Runs one scenario through the kit's runner, in this process. */
export async function runScenario(peer: string, name: string, transport: Transport): Promise<ScenarioResult | undefined> {
  const report = await runConformance({ peer, transport, only: [name] });
  return report.results[0];
}

/** A scenario that must pass: the failure's detail is the assertion's message. */
export function passes(peer: () => string, name: string, transport: Transport): void {
  it(`${name} passes (${transport})`, { timeout: KIT_TEST_TIMEOUT }, async () => {
    const result = await runScenario(peer(), name, transport);
    expect(result?.detail ?? '').toBe('');
    expect(result?.status).toBe('pass');
  });
}
