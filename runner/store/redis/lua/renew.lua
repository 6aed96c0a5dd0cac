-- renew.lua: extend the leases of jobs this daemon still runs.
--
-- KEYS[1] running leases sorted set ({prefix}:leases)
-- KEYS[2] job hash key prefix ({prefix}:job:), see claim.lua
-- ARGV[1] daemon id   ARGV[2] new lease expiry (ms)   ARGV[3] running state name
-- then 2 values a job: id, claim (the seq of its claim; see claim.lua)
-- Reply: flat list, 2 values a job whose lease this daemon no longer holds (it must
-- stop the work): id, and the job's state now ("" if it is gone). A job cancelled
-- by request says "cancelled" here even if its daemon missed the cancel message.

local daemon, lease_until, running = ARGV[1], ARGV[2], ARGV[3]
local lost = {}
for i = 4, #ARGV, 2 do
    local id, claim = ARGV[i], tonumber(ARGV[i + 1])
    local f = read_job(KEYS[2] .. id, 'state', 'owner', 'seq') or {}
    if f[1] == running and f[2] == daemon and tonumber(f[3]) == claim then
        redis.call('ZADD', KEYS[1], 'XX', lease_until, id)
    else
        lost[#lost + 1], lost[#lost + 2] = id, f[1] or ''
    end
end
return lost
