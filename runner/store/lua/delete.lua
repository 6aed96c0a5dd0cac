-- delete.lua: remove a job that is not running from Redis; its history keeps a
-- last "deleted" event (see control_lib.lua). A running job must be cancelled first.
-- A job whose caller chose its id is retired (lib.lua): its history is kept, so
-- the id is not free.

return each_job(function(id, f)
    unschedule(id, f)
    redis.call('ZREM', DEAD, id)
    local reply = transit(id, f, TARGET)
    redis.call('DEL', PREFIX .. id)
    if f[6] then
        retire(RETIRED, id, NOW, TARGET, RETIRED_LIST)
    end
    return reply
end, 'chosen_id')
