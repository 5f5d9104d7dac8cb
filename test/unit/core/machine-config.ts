/**
 * The heartbeat machine's configuration the unit tests start from (a secondary with small
 * timings); each test file overrides what it is about.
 */
import type { MachineConfig } from '../../../src/core/heartbeat-machine.js';

export const TEST_MACHINE_CONFIG: MachineConfig = Object.freeze({
  instanceId: 'a',
  initialRole: 'secondary',
  heartbeatInterval: 100,
  heartbeatTimeout: 300,
  retryInterval: 200,
  maxRetryInterval: 1000,
  fastRetryInterval: 5,
  priority: 1,
  priorityStagger: 20,
  preempt: false,
  preemptDelay: 500,
  probeWindow: 50,
  fencing: false,
  livenessProbeTimeout: 100,
  stallThreshold: 50,
  drainDelay: 20,
  quietsOwnHeartbeats: true,
});
