-- claim.lua: move due jobs to running, at most the given count per kind.
-- The daemon asks only for as many jobs as it can start right now (no prefetch).
-- A malformed job (a field missing or not a number, a key of another type) is
-- set aside with the reason instead of claimed (see lib.lua).
--
-- KEYS[1..3]  due sorted sets: async, io, cpu   ({prefix}:due:<kind>)
-- KEYS[4]     running leases sorted set          ({prefix}:leases)
-- KEYS[5]     transition stream                  ({prefix}:events)
-- KEYS[6]     job hash key prefix                ({prefix}:job:) - job hashes are
--             <KEYS[6]><id>; they share the {prefix} hash tag, hence the slot.
-- KEYS[7]     dead-letter sorted set             ({prefix}:dead)
-- ARGV[1] now (ms)   ARGV[2] daemon id   ARGV[3] lease expiry (ms)
-- ARGV[4] allowed source states (",a,b,")   ARGV[5] target state ("running")
-- ARGV[6..8] how many async, io and cpu jobs to claim at most
-- KEYS[8]     paused tasks hash ({prefix}:paused): task name (or ":all") -> who, when
-- KEYS[9]     held jobs key prefix ({prefix}:held:), a sorted set per paused task
-- ARGV[9] failed state (for a job set aside)   ARGV[10] the paused-tasks entry of maintenance mode
-- ARGV[11] priority aging (ms): what one level of priority is worth in waiting time
-- ARGV[12] the horizon (ms, with microseconds): jobs due up to it are claimed; past
--          now by the daemon's lead, a job it will hold and start at its due time
--          exactly (runner/daemon/lead.py). Fairness turns and rates go by now.
-- KEYS[10..36] due sorted sets of priorities 1-9: async, io, cpu, 9 each (see lib.lua)
-- KEYS[37]     due set key prefix ({prefix}:due:), which names them (see lib.lua)
-- Among due jobs, the one with the lowest (due time - priority x aging) starts first:
-- a higher priority passes ahead of a lower one only if it became due less than
-- (difference in priority) x aging after it, so no flood of urgent jobs holds a
-- lower one back for longer than 9 x aging beyond the jobs already ahead of it.
-- A due job of a paused task is moved to its task's held set (scored by due time)
-- instead of claimed: it stays due, and resuming the task puts it back. A due job
-- whose concurrency group has no free slot waits in the group's capped set until
-- one frees (see lib.lua). A task with a fair key shares its starts between its key
-- values in turn (serve_turns, and lib.lua). With
-- ARGV[10] paused (maintenance), nothing is claimed and nothing is reported due, so
-- daemons sleep until woken.
-- Reply: {jobs, next_due, set_aside}
--   jobs: flat list, 10 values a job: id, task, kind, attempt, max_attempts, args,
--         kwargs, due time (its score: ms with microseconds), timeout (seconds, ""
--         for the task's own), and the claim: the seq of this claim's event. Owner
--         and claim name this run alone (a retried job starts its attempts again, so
--         owner and attempt do not): finish.lua and renew.lua fence on them. No
--         transition keeps a job running, so its seq stays the claim's until the run
--         ends.
--   next_due: for each kind, the earliest due time left in its set, or "" if none
--   set_aside: flat list, 2 values a job: id, reason

local now, daemon, lease_until = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local horizon = ARGV[12] ~= nil and ARGV[12] ~= '' and ARGV[12] or ARGV[1]  -- as text: every digit
local sources, target, failed = ARGV[4], ARGV[5], ARGV[9]
local prefix, dead = KEYS[6], KEYS[7]
local kinds = {'async', 'io', 'cpu'}
local jobs, events, next_due, set_aside = {}, {}, {}, {}
local paused = {}
local joined = {}  -- kinds whose fairness groups a job joined in this call
local listed = redis.call('HKEYS', KEYS[8])
for i = 1, #listed do
    paused[listed[i]] = true
end
if paused[ARGV[10]] then
    return {jobs, {'', '', ''}, set_aside}
end

-- `in_turn`: the job was taken from its fairness group (not from a due set).
-- `score`: its score in the due set it was taken from (nil: its due_at).
local function claim(id, kind, in_turn, score)
    local key = prefix .. id
    local f = read_job(key, 'state', 'task', 'attempt', 'max_attempts', 'args', 'kwargs',
        'due_at', 'seq', 'kind', 'timeout', 'cap', 'cap_group', 'rate', 'rate_group', 'bound',
        'fair_group', 'queue_bound')
    local bad = {}
    if f == nil then
        bad[1] = 'the key is not a hash'
    elseif not f[1] then
        if not any_field(f) then
            return  -- the job is gone: a stale member, dropped
        end
        bad[1] = 'state=missing'
    elseif not string.find(sources, ',' .. f[1] .. ',', 1, true) then
        return  -- not waiting any more: a stale member, dropped
    else
        if not f[2] or f[2] == '' then bad[#bad + 1] = 'task=' .. shown(f[2]) end
        need_whole(bad, 'attempt', f[3], 0)
        need_whole(bad, 'max_attempts', f[4], 1)
        need_whole(bad, 'due_at', f[7], -MAX_SAFE)
        need_whole(bad, 'seq', f[8], 1)
        need_kind(bad, f[9])
    end
    if #bad > 0 then
        local reason = malformed(bad)
        local fields = f and {state = f[1], attempt = f[3], seq = f[8]}
        quarantine(dead, key, id, now, daemon, failed, reason, fields, events)
        set_aside[#set_aside + 1], set_aside[#set_aside + 2] = id, reason
        return
    end
    if paused[f[2]] then
        redis.call('ZADD', KEYS[9] .. f[2], f[7], id)
        return
    end
    if not in_turn and f[16] and f[16] ~= '' then
        wait_fair(id, kind, f[16], f[7])  -- it joins its group, for the group's turn
        joined[kind] = true
        return
    end
    local limit, group = cap_of(f[11], f[12])
    if limit and not take_slot(id, limit, group, f[7], now, prefix, target) then
        return  -- every slot of its group is taken: it waits for one (see lib.lua)
    end
    local interval, tolerance = rate_of(f[13], f[14])
    if interval then
        local allowed, at = rate_allows(f[14], interval, tolerance, now)
        if not allowed then
            if limit then untake_slot(group) end
            wait_rated(id, f[14], f[7], at)
            return  -- its group's rate allows no start now: it waits (see lib.lua)
        end
    end
    local attempt, seq = tonumber(f[3]) + 1, tonumber(f[8]) + 1
    local due = score or f[7]
    -- A job claimed inside the lead is held until its due time: its history says how
    -- long (its claim keeps its own time: a request after it comes after it).
    local late = now - tonumber(due)
    local detail = '{"late_ms":' .. string.format('%d', late) .. '}'
    if late < 0 then
        detail = '{"late_ms":0,"held_ms":' .. string.format('%.3f', -late) .. '}'
    end
    hset(key, 'state', target, 'attempt', attempt, 'seq', seq,
        'owner', daemon, 'updated_at', now, 'started_at', now)
    redis.call('ZADD', KEYS[4], lease_until, id)
    if f[15] or f[17] then
        unqueue_later(lists_of(f[2], f[15], f[17]), id)  -- it leaves its waiting lists (lib.lua)
    end
    events[#events + 1] = cjson.encode({id, seq, f[1], target, now, daemon, attempt, detail})
    local n = #jobs
    jobs[n + 1], jobs[n + 2], jobs[n + 3], jobs[n + 4] = id, f[2], kind, attempt
    jobs[n + 5], jobs[n + 6], jobs[n + 7], jobs[n + 8] = f[4], f[5] or '', f[6] or '', due
    jobs[n + 9], jobs[n + 10] = f[10] or '', seq
end

local aging = tonumber(ARGV[11]) or 0

-- The kind's due sets that hold jobs: level 0 always, the others when not empty, and
-- its fairness groups' turns (at level 0) when any group waits (see lib.lua).
local function used_levels(kind)
    local sets = {{0, KEYS[kind == 'async' and 1 or kind == 'io' and 2 or 3]}}
    local others = {}
    for level = 1, 9 do
        others[level] = level_key(kind, level)
    end
    others[10] = turns_key(kind)
    if redis.call('EXISTS', unpack(others)) > 0 then
        for level = 1, 9 do
            if redis.call('EXISTS', others[level]) == 1 then
                sets[#sets + 1] = {level, others[level]}
            end
        end
        if redis.call('EXISTS', others[10]) == 1 then
            zset_or_aside(others[10])
            sets[#sets + 1] = {0, others[10], true}
        end
    end
    return sets
end

-- Up to `limit` due ids of the kind, in the order they should start, each taken out
-- of its set, with their scores (by id); and the fairness groups whose turn has come
-- among them (out of the turns, which go by now, not the horizon).
local function take_due(sets, limit)
    local scores = {}
    if #sets == 1 then  -- priority 0 alone, the common case: the set's own order
        local got = redis.call('ZRANGEBYSCORE', sets[1][2], '-inf', horizon, 'WITHSCORES',
            'LIMIT', 0, limit)
        local ids = {}
        for i = 1, #got, 2 do
            ids[#ids + 1], scores[got[i]] = got[i], got[i + 1]
        end
        if #ids > 0 then
            redis.call('ZREM', sets[1][2], unpack(ids))
        end
        return ids, {}, scores
    end
    local picks = {}
    for _, set in ipairs(sets) do
        local got = redis.call('ZRANGEBYSCORE', set[2], '-inf', set[3] and now or horizon,
            'WITHSCORES', 'LIMIT', 0, limit)
        for i = 1, #got, 2 do
            picks[#picks + 1] = {got[i], tonumber(got[i + 1]) - set[1] * aging, set[2], #picks}
            scores[got[i]] = got[i + 1]
        end
    end
    table.sort(picks, function(a, b)
        if a[2] ~= b[2] then return a[2] < b[2] end
        return a[4] < b[4]
    end)
    local ids, groups, by_set, turns = {}, {}, {}, sets[#sets][3] and sets[#sets][2]
    for i = 1, math.min(limit, #picks) do
        local id, key = picks[i][1], picks[i][3]
        if key == turns then groups[#groups + 1] = id else ids[#ids + 1] = id end
        by_set[key] = by_set[key] or {}
        table.insert(by_set[key], id)
    end
    for key, members in pairs(by_set) do
        redis.call('ZREM', key, unpack(members))
    end
    return ids, groups, scores
end

local TURNS_A_MS = 1024  -- turns told apart within one millisecond (exact in a double)

-- The groups whose turn came share `room` starts equally (a group with fewer due jobs
-- than its share leaves the rest to the others); their jobs start one of each group
-- in turn, and each group's next turn is now, or its next job's due time if later.
local function serve_turns(kind, groups, room)
    local taken, active = {}, {}
    for i, group in ipairs(groups) do
        zset_or_aside(fair_key(group))
        taken[group], active[i] = {}, group
    end
    while room > 0 and #active > 0 do
        local share, still = math.max(1, math.floor(room / #active)), {}
        for _, group in ipairs(active) do
            local want = math.min(share, room)
            local ids = want > 0 and redis.call('ZRANGEBYSCORE', fair_key(group), '-inf', now,
                'LIMIT', 0, want) or {}
            if #ids > 0 then
                redis.call('ZREM', fair_key(group), unpack(ids))
                count_fair(kind, -#ids)
                for _, id in ipairs(ids) do table.insert(taken[group], id) end
            end
            room = room - #ids
            if want > 0 and #ids == want then still[#still + 1] = group end
        end
        active = still
    end
    for i = 1, math.huge do
        local any = false
        for _, group in ipairs(groups) do
            local id = taken[group][i]
            if id then claim(id, kind, true); any = true end
        end
        if not any then break end
    end
    -- A group served now goes after every group whose turn came earlier, and after
    -- those served before it in the same millisecond (by another claim, maybe): its
    -- turn is now - 1 + a fraction that grows with each turn given (TURN_STEP). Ties
    -- would otherwise go by name, and one key could win every claim of a millisecond.
    local given = redis.pcall('INCRBY', KEYS[#KEYS] .. 'fairclock', #groups)
    given = type(given) == 'number' and given - #groups or 0  -- another type: no order kept
    for i, group in ipairs(groups) do
        local head = redis.call('ZRANGE', fair_key(group), 0, 0, 'WITHSCORES')[2]
        if head then
            local turn = now - 1 + ((given + i) % TURNS_A_MS) / TURNS_A_MS
            redis.call('ZADD', turns_key(kind), math.max(turn, tonumber(head)), group)
        end
    end
end

wake_rated(now, {async = KEYS[1], io = KEYS[2], cpu = KEYS[3]}, prefix)

for k = 1, 3 do
    local limit = tonumber(ARGV[5 + k])
    local sets = used_levels(kinds[k])
    if limit > 0 then
        local ids, groups, scores = take_due(sets, limit)
        for _, id in ipairs(ids) do
            claim(id, kinds[k], false, scores[id])
        end
        if #groups > 0 then
            serve_turns(kinds[k], groups, limit - #ids)
        end
    end
    local soonest, shown_as = nil, ''
    if joined[kinds[k]] and not sets[#sets][3] then
        sets[#sets + 1] = {0, turns_key(kinds[k]), true}
    end
    for _, set in ipairs(sets) do
        local first = redis.call('ZRANGE', set[2], 0, 0, 'WITHSCORES')[2]
        if first and set[3] then
            first = string.format('%d', math.floor(tonumber(first)))  -- a turn: see serve_turns
        end
        if first and (soonest == nil or tonumber(first) < soonest) then
            soonest, shown_as = tonumber(first), first
        end
    end
    local rate_wake = redis.call('ZRANGE', rate_wake_key(), 0, 0, 'WITHSCORES')[2]
    if rate_wake and (soonest == nil or tonumber(rate_wake) < soonest) then
        shown_as = rate_wake  -- a rate-limited group allows a start then (see lib.lua)
    end
    next_due[k] = shown_as
end

flush_claim_limits(now)
flush_unqueued()
if #events > 0 then
    redis.call('XADD', KEYS[5], '*', 'e', '[' .. table.concat(events, ',') .. ']')
end
return {jobs, next_due, set_aside}
