-- lib.lua: checks shared by the scripts that read job hashes; put in front of
-- each script when it is loaded (scripts.py).
--
-- Anything in Redis is untrusted: another program may have written a job hash
-- with a missing or non-numeric field, or a key of another type under a job's
-- name. A Lua error does not undo the writes a script already made, so every
-- script reads and checks a job before it writes anything for it, and never
-- raises: a malformed job is set aside (quarantined), never half-changed.

local KIND = {async = true, io = true, cpu = true}
local MAX_SAFE = 9007199254740992  -- 2^53: integers beyond this lose precision

-- A whole number >= least, or nil.
local function whole(value, least)
    local n = tonumber(value)
    if n and n == math.floor(n) and n >= least and n < MAX_SAFE then
        return n
    end
    return nil
end

local function shown(value)
    if not value then
        return 'missing'
    end
    return string.format('%q', string.sub(value, 1, 40))
end

-- Adds "name=value" to `bad` when value is not a whole number >= least.
local function need_whole(bad, name, value, least)
    if whole(value, least) == nil then
        bad[#bad + 1] = name .. '=' .. shown(value)
    end
end

local function need_kind(bad, value)
    if not (value and KIND[value]) then
        bad[#bad + 1] = 'kind=' .. shown(value)
    end
end

-- A job hash's field names are one letter each: names are stored in every hash, and
-- a waiting job's hash is most of what it costs in Redis (runner/store/redis/fields.py
-- holds the same table). The scripts name fields in full; these turn the names.
local FIELD = {
    state = 's', seq = 'q', attempt = 'n', max_attempts = 'm', kind = 'k', task = 't',
    args = 'a', kwargs = 'w', due_at = 'd', created_at = 'c', updated_at = 'u',
    started_at = 'b', owner = 'o', result = 'r', error = 'e', timeout = 'x', chosen_id = 'i',
    priority = 'p', cap = 'l', cap_group = 'g', unique = 'v', unique_key = 'y', rate = 'j',
    rate_group = 'h', bound = 'z', fair_group = 'f', queue_bound = 'Q',
}

-- The stored names of these fields (a name not in FIELD is stored as it is).
local function stored(...)
    local names = {...}
    for i = 1, #names do
        names[i] = FIELD[names[i]] or names[i]
    end
    return names
end

-- Priorities (runner/store/redis/keys.py): level 0 is a kind's own due set (KEYS the
-- script names as `due`); levels 1-9 have due sets of their own, <prefix><kind>:p<n>,
-- named from the due set key prefix that every script that schedules a job gets as
-- its last KEYS. Where the caller knows which of them a call touches, they are
-- in KEYS too: claim.lua reads them all, enqueue.lua's caller knows its jobs'
-- priorities. finish, reap, release_held and the requests learn a job's priority
-- from its hash, as they learn the hash's name from the job key prefix (and 27 more
-- KEYS in each of their calls would cost the caller more than the script). All
-- share the queue's hash tag, hence its slot. A priority that is not a whole number
-- from 1 to 9 is level 0: the hash is untrusted, and a wrong one must never stop a job.

local function level_of(priority)
    local p = tonumber(priority)
    if p and p >= 1 and p <= 9 and p == math.floor(p) then
        return p
    end
    return 0
end

