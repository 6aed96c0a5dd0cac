-- release_held.lua: put a resumed task's held jobs back in their kinds' due sets,
-- at most ARGV[2] a call (the caller repeats until none is left, so a task with a
-- million held jobs never blocks Redis for long).
--
-- KEYS[1..3]  due sorted sets: async, io, cpu
-- KEYS[4]     the task's held set ({prefix}:held:<task>)
-- KEYS[5]     job hash key prefix ({prefix}:job:)
-- KEYS[6]     due set key prefix ({prefix}:due:), for priorities 1-9 (see lib.lua)
-- ARGV[1] waiting states (",a,b,")   ARGV[2] most jobs to move   ARGV[3] wake channel
-- ARGV[4] the publish command: PUBLISH, or SPUBLISH on a Redis Cluster
-- Reply: how many jobs are still held.

local due_keys = {async = KEYS[1], io = KEYS[2], cpu = KEYS[3]}
local held = redis.call('ZRANGE', KEYS[4], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
local soonest = nil
for i = 1, #held, 2 do
    local id, due = held[i], tonumber(held[i + 1])
    local f = read_job(KEYS[5] .. id, 'state', 'kind', 'priority') or {}
    -- A job that moved on meanwhile (cancelled, deleted) is only dropped from the set.
    if f[1] and string.find(ARGV[1], ',' .. f[1] .. ',', 1, true) and due_keys[f[2]] then
        redis.call('ZADD', due_set(due_keys, f[2], f[3]), due, id)
        if soonest == nil or due < soonest then soonest = due end
    end
    redis.call('ZREM', KEYS[4], id)
end
if soonest then
    redis.call(ARGV[4], ARGV[3], string.format('%d', soonest))
end
return redis.call('ZCARD', KEYS[4])
