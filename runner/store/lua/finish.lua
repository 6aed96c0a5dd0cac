-- finish.lua: record the outcome of a batch of running jobs.
-- Fenced: a job is only changed if it is still running, owned by this daemon and
-- at the same attempt, so a daemon that lost its lease cannot overwrite newer state.
--
-- KEYS[1]     running leases sorted set   ({prefix}:leases)
-- KEYS[2]     transition stream           ({prefix}:events)
-- KEYS[3..5]  due sorted sets: async, io, cpu
-- KEYS[6]     job hash key prefix ({prefix}:job:), see claim.lua
-- ARGV[1] now (ms)   ARGV[2] daemon id   ARGV[3] keep finished jobs (ms, 0 = forever)
-- ARGV[4] allowed source states (",running,")   ARGV[5] wake channel
-- then 7 values a job: id, attempt, target state, due at ("" unless it goes back to
--   the schedule), result (JSON or ""), error (or ""), event detail (JSON)
-- Reply: one integer a job: 1 recorded, 0 fenced off (lease lost or state changed).

local now, daemon, keep_ms = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local sources, wake = ARGV[4], ARGV[5]
local prefix = KEYS[6]
local due_keys = {async = KEYS[3], io = KEYS[4], cpu = KEYS[5]}
local replies, events = {}, {}

for i = 6, #ARGV, 7 do
    local id, attempt, target, due_at = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
    local result, err, detail = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
    local key = prefix .. id
    local f = redis.call('HMGET', key, 'state', 'owner', 'attempt', 'seq', 'kind')
    if f[1] and string.find(sources, ',' .. f[1] .. ',', 1, true)
            and f[2] == daemon and f[3] == attempt then
        local seq = tonumber(f[4]) + 1
        redis.call('HSET', key, 'state', target, 'seq', seq, 'updated_at', now)
        redis.call('HDEL', key, 'owner')
        if result ~= '' then redis.call('HSET', key, 'result', result) end
        if err ~= '' then redis.call('HSET', key, 'error', err) end
        redis.call('ZREM', KEYS[1], id)
        if due_at ~= '' then
            local due_key = due_keys[f[5]]
            local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
            redis.call('ZADD', due_key, due_at, id)
            redis.call('HSET', key, 'due_at', due_at)
            if first[2] == nil or tonumber(due_at) < tonumber(first[2]) then
                redis.call('PUBLISH', wake, due_at)
            end
        elseif keep_ms > 0 then
            redis.call('PEXPIRE', key, keep_ms)
        end
        events[#events + 1] = cjson.encode({id, seq, f[1], target, now, daemon,
            tonumber(attempt), detail})
        replies[#replies + 1] = 1
    else
        replies[#replies + 1] = 0
    end
end

if #events > 0 then
    redis.call('XADD', KEYS[2], '*', 'e', '[' .. table.concat(events, ',') .. ']')
end
return replies
