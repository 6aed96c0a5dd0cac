-- finish.lua: record the outcome of a batch of running jobs.
-- Fenced: a job is only changed if it is still running under the same claim (owned
-- by this daemon, its seq still the claim's; see claim.lua), so a daemon that lost
-- its lease, or whose run was cancelled and the job retried and claimed again,
-- cannot overwrite newer state.
-- A job whose hash turned malformed meanwhile is set aside (see lib.lua).
--
-- KEYS[1]     running leases sorted set   ({prefix}:leases)
-- KEYS[2]     transition stream           ({prefix}:events)
-- KEYS[3..5]  due sorted sets: async, io, cpu
-- KEYS[6]     job hash key prefix ({prefix}:job:), see claim.lua
-- KEYS[7]     dead-letter sorted set      ({prefix}:dead)
-- KEYS[8]     due set key prefix ({prefix}:due:), for priorities 1-9 (see lib.lua)
-- A finished job stays in Redis until the recorder has written it to Postgres
-- (forget.lua sets its expiry then), so its id is never free before it has a history.
--
-- ARGV[1] now (ms)   ARGV[2] daemon id
-- ARGV[3] allowed source states (",running,")   ARGV[4] wake channel
-- ARGV[5] the outcomes, JSON: [[id, claim (the claim's seq), target state, due at (0 unless it goes
--         back to the schedule), result (JSON text or ""), error (or ""),
--         event detail (JSON text), give back (1: the attempt does not count, as
--         for a job handed back at shutdown), hand over (a JSON list of the jobs its
--         dependents wait for instead, once it succeeded: its fan-out's last jobs; or
--         "")], ...]
-- ARGV[6] failed state (for a job set aside)
-- ARGV[7] the publish command: PUBLISH, or SPUBLISH on a Redis Cluster
-- ARGV[8] the states that release a job's dependents (runner/states.py DEPENDENCY_ARGV):
--         a job that ends for good releases the jobs waiting on it (see lib.lua)
-- Reply: one integer a job: 1 recorded, 0 fenced off (lease lost or state changed),
--        2 set aside (malformed).

local now, daemon = tonumber(ARGV[1]), ARGV[2]
local sources, wake, failed = ARGV[3], ARGV[4], ARGV[6]
local prefix, dead = KEYS[6], KEYS[7]
local due_keys = {async = KEYS[3], io = KEYS[4], cpu = KEYS[5]}
local replies, events = {}, {}
local slot_ctx = {due = due_keys, prefix = prefix, wake = wake, publish = ARGV[7]}
local dep_ctx = {now = now, by = daemon, events = events, due = due_keys, prefix = prefix,
    wake = wake, publish = ARGV[7], states = cjson.decode(ARGV[8])}

local function finish(o)
    local id, claim, target, due_at = o[1], o[2], o[3], o[4]
    local key = prefix .. id
    local f = read_job(key, 'state', 'owner', 'attempt', 'seq', 'kind', 'priority', 'cap',
        'cap_group', 'dependents')
    if not (f and f[1] and string.find(sources, ',' .. f[1] .. ',', 1, true)
            and f[2] == daemon) then
        return 0
    end
    local bad = {}
    need_whole(bad, 'seq', f[4], 1)
    if #bad == 0 and tonumber(f[4]) ~= claim then
        return 0  -- another run: this one was cancelled or reaped meanwhile
    end
    need_whole(bad, 'attempt', f[3], 1)
    if due_at > 0 then need_kind(bad, f[5]) end
    redis.call('ZREM', KEYS[1], id)
    free_slot_later(id, f[7], f[8])
    if #bad > 0 then
        local fields = {state = f[1], attempt = f[3], seq = f[4]}
        quarantine(dead, key, id, now, daemon, failed, malformed(bad), fields, events)
        if f[9] then release_dependents(id, failed, dep_ctx) end  -- it failed, for good
        return 2
    end
    local seq, attempt = claim + 1, tonumber(f[3])
    hset(key, 'state', target, 'seq', seq, 'updated_at', now)
    hdel(key, 'owner')
    if o[8] == 1 then hset(key, 'attempt', attempt - 1) end
    if o[5] ~= '' then hset(key, 'result', o[5]) end
    if o[6] ~= '' then hset(key, 'error', o[6]) end
    if due_at > 0 then
        local due_key = due_set(due_keys, f[5], f[6])
        local first = redis.call('ZRANGE', due_key, 0, 0, 'WITHSCORES')
        redis.call('ZADD', due_key, due_at, id)
        hset(key, 'due_at', string.format('%d', due_at))
        if first[2] == nil or due_at < tonumber(first[2]) then
            redis.call(ARGV[7], wake, string.format('%d', due_at))
        end
    end
    events[#events + 1] = cjson.encode({id, seq, f[1], target, now, daemon, attempt, o[7]})
    if f[9] and o[9] and o[9] ~= '' and target == dep_ctx.states.succeeded then
        hand_over(id, o[9], dep_ctx)
    end
    if f[9] and string.find(dep_ctx.states.ended, ',' .. target .. ',', 1, true) then
        release_dependents(id, target, dep_ctx)
    end
    return 1
end

for i, o in ipairs(cjson.decode(ARGV[5])) do
    replies[i] = finish(o)
end

flush_freed_slots(slot_ctx)
if #events > 0 then
    redis.call('XADD', KEYS[2], '*', 'e', '[' .. table.concat(events, ',') .. ']')
end
return replies
