-- forget.lua: let Redis forget finished jobs that Postgres has recorded.
-- A finished job's hash has no expiry until its final transition is in Postgres:
-- until then Redis is the only place that knows the id is taken. The recorder
-- calls this after each commit with the jobs Postgres now holds as finished; a
-- job is only given its expiry if Redis still has it in that state at that seq
-- (it may have been retried since) and it was not set aside (the dead-letter set
-- keeps those for an operator).
--
-- A job whose caller chose its id is retired at once (see lib.lua): once its hash
-- expires, the retired ids still refuse the id while its history is kept.
--
-- KEYS[1]     job hash key prefix ({prefix}:job:), see claim.lua
-- KEYS[2]     dead-letter sorted set ({prefix}:dead)
-- KEYS[3]     retired ids ({prefix}:retired)
-- ARGV[1] keep finished jobs (ms)   ARGV[2] finished states (",a,b,")
-- ARGV[3] the jobs, JSON: [[id, seq], ...]   ARGV[4] now (ms)
-- ARGV[5] the retired states, JSON (see lib.lua)
-- Reply: how many jobs were given their expiry.

local keep_ms, finished = tonumber(ARGV[1]), ARGV[2]
local forgotten = 0
for _, job in ipairs(cjson.decode(ARGV[3])) do
    local id, seq = job[1], job[2]
    local f = read_job(KEYS[1] .. id, 'state', 'seq', 'chosen_id')
    if f and f[1] and string.find(finished, ',' .. f[1] .. ',', 1, true)
            and tonumber(f[2]) == seq and not redis.call('ZSCORE', KEYS[2], id) then
        redis.call('PEXPIRE', KEYS[1] .. id, keep_ms)
        if f[3] then
            retire(KEYS[3], id, tonumber(ARGV[4]), f[1], ARGV[5])
        end
        forgotten = forgotten + 1
    end
end
return forgotten
