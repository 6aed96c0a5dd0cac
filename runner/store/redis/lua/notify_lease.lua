-- notify_lease.lua: hold, renew or give up the lease that lets one daemon deliver a
-- webhook sink's events (one holder at a time keeps each job's events in seq order).
--
-- KEYS[1] the sink's lease ({prefix}:notify:NAME:lease)
-- ARGV[1] this daemon's id   ARGV[2] "hold" or "release"   ARGV[3] lease length (ms)
-- Reply: 1 when this daemon holds the lease now (hold) or gave it up (release),
-- 0 when another daemon holds it.

local holder = redis.call('GET', KEYS[1])
if ARGV[2] == 'release' then
    if holder == ARGV[1] then
        redis.call('DEL', KEYS[1])
        return 1
    end
    return 0
end
if holder and holder ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
