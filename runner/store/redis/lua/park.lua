-- park.lua: take waiting jobs out of Redis because they now wait in PostgreSQL
-- (parked: due beyond the park horizon, see parking.py). PostgreSQL got each job
-- first, at the seq it had then; a job whose seq moved on since (claimed, updated,
-- cancelled by someone else in between) stays, and its parked copy is dropped.
-- Parking is no transition: no event, the history goes on when it comes back.
-- A job whose caller chose its id is retired while it waits there (lib.lua),
-- scored by its due time (the history keeper never trims a time to come).
--
-- KEYS, ARGV: as request_lib.lua; ARGV[3] is the waiting states (",retrying,
-- scheduled,"), ARGV[4] the state a parked job's id is retired in (scheduled, as
-- for any parked job, whatever state it waits in), and ARGV[8] the JSON {id: seq}
-- of the copies PostgreSQL holds.
-- Reply: "ok:<its state>" (taken out), "refused:<state>" or "refused:moved" (stays),
-- "missing", or "malformed:<reason>".

local SEQS = cjson.decode(REQUEST)

return each_job(function(id, f)
    if tonumber(f[2]) ~= tonumber(SEQS[id]) then
        return 'refused:moved'
    end
    if f[8] then
        return 'refused:unique'  -- it holds its unique key in Redis (limits/unique.py)
    end
    if f[9] or f[10] then
        return 'refused:bound'  -- it counts against a max_queued (limits/bounds.py)
    end
    unschedule(id, f)
    redis.call('DEL', PREFIX .. id)
    if f[6] then
        retire(RETIRED, id, tonumber(f[7]) or NOW, TARGET, RETIRED_LIST)
    end
    return 'ok:' .. f[1]
end, 'chosen_id', 'due_at', 'unique', 'bound', 'queue_bound')
