-- source_list_recover.lua: a dead consumer's items become this consumer's. A consumer
-- is dead once its heartbeat key expired; it is checked again here, atomically with
-- the move, so a consumer that came back in between keeps its items. Items still in
-- its processing list keep their tokens; those in its landing list (moved there by a
-- blocking read just before the death) are wrapped now, as source_list_take.lua does.
--
-- KEYS[1] the list's consumers (a set)
-- KEYS[2] the dead consumer's heartbeat key
-- KEYS[3] the dead consumer's landing list
-- KEYS[4] the dead consumer's processing list
-- KEYS[5] this consumer's processing list
-- KEYS[6] the list's sequence hash (fields gen, n)
-- ARGV[1] the dead consumer's name   ARGV[2] a generation for a hash that has none
-- Reply: the wrapped items now in this consumer's processing list, or -1 if the
-- consumer is alive.

if redis.call('EXISTS', KEYS[2]) == 1 then
    return -1
end
local moved = {}
while true do
    local wrapped = redis.call('LMOVE', KEYS[4], KEYS[5], 'RIGHT', 'LEFT')
    if not wrapped then
        break
    end
    moved[#moved + 1] = wrapped
end
local gen = redis.call('HGET', KEYS[6], 'gen')
if not gen then
    redis.call('HSET', KEYS[6], 'gen', ARGV[2])
    gen = ARGV[2]
end
while true do
    local item = redis.call('RPOP', KEYS[3])
    if not item then
        break
    end
    local n = redis.call('HINCRBY', KEYS[6], 'n', 1)
    local wrapped = gen .. '-' .. n .. '\n' .. item
    redis.call('LPUSH', KEYS[5], wrapped)
    moved[#moved + 1] = wrapped
end
redis.call('SREM', KEYS[1], ARGV[1])
return moved
