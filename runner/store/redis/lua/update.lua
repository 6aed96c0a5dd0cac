-- update.lua: change a waiting or paused job's arguments, due time, attempts or
-- timeout (see request_lib.lua). REQUEST: {"args": JSON text, "kwargs": JSON text,
-- "due_at": ms, "max_attempts": n, "timeout": seconds, "priority": 0-9}, each optional; args and
-- kwargs are stored as the JSON text they are. The event's detail carries the
-- new values, which is how Postgres learns of them.

local changes = cjson.decode(REQUEST)

-- A new due time moves the job where it waits: its kind's due set, or its paused
-- task's held set; a paused job is in neither and takes it when resumed. A job
-- waiting for a concurrency slot or for its rate goes back to its due set at the new
-- time (it asks again when that comes), as does one waiting for its fairness group's
-- turn (a claim puts it back in its group then).
local function move(id, f, due)
    local groups = read_job(PREFIX .. id, 'cap_group', 'rate_group', 'fair_group') or {}
    if redis.call('ZSCORE', due_set(DUE, f[4], priority_of(id)), id) then
        schedule(id, f[4], due)
    elseif f[5] and redis.call('ZSCORE', HELD .. f[5], id) then
        redis.call('ZADD', HELD .. f[5], due, id)
    elseif groups[1] and redis.pcall('ZREM', capped_key(groups[1]), id) == 1 then
        schedule(id, f[4], due)
    elseif groups[2] and redis.pcall('ZREM', rated_key(groups[2]), id) == 1 then
        schedule(id, f[4], due)
    elseif groups[3] and redis.pcall('ZREM', fair_key(groups[3]), id) == 1 then
        count_fair(f[4], -1)
        schedule(id, f[4], due)
    end
end

-- A new priority moves a due job to its level's set, at the same due time.
local function reprioritise(id, f, priority)
    local old = due_set(DUE, f[4], priority_of(id))
    local score = redis.call('ZSCORE', old, id)
    if priority > 0 then
        hset(PREFIX .. id, 'priority', priority)
    else
        hdel(PREFIX .. id, 'priority')
    end
    if score then
        redis.call('ZREM', old, id)
        schedule(id, f[4], tonumber(score))
    end
end

return each_job(function(id, f)
    local key, detail, raw = PREFIX .. id, {update = true}, {}
    for _, name in ipairs({'args', 'kwargs'}) do
        if changes[name] then
            hset(key, name, changes[name])
            raw[#raw + 1] = '"' .. name .. '":' .. changes[name]
        end
    end
    for _, name in ipairs({'max_attempts', 'timeout'}) do
        if changes[name] then
            hset(key, name, changes[name])
            detail[name] = changes[name]
        end
    end
    if changes.priority then
        reprioritise(id, f, changes.priority)
        detail.priority = changes.priority
    end
    if changes.due_at then
        hset(key, 'due_at', string.format('%d', changes.due_at))
        detail.due_at = changes.due_at
        move(id, f, changes.due_at)
    end
    return transit(id, f, nil, detail, table.concat(raw, ','))
end)
