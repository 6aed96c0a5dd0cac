-- enqueue.lua: create a job and put it in its kind's due-time sorted set.
-- Idempotent by job id: a second enqueue with the same id changes nothing.
--
-- KEYS[1]  job hash                 ({prefix}:job:<id>)
-- KEYS[2]  due sorted set of the job's kind ({prefix}:due:<kind>)
-- KEYS[3]  transition stream        ({prefix}:events)
-- ARGV[1]  job id          ARGV[2]  task name      ARGV[3]  kind (async|io|cpu)
-- ARGV[4]  args (JSON)     ARGV[5]  kwargs (JSON)  ARGV[6]  due at (ms since epoch)
-- ARGV[7]  now (ms)        ARGV[8]  max attempts   ARGV[9]  target state ("scheduled")
-- ARGV[10] event detail (JSON)  ARGV[11] origin (who enqueued)  ARGV[12] wake channel
-- ARGV[13] extra fields (JSON object of string values, e.g. cron schedule and tick)
-- Reply: {1, "<state>"} when created, {0, "<state>"} when the id already existed.

local job = KEYS[1]
local existing = redis.call('HGET', job, 'state')
if existing then
    return {0, existing}
end

local id, due, now, target = ARGV[1], tonumber(ARGV[6]), ARGV[7], ARGV[9]
redis.call('HSET', job,
    'id', id, 'task', ARGV[2], 'kind', ARGV[3], 'args', ARGV[4], 'kwargs', ARGV[5],
    'due_at', ARGV[6], 'state', target, 'attempt', 0, 'max_attempts', ARGV[8],
    'seq', 1, 'created_at', now, 'updated_at', now)
local extra = cjson.decode(ARGV[13])
for field, value in pairs(extra) do
    redis.call('HSET', job, field, value)
end

local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
redis.call('ZADD', KEYS[2], due, id)
if first[2] == nil or due < tonumber(first[2]) then
    redis.call('PUBLISH', ARGV[12], ARGV[6])
end

local event = cjson.encode({id, 1, '', target, tonumber(now), ARGV[11], 0, ARGV[10]})
redis.call('XADD', KEYS[3], '*', 'e', '[' .. event .. ']')
return {1, target}
