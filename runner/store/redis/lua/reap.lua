-- reap.lua: put back jobs whose lease expired (their daemon died or hung).
-- A job with attempts left goes back to the schedule, due now; one with none
-- left fails. Any live daemon may run this; the lease set makes it safe to race.
-- A malformed job is set aside with the reason (see lib.lua).
--
-- KEYS[1]     running leases sorted set   ({prefix}:leases)
-- KEYS[2]     transition stream           ({prefix}:events)
-- KEYS[3..5]  due sorted sets: async, io, cpu
-- KEYS[6]     job hash key prefix ({prefix}:job:), see claim.lua
-- KEYS[7]     dead-letter sorted set      ({prefix}:dead)
-- KEYS[8]     due set key prefix ({prefix}:due:), for priorities 1-9 (see lib.lua)
-- ARGV[1] now (ms)   ARGV[2] most jobs to reap   ARGV[3] reaping daemon id
-- ARGV[4] allowed source states (",running,")   ARGV[5] retry state   ARGV[6] failed state
-- ARGV[7] wake channel   ARGV[8] the publish command: PUBLISH, or SPUBLISH on a Redis Cluster
-- ARGV[9] the states that release a job's dependents (see finish.lua)
-- A failed job stays until it is recorded (see finish.lua).
-- Reply: flat list, 5 values a job: id, new state, attempt, previous owner, and the
--        reason it was set aside ("" unless malformed; then attempt is 0).

local now, limit, reaper = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local sources, retry_state, failed_state = ARGV[4], ARGV[5], ARGV[6]
local wake = ARGV[7]
local prefix, dead = KEYS[6], KEYS[7]
local due_keys = {async = KEYS[3], io = KEYS[4], cpu = KEYS[5]}
local reaped, events = {}, {}
local slot_ctx = {due = due_keys, prefix = prefix, wake = wake, publish = ARGV[8]}
local dep_ctx = {now = now, by = reaper, events = events, due = due_keys, prefix = prefix,
    wake = wake, publish = ARGV[8], states = cjson.decode(ARGV[9])}

local function put_back(id, key, f)
    local attempt, seq = tonumber(f[2]), tonumber(f[4]) + 1
    local owner = f[6] or ''
    local target = failed_state
    local reason = 'lease expired: daemon ' .. owner .. ' stopped renewing it'
    if attempt < tonumber(f[3]) then
        target = retry_state
        redis.call('ZADD', due_set(due_keys, f[5], f[7]), now, id)
        hset(key, 'due_at', now)
        redis.call(ARGV[8], wake, now)
    else
        hset(key, 'error', reason .. '; no attempts left')
    end
    hset(key, 'state', target, 'seq', seq, 'updated_at', now)
    hdel(key, 'owner')
    events[#events + 1] = cjson.encode({id, seq, f[1], target, now, reaper, attempt,
        cjson.encode({reason = reason, owner = owner})})
    return target, attempt, owner
end

local function reap(id)
    local key = prefix .. id
    local f = read_job(key, 'state', 'attempt', 'max_attempts', 'seq', 'kind', 'owner',
        'priority', 'cap', 'cap_group', 'dependents')
    local bad = {}
    if f == nil then
        bad[1] = 'the key is not a hash'
    elseif not (f[1] and string.find(sources, ',' .. f[1] .. ',', 1, true)) then
        return  -- finished meanwhile, or gone: nothing to put back
    else
        need_whole(bad, 'attempt', f[2], 0)
        need_whole(bad, 'max_attempts', f[3], 1)
        need_whole(bad, 'seq', f[4], 1)
        need_kind(bad, f[5])
    end
    if f then free_slot(id, f[8], f[9], slot_ctx) end
    local n = #reaped
    if #bad > 0 then
        local reason = malformed(bad)
        local fields = f and {state = f[1], attempt = f[2], seq = f[4]}
        quarantine(dead, key, id, now, reaper, failed_state, reason, fields, events)
        reaped[n + 1], reaped[n + 2], reaped[n + 3] = id, failed_state, 0
        reaped[n + 4], reaped[n + 5] = (f and f[6]) or '', reason
        if f and f[10] then release_dependents(id, failed_state, dep_ctx) end  -- failed
        return
    end
    reaped[n + 1], reaped[n + 2], reaped[n + 3], reaped[n + 4] = id, put_back(id, key, f)
    reaped[n + 5] = ''
    if f[10] and reaped[n + 2] == failed_state then
        release_dependents(id, failed_state, dep_ctx)  -- it ended for good (see lib.lua)
    end
end

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
    redis.call('ZREM', KEYS[1], id)
    reap(id)
end

if #events > 0 then
    redis.call('XADD', KEYS[2], '*', 'e', '[' .. table.concat(events, ',') .. ']')
end
return reaped