local function level_key(kind, level)
    return KEYS[#KEYS] .. kind .. ':p' .. level
end

-- The due set of a job of this kind and priority; `due` maps kind -> level 0's key.
local function due_set(due, kind, priority)
    local level = level_of(priority)
    if level == 0 then
        return due[kind]
    end
    return level_key(kind, level)
end

-- HSET of (name, value) pairs named in full.
local function hset(key, ...)
    local items = {...}
    for i = 1, #items, 2 do
        items[i] = FIELD[items[i]] or items[i]
    end
    return redis.call('HSET', key, unpack(items))
end

local function hdel(key, ...)
    return redis.call('HDEL', key, unpack(stored(...)))
end

-- HMGET through pcall: nil when the key holds another type than a hash.
local function read_job(key, ...)
    local fields = redis.pcall('HMGET', key, unpack(stored(...)))
    if type(fields) == 'table' and fields.err then
        return nil
    end
    return fields
end

-- Whether a hash exists at all (HMGET returns false for every missing field).
local function any_field(fields)
    for i = 1, #fields do
        if fields[i] then
            return true
        end
    end
    return false
end

-- Set a malformed job aside: listed in the dead-letter set (scored by time), and,
-- when the key is a hash, failed with the reason. Its transition is recorded
-- like any other when its seq can be trusted; otherwise the dead-letter set is
-- the only record. `fields` is nil for a key of another type.
local function quarantine(dead_key, key, id, now, daemon, failed, reason, fields, events)
    redis.call('ZADD', dead_key, now, id)
    if fields == nil then
        return
    end
    hset(key, 'state', failed, 'error', reason, 'updated_at', now)
    hdel(key, 'owner')
    local seq = whole(fields.seq, 1)
    if seq then
        hset(key, 'seq', seq + 1)
        events[#events + 1] = cjson.encode({id, seq + 1, fields.state or '', failed, now, daemon,
            whole(fields.attempt, 0) or 0, cjson.encode({error = reason, quarantined = true})})
    end
end

local function malformed(bad)
    return 'malformed job: ' .. table.concat(bad, ', ') .. '; it was set aside, not run'
end


-- The retired ids ({prefix}:retired, a sorted set): jobs enqueued with an id their
-- caller chose, which Redis no longer holds while PostgreSQL keeps their history
-- (forgotten after keep_finished, deleted, or parked), so that enqueue refuses such an
-- id again without asking PostgreSQL (see runner/daemon/retired_ids.py). One member says when
-- and in which state: score = ms * 8 + the state's place in the list of retired states,
-- which the caller passes (states come from runner/states.py, never from here).
local RETIRED_STATES = nil

local function retired_states(list_json)
    RETIRED_STATES = RETIRED_STATES or cjson.decode(list_json)
    return RETIRED_STATES
end

local function retire(key, id, at_ms, state, list_json)
    local states = retired_states(list_json)
    for i = 1, #states do
        if states[i] == state then
            redis.call('ZADD', key, string.format('%d', at_ms * 8 + i), id)
            return
        end
    end
end

-- The state a retired id was retired in, or nil if it is not retired.
local function retired_state(key, id, list_json)
    local score = tonumber(redis.call('ZSCORE', key, id))
    if not score then
        return nil
    end
    return retired_states(list_json)[score % 8] or 'unknown'
end

-- A sorted set of ours that holds another type (untrusted) is moved aside to <its
-- name>:malformed, once a script call, so that the calls on it cannot fail.
local CHECKED = {}

local function zset_or_aside(key)
    if CHECKED[key] then
        return
    end
    CHECKED[key] = true
    local kind = redis.call('TYPE', key)['ok']
    if kind ~= 'zset' and kind ~= 'none' then
        redis.call('RENAME', key, key .. ':malformed')
    end
end

-- ZCARD of a sorted set of ours; one of another type is moved aside first (0).
local function zcard_or_aside(key)
    local count = redis.pcall('ZCARD', key)
    if type(count) == 'number' then
        return count
    end
    zset_or_aside(key)
    return 0
end

-- The groups of caps, rates and fair keys that were busy lately, for operators
-- (runner/store/redis/limits.py reads them): <due prefix>limited, scored by when a
-- script last saw each group start or hold back a job. Written once a group a script
-- call, and kept to the LIMITED_KEPT most recent.
local LIMITED_KEPT = 10000
local REGISTERED = {}

