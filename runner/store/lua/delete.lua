-- delete.lua: remove a job that is not running from Redis; its history keeps a
-- last "deleted" event (see control_lib.lua). A running job must be cancelled first.

return each_job(function(id, f)
    unschedule(id, f)
    redis.call('ZREM', DEAD, id)
    local reply = transit(id, f, TARGET)
    redis.call('DEL', PREFIX .. id)
    return reply
end)
