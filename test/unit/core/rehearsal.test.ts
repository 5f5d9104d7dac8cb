/**
 * The takeover rehearsal a watcher runs at start (src/core/rehearsal.ts): it must walk the real
 * takeover paths to the primary role, and a primary's graceful exit (or it warms nothing),
 * whatever the node's own settings.
 */
import { describe, expect, it } from 'vitest';
import type { MachineConfig } from '../../../src/core/heartbeat-machine.js';
import { rehearseTakeovers } from '../../../src/core/rehearsal.js';
import { TEST_MACHINE_CONFIG } from './machine-config.js';

const BASE: MachineConfig = Object.freeze({ ...TEST_MACHINE_CONFIG, initialRole: 'auto' });

describe('rehearseTakeovers', () => {
  it.each([
    ['auto', {}],
    ['primary', { initialRole: 'primary' }],
    ['secondary with a low priority', { initialRole: 'secondary', priority: 9 }],
    ['fencing and preemption on', { fencing: true, preempt: true }],
  ] as const)('reaches the primary role by disconnect and by shutdown, then leaves it with a farewell (%s)', (_label, overrides) => {
    const result = rehearseTakeovers({ ...BASE, ...overrides });
    expect(result.promoted).toBe(2);
    expect(result.farewells).toBe(2);
    expect(result.steps).toBe(22);
  });

  it('does not touch the configuration it is given', () => {
    const config = { ...BASE };
    rehearseTakeovers(config);
    expect(config).toEqual(BASE);
  });
});