local function register(group, at_ms)
    if REGISTERED[group] then
        return
    end
    REGISTERED[group] = true
    redis.pcall('ZADD', KEYS[#KEYS] .. 'limited', at_ms, group)
end

local function trim_registered()
    if next(REGISTERED) then
        redis.pcall('ZREMRANGEBYRANK', KEYS[#KEYS] .. 'limited', 0, -(LIMITED_KEPT + 1))
    end
end

-- Concurrency caps (runner/client/caps.py): a job of a capped task carries `cap`, the
-- most jobs of its group that may run at once across every daemon, and `cap_group`
-- (its task, or its task and the value of its concurrency key). The group's running
-- jobs are in <due prefix>slots:<group>, scored by when each started; its due jobs
-- that found every slot taken wait in <due prefix>capped:<group>, scored by due time,
-- out of the due sets (no daemon claims them in vain), until a slot frees: a run
-- that ends, is cancelled, or whose lease expires gives its slot to the earliest of
-- them. The names share the queue's hash tag, as the priorities' sets do.

local function slots_key(group)
    return KEYS[#KEYS] .. 'slots:' .. group
end

local function capped_key(group)
    return KEYS[#KEYS] .. 'capped:' .. group
end

-- The cap and group of a job's fields, or nil: an untrusted cap that is not a whole
-- number from 1 is no cap (a wrong one must never stop a job).
local function cap_of(cap, group)
    local limit = tonumber(cap)
    if limit and limit >= 1 and limit == math.floor(limit) and group and group ~= '' then
        return limit, group
    end
    return nil
end

-- Members of a full group's slots that no longer run (their end was recorded by an
-- older runner, or the hash is gone): taken out, so no slot is held for ever.
local function drop_stale_slots(slots, prefix, running)
    local members = redis.call('ZRANGE', slots, 0, 63)
    for i = 1, #members do
        local f = read_job(prefix .. members[i], 'state')
        if not (f and f[1] == running) then
            redis.call('ZREM', slots, members[i])
        end
    end
end

-- Within one claim call, a group's running count is read once and kept here, and its
-- new slots are written in one ZADD at the end (flush_claim_limits): a claim of many
-- jobs of one group costs its set two calls, not two a job.
local SLOT_COUNT, SLOT_ADDS = {}, {}

-- A slot of the group for job `id` (true), or the job waits in the group's capped set
-- at its due time (false).
local function take_slot(id, limit, group, due, now, prefix, running)
    local count = SLOT_COUNT[group] or zcard_or_aside(slots_key(group))
    local adds = SLOT_ADDS[group] or {}
    if count >= limit then
        drop_stale_slots(slots_key(group), prefix, running)
        count = redis.call('ZCARD', slots_key(group)) + #adds / 2
        if count >= limit then
            SLOT_COUNT[group] = count
            zset_or_aside(capped_key(group))
            redis.call('ZADD', capped_key(group), due, id)
            register(group, now)
            return false
        end
    end
    SLOT_COUNT[group] = count + 1
    adds[#adds + 1], adds[#adds + 2] = now, id
    SLOT_ADDS[group] = adds
    return true
end

-- The slot just taken for the group goes back (its job could not start after all).
local function untake_slot(group)
    local adds = SLOT_ADDS[group]
    adds[#adds], adds[#adds - 1] = nil, nil
    SLOT_COUNT[group] = SLOT_COUNT[group] - 1
end

-- Fairness between keys (runner/limits/fair.py): a job of a task with `fair_key`
-- carries `fair_group` (its task and that argument's value). It waits in
-- <due prefix>fair:<group>, scored by due time, not in a due set; the group waits for
-- its turn in <due prefix>fairq:<kind>, scored by when its turn comes: its earliest
-- due time, and, after each turn, the time of that turn (or its next job's due time,
-- if later). A claim serves the groups whose turn has come, oldest turn first, each
-- an equal share of what it may start (claim.lua), so a key with 50,000 jobs waiting
-- takes its turn after a key with 50, not before all of them. A job of such a task
-- that reaches a due set another way (a retry, an expired lease, a resume) joins its
-- group when a claim finds it there.

local function turns_key(kind)
    return KEYS[#KEYS] .. 'fairq:' .. kind
end

local function fair_key(group)
    return KEYS[#KEYS] .. 'fair:' .. group
end

-- How many jobs wait in fairness groups, per kind (<due prefix>fairn, a hash): they are
-- in no due set, so the figures of what is due count them from here.
local function count_fair(kind, by)
    redis.pcall('HINCRBY', KEYS[#KEYS] .. 'fairn', kind, by)
end

-- The job waits for its group's turn; the group's turn comes no later than its due
-- time. The turn's time (ms), for the caller's wake-up.
local function wait_fair(id, kind, group, due_ms)
    zset_or_aside(fair_key(group))
    if redis.call('ZADD', fair_key(group), due_ms, id) == 1 then
        count_fair(kind, 1)
    end
    register(group, due_ms)
    zset_or_aside(turns_key(kind))
    redis.call('ZADD', turns_key(kind), 'LT', due_ms, group)
    return tonumber(redis.call('ZSCORE', turns_key(kind), group))
end

-- A job held back by a limit goes back to its due set (or its fairness group) at
-- `due_ms`; one whose hash is malformed goes where a claim will find it and set it
-- aside; one that is gone, nowhere (false).
local function back_to_due(id, due_ms, due, prefix)
    local key, bad = prefix .. id, {}
    if redis.call('EXISTS', key) == 0 then
        return false
    end
    local w = read_job(key, 'kind', 'priority', 'fair_group')
    if w then need_kind(bad, w[1]) else bad[1] = 'not a hash' end
    if #bad == 0 and w[3] and w[3] ~= '' then
        wait_fair(id, w[1], w[3], due_ms)  -- back in its group, for its group's turn
        return true
    end
    redis.call('ZADD', #bad == 0 and due_set(due, w[1], w[2]) or due.async, due_ms, id)
    return true
end

-- The earliest waiting jobs of the group take the slots free now, back in their due
-- sets at their due times. `ctx`: due (kind -> level 0's set), prefix (job hash key
-- prefix), wake (channel), publish (command).
local function fill_slots(group, limit, ctx)
    local free = limit - zcard_or_aside(slots_key(group))
    if free <= 0 or redis.call('EXISTS', capped_key(group)) == 0 then
        return
    end
    zset_or_aside(capped_key(group))
    local waiting = redis.call('ZPOPMIN', capped_key(group), free)
    for i = 1, #waiting, 2 do
        if back_to_due(waiting[i], waiting[i + 1], ctx.due, ctx.prefix) then
            redis.call(ctx.publish, ctx.wake, waiting[i + 1])
        end
    end
end

-- Job `id` leaves its group's slots, and waiting jobs take what is free.
local function free_slot(id, cap, group, ctx)
    local limit
    limit, group = cap_of(cap, group)
    if limit then
        zset_or_aside(slots_key(group))
        redis.call('ZREM', slots_key(group), id)
        fill_slots(group, limit, ctx)
    end
end

-- The same for a batch of ended runs (finish.lua): each group's slots are given
-- back in one ZREM, and filled once, at flush_freed_slots.
local FREED, FREED_LIMIT = {}, {}

local function free_slot_later(id, cap, group)
    local limit
    limit, group = cap_of(cap, group)
    if limit then
        FREED[group] = FREED[group] or {}
        table.insert(FREED[group], id)
        FREED_LIMIT[group] = limit
    end
end

local function flush_freed_slots(ctx)
    for group, ids in pairs(FREED) do
        zset_or_aside(slots_key(group))
        for i = 1, #ids, 1000 do
            redis.call('ZREM', slots_key(group), unpack(ids, i, math.min(i + 999, #ids)))
        end
        fill_slots(group, FREED_LIMIT[group], ctx)
    end
end

-- Rate limits (runner/limits/rates.py): a job of a rate-limited task carries `rate`,
-- "<interval us>/<tolerance us>" (one start per interval, up to tolerance / interval
-- more at once; microseconds, so that rates past 1000/s keep their precision), and
-- `rate_group`. A generic cell rate algorithm: the group's
-- theoretical arrival time is <due prefix>rate:<group>; a start is allowed when it is
-- at most `tolerance` ahead of now, and moves it one interval on. A due job refused
-- waits in <due prefix>rated:<group> (scored by due time) and the group in
-- <due prefix>ratewake, scored by when it next allows a start: a claim from then on
-- puts its earliest waiting job back in its due set, and claims report that time
-- as a due time, so daemons wake for it instead of asking in vain.

local function rated_key(group)
    return KEYS[#KEYS] .. 'rated:' .. group
end

local function rate_wake_key()
    return KEYS[#KEYS] .. 'ratewake'
end

-- The interval and tolerance of a job's `rate`, or nil (an untrusted one that does not
-- read as two whole numbers, the interval from 1, is no limit).
local function rate_of(rate, group)
    if not (rate and group and group ~= '') then return nil end
    local interval, tolerance = string.match(rate, '^(%d+)/(%d+)$')
    interval, tolerance = tonumber(interval), tonumber(tolerance)
    if interval and tolerance and interval >= 1 then
        return interval, tolerance
    end
    return nil
end

-- Within one claim call, a group's theoretical arrival time (us) is read once, kept
-- here, and written once at the end (flush_claim_limits), with how long to keep it.
local RATE_TAT, RATE_KEEP, RATE_STARTS = {}, {}, {}

-- Whether the group allows a start at `now` (ms; then counted); if not, when (ms).
local function rate_allows(group, interval, tolerance, now)
    local now_us, tat = now * 1000, RATE_TAT[group]
    if tat == nil then
        local got = redis.pcall('GET', KEYS[#KEYS] .. 'rate:' .. group)
        tat = type(got) == 'string' and tonumber(got) or 0
    end
    tat = math.max(tat, now_us)
    RATE_TAT[group] = tat
    if tat - now_us > tolerance then
        return false, math.ceil((tat - tolerance) / 1000)
    end
    RATE_TAT[group] = tat + interval
    RATE_KEEP[group] = math.ceil((tat + interval - now_us + tolerance) / 1000) + 1000
    RATE_STARTS[group] = (RATE_STARTS[group] or 0) + 1
    return true, nil
end

-- What take_slot and rate_allows kept for the end of the claim call, written; each
-- rate group's starts are counted in <due prefix>ratestarts, for operators to read
-- the rate it runs at.
local function flush_claim_limits(now)
    for group, adds in pairs(SLOT_ADDS) do
        for i = 1, #adds, 1000 do
            redis.call('ZADD', slots_key(group), unpack(adds, i, math.min(i + 999, #adds)))
        end
        register(group, now)
    end
    for group, keep in pairs(RATE_KEEP) do
        redis.call('SET', KEYS[#KEYS] .. 'rate:' .. group, string.format('%d', RATE_TAT[group]),
            'PX', keep)
        redis.pcall('HINCRBY', KEYS[#KEYS] .. 'ratestarts', group, RATE_STARTS[group])
        register(group, now)
    end
    trim_registered()
end

-- Groups whose time has come put back in their due sets as many of their earliest
-- waiting jobs as the rate now allows; a group with more waiting is woken again once
-- those will have started. `rate` reads a waiting job's interval and tolerance.
local function wake_rated(now, due, prefix)
    local groups = redis.pcall('ZRANGEBYSCORE', rate_wake_key(), '-inf', now, 'LIMIT', 0, 100)
    if groups.err then
        zset_or_aside(rate_wake_key())  -- of another type: moved aside, and none wakes now
        groups = {}
    end
    for _, group in ipairs(groups) do
        redis.call('ZREM', rate_wake_key(), group)
        zset_or_aside(rated_key(group))
        local first = redis.call('ZRANGE', rated_key(group), 0, 0)[1]
        local f = first and read_job(prefix .. first, 'rate') or {}
        local interval, tolerance = rate_of(f[1], group)
        interval, tolerance = interval or 1, tolerance or 0
        local got = redis.pcall('GET', KEYS[#KEYS] .. 'rate:' .. group)
        local tat = math.max(type(got) == 'string' and tonumber(got) or 0, now * 1000)
        local allowance = math.max(1, math.floor((now * 1000 + tolerance - tat) / interval) + 1)
        local waiting = redis.call('ZPOPMIN', rated_key(group), allowance)
        for i = 1, #waiting, 2 do
            back_to_due(waiting[i], waiting[i + 1], due, prefix)
        end
        if redis.call('EXISTS', rated_key(group)) == 1 then
            local next_start = math.ceil((tat + allowance * interval - tolerance) / 1000)
            redis.call('ZADD', rate_wake_key(), string.format('%d', next_start), group)
        end
    end
end

-- The job waits for its group's next start at `allowed` (ms).
local function wait_rated(id, group, due_ms, allowed)
    zset_or_aside(rated_key(group))
    zset_or_aside(rate_wake_key())
    redis.call('ZADD', rated_key(group), due_ms, id)
    register(group, due_ms)
    local wake = tonumber(redis.call('ZSCORE', rate_wake_key(), group))
    if not wake or allowed < wake then
        redis.call('ZADD', rate_wake_key(), allowed, group)
    end
end

-- Bounded queues (runner/limits/bounds.py): a job of a task with `max_queued` carries
-- it as `bound`, and is listed in <due prefix>queued:<task> (scored by its enqueue)
-- from its enqueue until its first start (claim.lua) or its end by request (cancel,
-- delete): while scheduled or paused, however long it waits for a cap, a rate or its
-- due time. A job of a queue with `max_queued` carries it as `queue_bound`, and is
-- listed in <due prefix>queued (every task's) the same way. enqueue.lua refuses a
-- job while either list holds its bound. A member that no longer waits (set aside, or
-- its hash gone) is dropped when the bound is reached, before refusing. Each list is
-- named by its key below (`list`).

local function task_list(task)
    return KEYS[#KEYS] .. 'queued:' .. task
end

local function queue_list()
    return KEYS[#KEYS] .. 'queued'
end

-- The lists a job's fields put it on (task, bound, queue_bound).
local function lists_of(task, bound, queue_bound)
    local lists = {}
    if bound and task then lists[#lists + 1] = task_list(task) end
    if queue_bound then lists[#lists + 1] = queue_list() end
    return lists
end

-- How many jobs a list holds, read once a script call and counted on from there.
local QUEUED, SWEPT = {}, {}

-- A list of another type (untrusted) is moved aside and a new one begun (zcard_or_aside):
-- a wrong key must never stop enqueues.
local function queued_count(list)
    QUEUED[list] = QUEUED[list] or zcard_or_aside(list)
    return QUEUED[list]
end

-- Members that no longer wait (state not in `waiting_states`), among the oldest 32,
-- dropped: once a script call, and only at the bound, so a waiting list costs nothing
-- to check until it is full.
local function sweep_queued(list, waiting_states, prefix)
    if SWEPT[list] then
        return queued_count(list)
    end
    SWEPT[list] = true
    local oldest = redis.call('ZRANGE', list, 0, 31)
    for i = 1, #oldest do
        local f = read_job(prefix .. oldest[i], 'state')
        if not (f and f[1] and string.find(waiting_states, ',' .. f[1] .. ',', 1, true)) then
            redis.call('ZREM', list, oldest[i])
        end
    end
    QUEUED[list] = redis.call('ZCARD', list)
    return QUEUED[list]
end

local function add_queued(list, id, now)
    local count = queued_count(list)
    redis.call('ZADD', list, now, id)
    QUEUED[list] = count + 1
end

-- Jobs that left their waiting lists in one claim, taken out at its end (through
-- pcall: a list of another type is moved aside by the next enqueue).
local UNQUEUED = {}

local function unqueue_later(lists, id)
    for _, list in ipairs(lists) do
        UNQUEUED[list] = UNQUEUED[list] or {}
        table.insert(UNQUEUED[list], id)
    end
end

local function flush_unqueued()
    for list, ids in pairs(UNQUEUED) do
        for i = 1, #ids, 1000 do
            redis.pcall('ZREM', list, unpack(ids, i, math.min(i + 999, #ids)))
        end
    end
end

-- Dependencies (runner/client/depends.py): a job enqueued with `depends_on` (its hash's
-- `after`, a JSON list) waits `blocked`, in no due set, until every job it depends
-- on has ended. <due prefix>dependents:<id> (a set) lists the jobs waiting on job
-- <id>, whose hash says so (`dependents` = 1) for the script that ends it to look,
-- in the read it makes anyway. A blocked job counts the dependencies still going in
-- `left`: the script that ends a dependency takes one off each of its dependents in
-- the same atomic step (O(1) a dependent, never a scan of its siblings), and deletes
-- the set, so a dependency releases its dependents exactly once, however many
-- daemons end jobs at the same moment. A dependent whose count reaches 0 becomes due
-- (at its own due time). A dependency that did not succeed (failed, cancelled,
-- deleted) applies its dependent's `on_failure` at once: "cancel" (the default) or
-- "fail" ends it so, "run" lets it run once the others are done. A dependent ended so
-- releases its own dependents in turn (a loop over a work list, not recursion).
-- A job paused while blocked (its `left` above 0) is released alike, but stays
-- paused: resume.lua schedules it, or puts it back to waiting if some are left.
-- The states come from the caller (runner/states.py DEPENDENCY_ARGV): ctx.states.

-- Blocked jobs per task, in <due prefix>blockedn (a hash): the figures of `runner
-- status` and the runner_blocked_jobs gauge, kept by every script that moves a job
-- into or out of `blocked` (enqueue, the requests, the release below). A count that
-- reaches 0 is dropped; a key of another type is left alone (the figure is lost,
-- never a job).
local function count_blocked(task, n)
    if type(task) ~= 'string' then return end
    local key = KEYS[#KEYS] .. 'blockedn'
    local now = redis.pcall('HINCRBY', key, task, n)
    if type(now) == 'number' and now <= 0 then redis.pcall('HDEL', key, task) end
end

local function dependents_key(id)
    return KEYS[#KEYS] .. 'dependents:' .. id
end

-- A job enqueued with pass_results (`results` = 1) receives, as its first argument,
-- the results of the jobs it depends on, in the order of its `after`: the result
-- itself when it depends on one job, a list of them when on several. Each
-- dependency's result is kept in the job's hash (res:<id>) when the dependency ends,
-- and the arguments are written when the job becomes due; the JSON texts are
-- joined as they are, never decoded. The new arguments as JSON text, or nil when the
-- stored ones are not a JSON array (untrusted: left as they are).
local function pass_results(key)
    local f = read_job(key, 'after', 'args')
    local ok, ids = pcall(cjson.decode, f and f[1] or '')
    local rest = f and f[2] and string.match(f[2], '^%s*%[%s*(.-)%s*%]%s*$')
    if not (ok and type(ids) == 'table' and #ids > 0 and rest) then
        return nil
    end
    local names = {}
    for i, id in ipairs(ids) do
        names[i] = 'res:' .. tostring(id)
    end
    local got = redis.call('HMGET', key, unpack(names))
    local results = {}
    for i = 1, #ids do
        results[i] = got[i] or 'null'
    end
    local first = #ids == 1 and results[1] or '[' .. table.concat(results, ',') .. ']'
    local args = rest == '' and '[' .. first .. ']' or '[' .. first .. ',' .. rest .. ']'
    hset(key, 'args', args)
    redis.call('HDEL', key, unpack(names))
    return args
end

-- A dependent released by `parent`, which ended in `ended`: its new state, or nil
-- while it waits on others (its count is kept).
local function released_state(f, ended, states)
    local left = (tonumber(f[4]) or 1) - 1
    if ended ~= states.succeeded and f[5] ~= 'run' then
        return f[5] == 'fail' and states.failed or states.cancelled, left
    end
    if left <= 0 then
        return states.scheduled, 0
    end
    return nil, left
end

-- Whether a job in `state` with `left` dependencies going waits for them: blocked,
-- or paused while it was (see release_dependents).
local function waits(state, left, states)
    return state == states.blocked or (state == states.paused and (tonumber(left) or 0) > 0)
end

-- A run that handed work out at run time (runner/workflows/fan_out.py) is replaced by
-- it: the jobs that waited on it wait instead for `targets` (the fan-out's last jobs,
-- a JSON list), and take their results in its place. Its own children (`spawned_by`
-- it) stay and are released as usual. Only targets still blocked are taken: each
-- depends, through the children, on this job, so none can have ended, unless an id
-- the task chose was an old job's. Runs before the release, in the same script.
local function hand_over(id, targets_json, ctx)
    local ok, given = pcall(cjson.decode, targets_json)
    local targets = {}
    for _, t in ipairs(ok and type(given) == 'table' and given or {}) do
        local f = type(t) == 'string' and read_job(ctx.prefix .. t, 'state', 'left')
        if f and waits(f[1], f[2], ctx.states) then targets[#targets + 1] = t end
    end
    local members = #targets > 0 and redis.pcall('SMEMBERS', dependents_key(id)) or {}
    for _, d in ipairs(type(members) == 'table' and not members.err and members or {}) do
        local key = ctx.prefix .. d
        local f = read_job(key, 'state', 'spawned_by', 'after', 'left')
        local fine, after = pcall(cjson.decode, f and f[3] or '')
        if f and waits(f[1], f[4], ctx.states) and f[2] ~= id and fine and type(after) == 'table' then
            local waits = {}
            for _, a in ipairs(after) do
                if a == id then
                    for _, t in ipairs(targets) do waits[#waits + 1] = t end
                else
                    waits[#waits + 1] = a
                end
            end
            hset(key, 'after', cjson.encode(waits), 'left', (tonumber(f[4]) or 1) + #targets - 1)
            redis.call('SREM', dependents_key(id), d)
            for _, t in ipairs(targets) do
                redis.call('SADD', dependents_key(t), d)
                hset(ctx.prefix .. t, 'dependents', 1)
            end
        end
    end
end

-- ctx: now, by (who ends it), events, due (kind -> level 0's set), prefix, wake,
-- publish, states.
local function release_dependents(id, ended, ctx)
    local work, n = {{id, ended}}, 1
    local unblocked, wake_at = {}, nil  -- per task; the earliest due time made due
    while n <= #work do
        local parent, state = work[n][1], work[n][2]
        n = n + 1
        local children = redis.pcall('SMEMBERS', dependents_key(parent))
        redis.call('DEL', dependents_key(parent))
        local result = nil  -- the parent's, read once for all its dependents
        for _, child in ipairs(type(children) == 'table' and not children.err and children or {}) do
            local key = ctx.prefix .. child
            local f = read_job(key, 'state', 'seq', 'attempt', 'left', 'on_failure', 'kind',
                'priority', 'due_at', 'results', 'task')
            local held = f and f[1] == ctx.states.paused
            if f and waits(f[1], f[4], ctx.states) and whole(f[2], 1) and KIND[f[6]] then
                local target, left = released_state(f, state, ctx.states)
                hset(key, 'left', left)
                if f[9] then
                    result = result or (read_job(ctx.prefix .. parent, 'result') or {})[1] or 'null'
                    redis.call('HSET', key, 'res:' .. parent, result)
                end
                if held and target == ctx.states.scheduled then
                    if f[9] then pass_results(key) end  -- complete; resume schedules it
                elseif target then
                    if not held then
                        unblocked[f[10] or ''] = (unblocked[f[10] or ''] or 0) + 1
                    end
                    local seq = tonumber(f[2]) + 1
                    hset(key, 'state', target, 'seq', seq, 'updated_at', ctx.now)
                    local detail = {dependency = parent, dependency_state = state}
                    local args = nil
                    if target == ctx.states.scheduled then
                        local due = tonumber(f[8]) or ctx.now
                        args = f[9] and pass_results(key)
                        redis.call('ZADD', due_set(ctx.due, f[6], f[7]), due, child)
                        wake_at = math.min(wake_at or due, due)
                    else
                        local why = 'job ' .. parent .. ', which it depends on, ended ' .. state
                        hset(key, 'error', why)
                        detail.error = why
                        work[#work + 1] = {child, target}
                    end
                    local text = cjson.encode(detail)
                    if args then  -- the arguments it runs with, as the history's
                        text = string.sub(text, 1, -2) .. ',"args":' .. args .. '}'
                    end
                    ctx.events[#ctx.events + 1] = cjson.encode({child, seq, f[1], target,
                        ctx.now, ctx.by, whole(f[3], 0) or 0, text})
                end
            end
        end
    end
    for task, count in pairs(unblocked) do
        if task ~= '' then count_blocked(task, -count) end
    end
    if wake_at then  -- once for all it made due: the daemons claim them together
        redis.call(ctx.publish, ctx.wake, string.format('%d', wake_at))
    end
end
