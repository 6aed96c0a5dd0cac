-- cancel.lua: end a job that is waiting, paused or running, for good (see
-- request_lib.lua). A running job loses its lease and owner at once, so its
-- daemon's outcome is fenced off; the cancel channel tells that daemon to stop
-- the work (it also finds out at its next lease renewal, should it miss this).
-- The message, JSON: [job id, owner, claim], so only the owner acts, and only on
-- that run (the job may be retried and claimed again soon after, by the same
-- daemon and at the same attempt). A running job's seq is its claim's (claim.lua).

return each_job(function(id, f)
    local owner = f[6]
    unschedule(id, f)
    unqueue(id, f)
    end_run(id)
    hdel(PREFIX .. id, 'owner')
    local reply = transit(id, f, TARGET, owner and {owner = owner} or nil)
    release(id, TARGET)
    if owner then
        redis.call(PUBLISH, CANCEL, cjson.encode({id, owner, tonumber(f[2])}))
    end
    return reply
end, 'owner')
