-- enqueue.lua: create a batch of jobs and put each in its kind's due-time sorted set.
-- Idempotent by job id: a job whose id already exists is left as it is.
-- All transitions of the batch go to the stream as one entry.
--
-- KEYS[1..3]  due sorted sets: async, io, cpu   ({prefix}:due:<kind>)
-- KEYS[4]     transition stream                  ({prefix}:events)
-- KEYS[5]     job hash key prefix ({prefix}:job:) - job hashes are <KEYS[5]><id>;
--             they share the {prefix} hash tag, hence the slot.
-- KEYS[6]     cron state hash ({prefix}:cron): <name>:tick, <name>:job, <name>:fired_at
-- KEYS[7]     retired ids ({prefix}:retired), see lib.lua
-- KEYS[8..]   the due sorted sets of priorities 1-9 the batch's jobs go to, if any
-- KEYS[#KEYS] due set key prefix ({prefix}:due:), which names them (see lib.lua)
-- ARGV[1] now (ms)   ARGV[2] target state ("scheduled")   ARGV[3] origin (who enqueued)
-- ARGV[4] wake channel   ARGV[5] the jobs (below)
-- ARGV[6] states that count as "still going" for overlap = skip (",a,b,")
-- ARGV[7] the retired states, JSON (see lib.lua)
-- ARGV[8] the publish command: PUBLISH, or SPUBLISH on a Redis Cluster (the wake
--         channel is {prefix}:wake, in the script's slot)
-- The jobs, JSON: [[id, task, kind, args, kwargs, due_at, max_attempts,
--   extra fields {name: string}, event detail (JSON text), cron guard, promoted,
--   chosen, priority], ...]
--   args and kwargs are JSON texts, stored as they are. The cron guard is
--   [schedule name, tick (ms), overlap policy] or absent: a tick at or before
--   the schedule's last handled tick is "=already"; with overlap "skip", a tick
--   whose previous run is still going is "=skipped" (and counts as handled).
--   `promoted` is [seq, attempt] for a job that waited in PostgreSQL (parked,
--   see parking.py): its history goes on from that seq, and being moved is not a
--   transition, so it writes no event. Its guard is false. `chosen` is 1 when the
--   caller chose the id: such a job is marked (chosen_id), and an id that is retired
--   (lib.lua) is refused as "=<the state it was retired in>".
-- A job whose extra fields have `fair_group` waits in its group, not in a due set, and
-- its group for its turn (see lib.lua).
-- ARGV[9] (enqueues from a client only) the states in which a unique job holds its
--   key, by mode (runner/limits/unique.py): {"queued": ",a,b,", ...}. A job whose
--   extra fields have `unique` and `unique_key` is refused while the job named by
--   <due prefix>unique:<key> holds it ("=<state> <that job's id>"); else it takes the
--   key (for a duration "for:<ms>": that long, whatever becomes of it).
--   A job whose extra fields have `bound` (its task's max_queued) is refused while
--   its task has that many jobs waiting for their first start in this queue, and one
--   with `queue_bound` (its queue's) while the queue has that many: "!full <waiting>
--   <bound> task|queue" (see lib.lua).
-- ARGV[10] the states of dependencies (runner/states.py DEPENDENCY_ARGV); ARGV[11] and
--   ARGV[12], JSON {id: state} and {id: result JSON text}: dependencies Redis forgot,
--   as PostgreSQL recorded them (the client read them). A job whose extra fields have
--   `after` depends on those ids (see lib.lua, dependencies): refused as "!unknown
--   <id>" for an id no job has.
-- A job whose extra fields have `workflow` is listed in its workflow's set (below).
-- Reply: one value a job: the state it was created in, or "=<state>" if it existed
-- ("=invalid" when a key of another type holds the job's name).

-- A workflow's jobs, for requests on the whole (runner/client/workflows.py):
-- <due prefix>wf:<workflow>, a set, kept WORKFLOW_KEEP_MS after its last enqueue
-- (PostgreSQL lists them for as long as their history is kept).
local WORKFLOW_KEEP_MS = 30 * 24 * 3600 * 1000
local indexed = {}

local function index_workflow(workflow, id)
    local set = KEYS[#KEYS] .. 'wf:' .. workflow
    redis.pcall('SADD', set, id)  -- another type: PostgreSQL's list stands alone
    if not indexed[set] then
        indexed[set] = true
        redis.pcall('PEXPIRE', set, WORKFLOW_KEEP_MS)
    end
end

local function guard_refuses(guard, id)
    local name, tick, overlap = guard[1], guard[2], guard[3]
    local last = tonumber(redis.call('HGET', KEYS[6], name .. ':tick')) or 0
    if tick <= last then
        return '=already'
    end
    if overlap == 'skip' then
        local previous = redis.call('HGET', KEYS[6], name .. ':job')
        local state = previous and (read_job(KEYS[5] .. previous, 'state') or {})[1]
        if state and string.find(ARGV[6], ',' .. state .. ',', 1, true) then
            redis.call('HSET', KEYS[6], name .. ':tick', string.format('%d', tick),
                name .. ':skipped', string.format('%d', tick))
            return '=skipped'
        end
    end
    redis.call('HSET', KEYS[6], name .. ':tick', string.format('%d', tick), name .. ':job', id,
        name .. ':fired_at', ARGV[1])
    return nil
end

local now, target, origin, wake = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4]
local events = {}
local prefix = KEYS[5]
local HOLDING = ARGV[9] and cjson.decode(ARGV[9]) or nil
local UNIQUE_KEEP_MS = 30 * 86400000  -- a state-held key outlives any job in Redis

-- The job that holds this job's unique key and its state, if it keeps this one out.
local function unique_holder(id, extra)
    if not (HOLDING and extra.unique and extra.unique_key) then
        return nil
    end
    local got = redis.pcall('GET', KEYS[#KEYS] .. 'unique:' .. extra.unique_key)
    if type(got) ~= 'string' or got == id then
        return nil  -- free, or a key of another type: taken over below
    end
    local f = read_job(prefix .. got, 'state')
    local state = f and f[1]
    if string.sub(extra.unique, 1, 4) == 'for:' then
        return got, state or 'unknown'
    end
    local holding = HOLDING[extra.unique]
    if state and holding and string.find(holding, ',' .. state .. ',', 1, true) then
        return got, state
    end
    return nil
end

local function take_unique(id, extra)
    if not (HOLDING and extra.unique and extra.unique_key) then
        return
    end
    local ttl = UNIQUE_KEEP_MS
    if string.sub(extra.unique, 1, 4) == 'for:' then
        ttl = tonumber(string.sub(extra.unique, 5)) or ttl
    end
    redis.call('SET', KEYS[#KEYS] .. 'unique:' .. extra.unique_key, id, 'PX', ttl)
end

-- A refusal ("!full <waiting> <bound> task|queue") if the job's task or its queue has
-- no room for it.
local function full(task, extra)
    if not HOLDING then
        return nil
    end
    local checks = {{tonumber(extra.bound), task_list(task), 'task'},
                    {tonumber(extra.queue_bound), queue_list(), 'queue'}}
    for _, check in ipairs(checks) do
        local bound, list = check[1], check[2]
        if bound then
            local waiting = queued_count(list)
            if waiting >= bound then
                waiting = sweep_queued(list, HOLDING.queued, prefix)
            end
            if waiting >= bound then
                return string.format('!full %d %d %s', waiting, bound, check[3])
            end
        end
    end
    return nil
end

local DEPS = ARGV[10] and cjson.decode(ARGV[10]) or nil
local RECORDED = ARGV[11] and cjson.decode(ARGV[11]) or {}
local RECORDED_RESULTS = ARGV[12] and cjson.decode(ARGV[12]) or {}

-- The jobs this one depends on (its extra field `after`, a JSON list), read before
-- anything is written: {going = ids still going, failed = {id, state} of one that
-- ended without succeeding}; or a refusal ("!unknown <id>") for an id no job has.
-- A dependency Redis forgot is judged by the state PostgreSQL recorded (RECORDED,
-- which the client read).
local function dependencies(extra)
    if not (DEPS and extra.after) then
        return nil
    end
    local ok, ids = pcall(cjson.decode, extra.after)
    if not ok or type(ids) ~= 'table' then
        return '!unknown ' .. extra.after
    end
    local found = {going = {}, results = {}, live = {}}
    for _, dep in ipairs(ids) do
        local f = read_job(prefix .. tostring(dep), 'state', 'result')
        local state = (f and f[1]) or RECORDED[dep]
        if not state then
            return '!unknown ' .. tostring(dep)
        elseif not string.find(DEPS.ended, ',' .. state .. ',', 1, true) then
            found.going[#found.going + 1] = dep
            found.live[dep] = f and f[1] and true  -- else parked: see the promotion below
        else
            found.results[#found.results + 1] = {dep, (f and f[2]) or RECORDED_RESULTS[dep]}
            if state ~= DEPS.succeeded and not found.failed then
                found.failed = {dep, state}
            end
        end
    end
    return found
end

-- Writes a job with dependencies still to come: blocked, waiting on each (lib.lua); or
-- ended at once when one already failed and its policy says so. The state it is in.
local function block(id, key, deps, policy, task)
    hset(key, 'state', DEPS.blocked, 'left', #deps.going)
    if deps.failed and policy ~= 'run' then
        local target = policy == 'fail' and DEPS.failed or DEPS.cancelled
        local why = 'job ' .. deps.failed[1] .. ', which it depends on, ended ' .. deps.failed[2]
        hset(key, 'state', target, 'seq', 2, 'error', why, 'left', 0)
        events[#events + 1] = cjson.encode({id, 2, DEPS.blocked, target, now, origin, 0,
            cjson.encode({dependency = deps.failed[1], dependency_state = deps.failed[2],
                error = why})})
        return target
    end
    for _, dep in ipairs(deps.going) do
        redis.call('SADD', dependents_key(dep), id)
        if deps.live[dep] then hset(prefix .. dep, 'dependents', 1) end
    end
    count_blocked(task, 1)
    return DEPS.blocked
end

local due_keys = {async = KEYS[1], io = KEYS[2], cpu = KEYS[3]}
local replies, earliest = {}, {}

for i, job in ipairs(cjson.decode(ARGV[5])) do
    local id, kind, due = job[1], job[3], job[6]
    local key = prefix .. id
    local found = read_job(key, 'state')
    local existing = found == nil and 'invalid' or found[1]
    local promoted, chosen = job[11], job[12] == 1
    if chosen and not existing then
        existing = retired_state(KEYS[7], id, ARGV[7])
    end
    local refused = not existing and job[10] and guard_refuses(job[10], id)
    local holder, held_in, deps, ready
    if not existing and not refused then
        holder, held_in = unique_holder(id, job[8])
        refused = not holder and full(job[2], job[8])
    end
    if not existing and not refused and not holder then
        deps = dependencies(job[8])
        if type(deps) == 'string' then
            refused, deps = deps, nil
        elseif deps and #deps.going == 0 and not (deps.failed and job[8].on_failure ~= 'run') then
            ready = deps  -- every one ended already, as this job allows: due as any other
            deps = nil
        end
    end
    if existing then
        replies[i] = '=' .. existing
    elseif refused then
        replies[i] = refused
    elseif holder then
        replies[i] = '=' .. held_in .. ' ' .. holder
    else
        take_unique(id, job[8])
        if HOLDING then
            for _, list in ipairs(lists_of(job[2], job[8].bound, job[8].queue_bound)) do
                add_queued(list, id, now)
            end
        end
        local seq, attempt = 1, 0
        if promoted then
            seq, attempt = promoted[1], promoted[2]
        end
        -- Only what the scripts need: a waiting job's hash is most of its memory. The
        -- key names the id; when it was created and changed is in its history.
        local fields = {'task', job[2], 'kind', kind, 'args', job[4], 'kwargs', job[5],
            'due_at', string.format('%d', math.ceil(due)), 'state', target, 'attempt', attempt,
            'max_attempts', job[7], 'seq', seq}
        for field, value in pairs(job[8]) do
            fields[#fields + 1] = field
            fields[#fields + 1] = value
        end
        hset(key, unpack(fields))  -- one write of the whole hash
        if chosen then
            hset(key, 'chosen_id', 1)
        end
        if promoted and redis.call('EXISTS', dependents_key(id)) == 1 then
            hset(key, 'dependents', 1)  -- jobs came to depend on it while it was parked
        end
        if job[8].workflow then
            index_workflow(job[8].workflow, id)
        end
        local level = level_of(job[13])
        if level > 0 then
            hset(key, 'priority', level)
        end
        for _, ended in ipairs(job[8].results and (deps or ready or {}).results or {}) do
            redis.call('HSET', key, 'res:' .. ended[1], ended[2] or 'null')
        end
        if ready and job[8].results then
            pass_results(key)  -- every result is in: its arguments are complete now
        end
        local group = job[8].fair_group
        local due_key = group and turns_key(kind) or due_set(due_keys, kind, level)
        if earliest[due_key] == nil then
            local first = redis.pcall('ZRANGE', due_key, 0, 0, 'WITHSCORES')
            earliest[due_key] = type(first) == 'table' and tonumber(first[2]) or math.huge
        end
        if deps then
            -- blocked, or ended already: in no due set
        elseif group then
            wait_fair(id, kind, group, due)  -- it waits for its group's turn (see lib.lua)
        else
            redis.call('ZADD', due_key, string.format('%.17g', due), id)  -- its microseconds too
        end
        if not deps and due < earliest[due_key] then
            earliest[due_key] = due
            redis.call(ARGV[8], wake, string.format('%d', due))
        end
        if not promoted then
            events[#events + 1] = cjson.encode({id, 1, '', deps and DEPS.blocked or target, now,
                origin, 0, job[9]})
        end
        replies[i] = deps and block(id, key, deps, job[8].on_failure, job[2]) or target
    end
end

if #events > 0 then
    redis.call('XADD', KEYS[4], '*', 'e', '[' .. table.concat(events, ',') .. ']')
end
return replies
