-- request_lib.lua: what the operator's requests share (pause, resume, cancel, retry,
-- delete, update); put after lib.lua in front of each of those scripts.
-- Each script applies one kind of request to a batch of job ids. The states a
-- request may start from and the state it leads to come from runner/states.py.
--
-- KEYS[1..3]  due sorted sets: async, io, cpu   ({prefix}:due:<kind>)
-- KEYS[4]     running leases sorted set          ({prefix}:leases)
-- KEYS[5]     transition stream                  ({prefix}:events)
-- KEYS[6]     job hash key prefix ({prefix}:job:), see claim.lua
-- KEYS[7]     dead-letter sorted set             ({prefix}:dead)
-- KEYS[8]     held jobs key prefix ({prefix}:held:), a sorted set per paused task
-- KEYS[9]     retired ids ({prefix}:retired), see lib.lua
-- KEYS[10]     due set key prefix ({prefix}:due:), for priorities 1-9 (see lib.lua)
-- ARGV[1] now (ms)   ARGV[2] who asks (the client's origin)
-- ARGV[3] allowed source states (",a,b,")   ARGV[4] target state ("" = unchanged)
-- ARGV[5] the job ids, JSON   ARGV[6] wake channel   ARGV[7] cancel channel
-- ARGV[8] the request's own argument (update: the changes, JSON)
-- ARGV[9] the retired states, JSON (see lib.lua)
-- ARGV[10] the publish command: PUBLISH, or SPUBLISH on a Redis Cluster (both
--          channels are in the {prefix} slot)
-- ARGV[11] the states that release a job's dependents (runner/states.py DEPENDENCY_ARGV;
--          absent for park): a job cancelled or deleted releases the jobs waiting on it
-- Reply: one string a job: "ok:<state>", "refused:<state>", "missing", or
-- "malformed:<reason>" (nothing is written for a job that is not ok).

local DUE = {async = KEYS[1], io = KEYS[2], cpu = KEYS[3]}
local LEASES, EVENTS, PREFIX, DEAD, HELD = KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local RETIRED, PUBLISH = KEYS[9], ARGV[10]
local NOW, BY, SOURCES, TARGET = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local WAKE, CANCEL, REQUEST, RETIRED_LIST = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local events = {}
local DEPS = ARGV[11] and cjson.decode(ARGV[11]) or nil

-- The job's fields (state, seq, attempt, kind, task, then `...`) if the request may
-- apply to it, else nil and the reply saying why not.
local function requested(id, ...)
    local f = read_job(PREFIX .. id, 'state', 'seq', 'attempt', 'kind', 'task', ...)
    if f == nil then
        return nil, 'malformed:the key is not a hash'
    end
    if not f[1] then
        return nil, any_field(f) and 'malformed:state=missing' or 'missing'
    end
    if not string.find(SOURCES, ',' .. f[1] .. ',', 1, true) then
        return nil, 'refused:' .. f[1]
    end
    local bad = {}
    need_whole(bad, 'seq', f[2], 1)
    need_whole(bad, 'attempt', f[3], 0)
    need_kind(bad, f[4])
    if #bad > 0 then
        return nil, 'malformed:' .. table.concat(bad, ', ')
    end
    return f, nil
end

-- The job's priority, as its hash says (see due_set in lib.lua).
local function priority_of(id)
    return (read_job(PREFIX .. id, 'priority') or {})[1]
end

-- Out of every set that lists it as waiting: its due set, its task's held set, its
-- concurrency group's capped set, its rate group's waiting set, its fairness group
-- (see lib.lua; a group left empty loses its turn at its next one).
local function unschedule(id, f)
    local more = read_job(PREFIX .. id, 'priority', 'cap_group', 'rate_group', 'fair_group') or {}
    redis.call('ZREM', due_set(DUE, f[4], more[1]), id)
    if f[5] then redis.call('ZREM', HELD .. f[5], id) end
    if more[2] and more[2] ~= '' then redis.pcall('ZREM', capped_key(more[2]), id) end
    if more[3] and more[3] ~= '' then redis.pcall('ZREM', rated_key(more[3]), id) end
    if more[4] and more[4] ~= '' and redis.pcall('ZREM', fair_key(more[4]), id) == 1 then
        count_fair(f[4], -1)
    end
end

-- A job ended by request (cancel, delete) leaves its waiting lists (lib.lua).
local function unqueue(id, f)
    local b = read_job(PREFIX .. id, 'bound', 'queue_bound') or {}
    for _, list in ipairs(lists_of(f[5], b[1], b[2])) do
        redis.pcall('ZREM', list, id)  -- another type: see queued_count
    end
end

-- A running job's end by request (cancel): its lease and its concurrency slot go.
local function end_run(id)
    redis.call('ZREM', LEASES, id)
    local c = read_job(PREFIX .. id, 'cap', 'cap_group') or {}
    free_slot(id, c[1], c[2], {due = DUE, prefix = PREFIX, wake = WAKE, publish = PUBLISH})
end

-- Back in its due set at `due` (ms); wakes the daemons if it is the soonest.
local function schedule(id, kind, due)
    local key = due_set(DUE, kind, priority_of(id))
    local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    redis.call('ZADD', key, due, id)
    if first[2] == nil or due < tonumber(first[2]) then
        redis.call(PUBLISH, WAKE, string.format('%d', due))
    end
end

-- The job moves to `state` (its own if nil), one seq further, with its event; the
-- detail says who asked, plus `extra` (a table) and `raw` (JSON members as text,
-- for values cjson would not give back as they were, like an empty array).
local function transit(id, f, state, extra, raw)
    local seq = tonumber(f[2]) + 1
    state = state or f[1]
    if DEPS and f[1] == DEPS.blocked and state ~= f[1] then
        count_blocked(f[5], -1)
    elseif DEPS and state == DEPS.blocked and f[1] ~= state then
        count_blocked(f[5], 1)
    end
    hset(PREFIX .. id, 'state', state, 'seq', seq, 'updated_at', NOW)
    local detail = extra or {}
    detail.by = BY
    local text = cjson.encode(detail)
    if raw and raw ~= '' then
        text = string.sub(text, 1, -2) .. ',' .. raw .. '}'
    end
    events[#events + 1] = cjson.encode({id, seq, f[1], state, NOW, BY, tonumber(f[3]), text})
    return 'ok:' .. state
end

-- Apply `apply(id, f)` to every job of the request; one stream entry for the batch.
local function each_job(apply, ...)
    local replies = {}
    for i, id in ipairs(cjson.decode(ARGV[5])) do
        local f, why = requested(id, ...)
        replies[i] = f and apply(id, f) or why
    end
    if #events > 0 then
        redis.call('XADD', EVENTS, '*', 'e', '[' .. table.concat(events, ',') .. ']')
    end
    return replies
end

-- The jobs waiting on this one, released: it ended in `state` (cancel, delete).
local function release(id, state)
    if not DEPS or not (read_job(PREFIX .. id, 'dependents') or {})[1] then
        return
    end
    release_dependents(id, state, {now = NOW, by = BY, events = events, due = DUE,
        prefix = PREFIX, wake = WAKE, publish = PUBLISH, states = DEPS})
end
