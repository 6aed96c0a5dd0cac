-- retry.lua: run a failed or cancelled job again, due now, with a fresh attempt
-- budget (see request_lib.lua). A job brought back from PostgreSQL for it
-- (revive.lua) says so in the event.

return each_job(function(id, f)
    hset(PREFIX .. id, 'attempt', 0, 'due_at', string.format('%d', NOW))
    hdel(PREFIX .. id, 'error', 'result', 'revived')
    redis.call('PERSIST', PREFIX .. id)
    redis.call('ZREM', DEAD, id)
    schedule(id, f[4], NOW)
    return transit(id, f, TARGET, {due_at = NOW, previous_attempts = tonumber(f[3]),
        revived = f[6] and true or nil})
end, 'revived')
