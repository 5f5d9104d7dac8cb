/**
 * The lease operations as Lua scripts: each runs atomically on the Redis server, so "take when
 * free", "refresh only when still ours" and "release only when still ours" cannot interleave
 * with another node's operation.
 *
 * Ownership is a random per-process `session`, not the nodeId: a restarted process with the same
 * nodeId never mistakes its predecessor's lease for its own. Times (registrations, event stamps)
 * come from the server's `TIME`, so nodes on hosts with different clocks agree on them.
 *
 * Revisions stay exact integers of at most 2^53 - 1 = 9007199254740991 (the largest a double,
 * hence Lua 5.1 and JavaScript, holds exactly): acquire refuses (`exhausted`) a new term whose
 * revision would exceed it or when the revision key does not hold an integer, rather than hand
 * out a rounded, repeated one. Revisions travel as decimal text (replies, hash fields) or as
 * JSON numbers written digit by digit (events, notices): cjson would round them above 10^14, and
 * ioredis 6 misreads integer replies within 57 of 2^53.
 *
 * KEYS (see `lease-keys.ts`): 1 leader, 2 revision, 3 last, 4 nodes, 5 node-info, 6 events.
 * ARGV: 1 nodeId, 2 session, 3 priority, 4 eligible ('1'|'0'), 5 ttl ms, 6 strategy,
 * 7 channel, 8 events limit, 9 highest revision known to the caller, 10 reason, 11 deregister,
 * 12 the revision of the term a release gives up ('' = any lease of this session).
 *
 * @module
 */
import { createHash } from 'node:crypto';

/** A script and its SHA1 (for EVALSHA). */
export interface LeaseScript {
  readonly name: string;
  readonly lua: string;
  readonly sha: string;
}

const PRELUDE = `
pcall(redis.replicate_commands)
local leaderKey, revKey, lastKey, nodesKey, infoKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local nodeId, session = ARGV[1], ARGV[2]
local priority = tonumber(ARGV[3])
local eligible = ARGV[4] == '1'
local ttl = tonumber(ARGV[5])
local strategy = ARGV[6]
local channel = ARGV[7]
local eventsLimit = tonumber(ARGV[8])
local known = tonumber(ARGV[9]) or 0
local reason = ARGV[10]
local deregister = ARGV[11] == '1'
local fence = ARGV[12] or ''
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function decode(raw)
  if not raw then return nil end
  local ok, v = pcall(cjson.decode, raw)
  if ok and type(v) == 'table' then return v end
  return nil
end

local function prune()
  local dead = redis.call('ZRANGEBYSCORE', nodesKey, '-inf', now)
  if #dead > 0 then
    redis.call('ZREMRANGEBYSCORE', nodesKey, '-inf', now)
    for _, id in ipairs(dead) do redis.call('HDEL', infoKey, id) end
  end
end

-- Registers this node as live until now + ttl; answers 1 when another live session uses the id.
local function register()
  local dup = 0
  local old = decode(redis.call('HGET', infoKey, nodeId))
  if old and old.session ~= session then
    local score = redis.call('ZSCORE', nodesKey, nodeId)
    if score and tonumber(score) > now then dup = 1 end
  end
  redis.call('ZADD', nodesKey, now + ttl, nodeId)
  redis.call('HSET', infoKey, nodeId, cjson.encode({priority = priority, eligible = eligible, session = session, lastSeen = now}))
  return dup
end

-- The best live eligible node other than this one with a strictly better (lower) priority.
local function better_node()
  local live = redis.call('ZRANGEBYSCORE', nodesKey, '(' .. now, '+inf')
  local best, bestPriority = false, priority
  for _, id in ipairs(live) do
    if id ~= nodeId then
      local o = decode(redis.call('HGET', infoKey, id))
      if o and o.eligible == true and type(o.priority) == 'number' and o.priority < bestPriority then
        best, bestPriority = id, o.priority
      end
    end
  end
  return best
end

-- The largest revision handed out: 2^53 - 1, exact in a double.
local MAX_REVISION = 9007199254740991

-- A revision as JSON: the digits of the stored text when it is a plain integer, else 0.
local function revjson(rev)
  rev = tostring(rev or '0')
  if string.match(rev, '^%-?%d+$') then return rev end
  return '0'
end

-- JSON of fields plus a "revision" written digit by digit (cjson would round it above 10^14).
local function withrev(fields, rev)
  local body = cjson.encode(fields)
  return string.sub(body, 1, -2) .. ',"revision":' .. revjson(rev) .. '}'
end

local function event(who, action, rev, why)
  redis.call('LPUSH', eventsKey, withrev({nodeId = who, action = action, timestamp = now, reason = why}, rev))
  redis.call('LTRIM', eventsKey, 0, eventsLimit - 1)
end

local function notice(kind, rev)
  redis.call('PUBLISH', channel, withrev({type = kind, nodeId = nodeId, priority = priority}, rev))
end
`;

/**
 * Take the lease when it is free (or still ours), as a new term with a new revision.
 * Replies `{'acquired', dup, revision (text), from}`, `{'taken', dup, node, rev, prio}`,
 * `{'deferred', dup, betterNode}` (priority strategy: a better live node should take it) or
 * `{'exhausted', dup, counter}` (no valid revision left: the revision key holds `counter`, which
 * is not an integer, or the next revision would exceed 2^53 - 1; nothing is written).
 */
