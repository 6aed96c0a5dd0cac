-- rename_fields.lua: move job hashes written by runner before 0.x's one-letter field
-- names (see FIELD in lib.lua) to those names, so jobs waiting across an upgrade
-- are read whole instead of set aside as malformed. A hash already renamed, or
-- without a long `state`, is left as it is; the old `id` field is dropped (the key
-- names the job).
--
-- KEYS[1] job hash key prefix ({prefix}:job:)
-- ARGV[1] the job ids, JSON
-- Reply: how many hashes were renamed.

local renamed = 0
for _, id in ipairs(cjson.decode(ARGV[1])) do
    local key = KEYS[1] .. id
    local f = read_job(key, 'state')
    if f and not f[1] and redis.call('HEXISTS', key, 'state') == 1 then
        for name, short in pairs(FIELD) do
            local value = redis.call('HGET', key, name)
            if value then
                redis.call('HSET', key, short, value)
                redis.call('HDEL', key, name)
            end
        end
        redis.call('HDEL', key, 'id')
        renamed = renamed + 1
    end
end
return renamed
