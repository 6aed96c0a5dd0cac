-- source_list_take.lua: take items off an application's list into this consumer's
-- processing list (the reliable-queue pattern), the landing list first (where a
-- blocking BLMOVE put an item while the list was empty). Each item is wrapped with
-- a token, "<generation>-<n>\n", given once and kept for the item's whole life, so
-- the job made from it has one id however often the item is taken over after a
-- crash. The generation is chosen once per list (ARGV[2] if the hash has none):
-- a sequence lost with Redis's data starts a new generation, never old ids again.
--
-- KEYS[1] the application's list
-- KEYS[2] this consumer's landing list
-- KEYS[3] this consumer's processing list
-- KEYS[4] the list's sequence hash (fields gen, n)
-- ARGV[1] most items to take   ARGV[2] a generation for a hash that has none
-- Reply: the wrapped items taken, oldest first.

local count = tonumber(ARGV[1])
local gen = redis.call('HGET', KEYS[4], 'gen')
if not gen then
    redis.call('HSET', KEYS[4], 'gen', ARGV[2])
    gen = ARGV[2]
end
local taken = {}
for _, from in ipairs({KEYS[2], KEYS[1]}) do
    while #taken < count do
        local item = redis.call('RPOP', from)
        if not item then
            break
        end
        local n = redis.call('HINCRBY', KEYS[4], 'n', 1)
        local wrapped = gen .. '-' .. n .. '\n' .. item
        redis.call('LPUSH', KEYS[3], wrapped)
        taken[#taken + 1] = wrapped
    end
end
return taken
