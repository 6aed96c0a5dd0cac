-- claim.lua: move due jobs to running, at most the given count per kind.
-- The daemon asks only for as many jobs as it can start right now (no prefetch).
--
-- KEYS[1..3]  due sorted sets: async, io, cpu   ({prefix}:due:<kind>)
-- KEYS[4]     running leases sorted set          ({prefix}:leases)
-- KEYS[5]     transition stream                  ({prefix}:events)
-- KEYS[6]     job hash key prefix                ({prefix}:job:) - job hashes are
--             <KEYS[6]><id>; they share the {prefix} hash tag, hence the slot.
-- ARGV[1] now (ms)   ARGV[2] daemon id   ARGV[3] lease expiry (ms)
-- ARGV[4] allowed source states (",a,b,")   ARGV[5] target state ("running")
-- ARGV[6..8] how many async, io and cpu jobs to claim at most
-- Reply: {jobs, next_due}
--   jobs: flat list, 8 values a job: id, task, kind, attempt, max_attempts, args,
--         kwargs, due_at
--   next_due: for each kind, the earliest due time left in its set, or "" if none

local now, daemon, lease_until = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local sources, target = ARGV[4], ARGV[5]
local prefix = KEYS[6]
local kinds = {'async', 'io', 'cpu'}
local jobs, events, next_due = {}, {}, {}

for k = 1, 3 do
    local limit = tonumber(ARGV[5 + k])
    if limit > 0 then
        local ids = redis.call('ZRANGEBYSCORE', KEYS[k], '-inf', now, 'LIMIT', 0, limit)
        if #ids > 0 then
            redis.call('ZREM', KEYS[k], unpack(ids))
        end
        for _, id in ipairs(ids) do
            local key = prefix .. id
            local f = redis.call('HMGET', key, 'state', 'task', 'attempt', 'max_attempts',
                'args', 'kwargs', 'due_at', 'seq')
            -- A member whose job is gone or not waiting is stale and simply dropped.
            if f[1] and string.find(sources, ',' .. f[1] .. ',', 1, true) then
                local attempt = tonumber(f[3]) + 1
                local seq = tonumber(f[8]) + 1
                redis.call('HSET', key, 'state', target, 'attempt', attempt, 'seq', seq,
                    'owner', daemon, 'updated_at', now, 'started_at', now)
                redis.call('ZADD', KEYS[4], lease_until, id)
                local late = now - tonumber(f[7])
                events[#events + 1] = cjson.encode({id, seq, f[1], target, now, daemon,
                    attempt, '{"late_ms":' .. late .. '}'})
                local n = #jobs
                jobs[n + 1], jobs[n + 2], jobs[n + 3], jobs[n + 4] = id, f[2], kinds[k], attempt
                jobs[n + 5], jobs[n + 6], jobs[n + 7], jobs[n + 8] = f[4], f[5], f[6], f[7]
            end
        end
    end
    local first = redis.call('ZRANGE', KEYS[k], 0, 0, 'WITHSCORES')
    next_due[k] = first[2] or ''
end

if #events > 0 then
    redis.call('XADD', KEYS[5], '*', 'e', '[' .. table.concat(events, ',') .. ']')
end
return {jobs, next_due}
