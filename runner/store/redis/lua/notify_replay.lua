-- notify_replay.lua: send dead letters of a webhook sink again: each moves from the
-- dead-letter stream to the replay stream, which the sink's holder delivers (with a
-- fresh retry budget) before acknowledging and deleting it.
--
-- KEYS[1] the sink's dead letters ({prefix}:notify:NAME:dead)
-- KEYS[2] the sink's replay stream ({prefix}:notify:NAME:replay)
-- ARGV[1] an event id ("job_id:seq"), or "" for every dead letter
-- ARGV[2] the most entries to move in this call
-- Reply: how many dead letters moved.

local wanted, most = ARGV[1], tonumber(ARGV[2])
local moved = 0
local after = '-'
while moved < most do
    local entries = redis.call('XRANGE', KEYS[1], after, '+', 'COUNT', 200)
    if #entries == 0 then
        break
    end
    for _, entry in ipairs(entries) do
        local id, fields = entry[1], entry[2]
        local event_id = nil
        for i = 1, #fields, 2 do
            if fields[i] == 'event_id' then
                event_id = fields[i + 1]
            end
        end
        if wanted == '' or event_id == wanted then
            redis.call('XADD', KEYS[2], '*', unpack(fields))
            redis.call('XDEL', KEYS[1], id)
            moved = moved + 1
            if moved >= most then
                break
            end
        end
        after = '(' .. id
    end
end
return moved
