-- revive.lua: hold again in Redis jobs it had forgotten (finished, then expired after
-- keep_finished), as PostgreSQL recorded them, for an operator's request on them
-- (see runner/store/revival.py). Being brought back is no transition: no event. The
-- request that follows writes its own, at the job's next seq, and says the job was
-- revived (the `revived` field, which that request removes). A job nobody's request
-- takes within ARGV[2] ms is forgotten again.
--
-- KEYS[1] job hash key prefix ({prefix}:job:)   KEYS[2] retired ids ({prefix}:retired)
-- ARGV[1] now (ms)   ARGV[2] how long a revived job is kept if no request takes it (ms)
-- ARGV[3] the jobs, JSON: [[id, {field: value}], ...], fields named in full (lib.lua)
-- Reply: one integer a job: 1 brought back, 0 Redis holds it already (left as it is).

local replies = {}
for i, job in ipairs(cjson.decode(ARGV[3])) do
    local id, key = job[1], KEYS[1] .. job[1]
    if redis.call('EXISTS', key) == 1 then
        replies[i] = 0
    else
        for field, value in pairs(job[2]) do
            hset(key, field, value)
        end
        hset(key, 'revived', ARGV[1])
        if redis.call('ZSCORE', KEYS[2], id) then
            hset(key, 'chosen_id', 1)
        end
        redis.call('PEXPIRE', key, ARGV[2])
        replies[i] = 1
    end
end
return replies