const ACQUIRE = `${PRELUDE}
prune()
local dup = register()
local holder = redis.call('HGET', leaderKey, 'session')
if holder and holder ~= session then
  local v = redis.call('HMGET', leaderKey, 'node', 'rev', 'prio')
  if strategy == 'priority' and eligible and v[3] and priority < tonumber(v[3]) then
    notice('preempt', v[2])
  end
  return {'taken', dup, v[1], v[2], v[3]}
end
if holder ~= session and strategy == 'priority' then
  local better = better_node()
  if better then return {'deferred', dup, better} end
end
-- The new term's revision: above the counter and above what the caller has seen, at most
-- 2^53 - 1. Checked before anything is written.
local counter = redis.call('GET', revKey)
local current = 0
if counter then
  if not string.match(counter, '^%-?%d+$') then return {'exhausted', dup, counter} end
  current = tonumber(counter)
end
local rev = current + 1
if rev <= known then rev = known + 1 end
if rev > MAX_REVISION then return {'exhausted', dup, counter or '0'} end
rev = string.format('%.0f', rev)
local from
if holder == session then
  from = 'self'
else
  local last = redis.call('HMGET', lastKey, 'node', 'state', 'rev')
  if not last[1] then
    from = 'vacant'
  elseif last[2] == 'released' then
    from = 'released'
  else
    from = 'expired'
    event(last[1], 'expired', last[3], 'lease-expired')
  end
end
redis.call('SET', revKey, rev)
redis.call('DEL', leaderKey)
redis.call('HSET', leaderKey, 'session', session, 'node', nodeId, 'rev', rev, 'prio', priority)
redis.call('PEXPIRE', leaderKey, ttl)
redis.call('HSET', lastKey, 'node', nodeId, 'state', 'held', 'rev', rev)
event(nodeId, 'elected', rev, from)
notice('elected', rev)
return {'acquired', dup, rev, from}
`;

/** Extend the lease when it is still ours. Replies `{'refreshed', dup, betterNode|nil}` or `{'lost', dup, node, rev, prio}`. */
const REFRESH = `${PRELUDE}
prune()
local dup = register()
local holder = redis.call('HGET', leaderKey, 'session')
if holder ~= session then
  local v = redis.call('HMGET', leaderKey, 'node', 'rev', 'prio')
  return {'lost', dup, v[1], v[2], v[3]}
end
redis.call('PEXPIRE', leaderKey, ttl)
local better = false
if strategy == 'priority' then better = better_node() end
return {'refreshed', dup, better}
`;

/** Register as live and read the leader. Replies `{'observed', dup, node, rev, prio}`. */
const OBSERVE = `${PRELUDE}
prune()
local dup = register()
local v = redis.call('HMGET', leaderKey, 'node', 'rev', 'prio')
return {'observed', dup, v[1], v[2], v[3]}
`;

/**
 * Delete the lease when it is still ours and, when the caller names the term it gives up
 * (ARGV[12]), still that term: a release sent for an ended term must not delete a later term of
 * the same session (a node that took the lease again meanwhile and announced it). Record the
 * event and notify the others; with
 * deregister, also remove this node's registration; after a step-down or a failed start, mark
 * the registration ineligible (the node holds off) before the notice goes out, so that the
 * standbys' immediate acquire does not defer to it. Replies 1 when a lease was released.
 */
const RELEASE = `${PRELUDE}
local released = 0
local rev = '0'
local held = redis.call('HMGET', leaderKey, 'session', 'rev')
if held[1] == session and (fence == '' or held[2] == fence) then
  rev = held[2] or '0'
  redis.call('DEL', leaderKey)
  redis.call('HSET', lastKey, 'node', nodeId, 'state', 'released', 'rev', rev)
  event(nodeId, 'released', rev, reason)
  released = 1
end
if deregister then
  local o = decode(redis.call('HGET', infoKey, nodeId))
  if o and o.session == session then
    redis.call('ZREM', nodesKey, nodeId)
    redis.call('HDEL', infoKey, nodeId)
  end
elseif reason == 'stepdown' or reason == 'start-failed' then
  -- It holds off now: the others must not defer to it (priority) until its next operation says so.
  local o = decode(redis.call('HGET', infoKey, nodeId))
  if o and o.session == session and o.eligible == true then
    o.eligible = false
    redis.call('HSET', infoKey, nodeId, cjson.encode(o))
  end
end
if released == 1 then notice('released', rev) end
return released
`;

/** Live registrations and the leader. Replies `{leaderNode|nil, now, id1, info1, id2, info2, ...}`. */
const LIVE = `${PRELUDE}
local out = {redis.call('HGET', leaderKey, 'node'), now}
local live = redis.call('ZRANGEBYSCORE', nodesKey, '(' .. now, '+inf')
for _, id in ipairs(live) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGET', infoKey, id) or ''
end
return out
`;

function script(name: string, lua: string): LeaseScript {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') };
}

export const LEASE_SCRIPTS = {
  acquire: script('acquire', ACQUIRE),
  refresh: script('refresh', REFRESH),
  observe: script('observe', OBSERVE),
  release: script('release', RELEASE),
  live: script('live', LIVE),
} as const;
