/**
 * Every scenario `npm run bench` knows, in the order they run. To add one, write
 * `bench/scenarios/<name>.ts` exporting a {@link Scenario} and list it here.
 *
 * @module
 */
import type { Scenario } from '../scenario.js';
import { crashFailover } from './crash-failover.js';
import { crashMemory } from './crash-memory.js';
import { followerWelcome } from './follower-welcome.js';
import { gracefulHandover } from './graceful-handover.js';
import { hangFailover } from './hang-failover.js';
import { hostFloor } from './host-floor.js';
import { idleCost } from './idle-cost.js';
import { idleHeartbeat, idleHeartbeatFast } from './idle-heartbeat.js';
import { leaseBackends } from './lease-backends.js';
import { redisScenario } from './redis.js';
import { redisCompareScenario } from './redis-compare.js';
import { runSigkill } from './run-sigkill.js';
import { scale32 } from './scale-32.js';
import { silenceFailover } from './silence-failover.js';
import { uslCompare } from './usl-compare.js';

export const SCENARIOS: readonly Scenario[] = [hostFloor, gracefulHandover, silenceFailover, idleCost, idleHeartbeat, idleHeartbeatFast, redisScenario, redisCompareScenario, leaseBackends, crashFailover, crashMemory, hangFailover, followerWelcome, runSigkill, scale32, uslCompare];
