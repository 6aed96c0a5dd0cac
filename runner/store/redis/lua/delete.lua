-- delete.lua: remove a job that is not running; its history keeps a last "deleted"
-- event (see request_lib.lua). A running job must be cancelled first.
-- What stays in Redis is a small record of the deletion (state, seq, task, when),
-- forgotten like a finished job once Postgres has recorded it (forget.lua, which
-- also retires a chosen id): until then, a second request or an enqueue with that
-- id learns that the job was deleted, not what Postgres held before.

return each_job(function(id, f)
    unschedule(id, f)
    unqueue(id, f)
    redis.call('ZREM', DEAD, id)
    local reply = transit(id, f, TARGET, f[7] and {revived = true} or nil)
    release(id, TARGET)
    local key = PREFIX .. id
    redis.call('DEL', key)
    hset(key, 'state', TARGET, 'seq', tonumber(f[2]) + 1, 'updated_at', NOW, 'task', f[5])
    if f[6] then
        hset(key, 'chosen_id', 1)
    end
    return reply
end, 'chosen_id', 'revived')
