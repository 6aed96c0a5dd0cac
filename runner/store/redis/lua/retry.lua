-- retry.lua: run a failed or cancelled job again, due now, with a fresh attempt
-- budget (see request_lib.lua). A job brought back from PostgreSQL for it
-- (revive.lua) says so in the event.
-- Retried with its workflow (the request's argument has wait_for_dependencies, and
-- the ids come in dependency order), a job that depends on jobs still going (retried
-- just before it, in the same call) waits for them, blocked, counted in their
-- dependents as at its enqueue (see lib.lua), and takes their results if it takes
-- results and has not built its arguments yet (its res:<id> fields are still there).

local WAIT = (cjson.decode(REQUEST) or {}).wait_for_dependencies

-- The ids in the job's `after` whose jobs are neither ended nor gone.
local function going(after)
    local ok, ids = pcall(cjson.decode, after or '')
    local found = {}
    for _, dep in ipairs(ok and type(ids) == 'table' and ids or {}) do
        local s = type(dep) == 'string' and read_job(PREFIX .. dep, 'state')
        if s and s[1] and not string.find(DEPS.ended, ',' .. s[1] .. ',', 1, true) then
            found[#found + 1] = dep
        end
    end
    return found
end

local function wait_again(id, deps)
    hset(PREFIX .. id, 'left', #deps)
    for _, dep in ipairs(deps) do
        redis.call('SADD', dependents_key(dep), id)
        hset(PREFIX .. dep, 'dependents', 1)
    end
end

return each_job(function(id, f)
    local deps = WAIT and DEPS and f[7] and going(f[7]) or {}
    hset(PREFIX .. id, 'attempt', 0, 'due_at', string.format('%d', NOW))
    hdel(PREFIX .. id, 'error', 'result', 'revived')
    redis.call('PERSIST', PREFIX .. id)
    redis.call('ZREM', DEAD, id)
    local extra = {due_at = NOW, previous_attempts = tonumber(f[3]),
        revived = f[6] and true or nil}
    if #deps > 0 then
        wait_again(id, deps)
        extra.waits_for = deps
        return transit(id, f, DEPS.blocked, extra)
    end
    if WAIT and f[8] and f[7] then
        local ok, ids = pcall(cjson.decode, f[7])
        local first = ok and type(ids) == 'table' and ids[1]
        if first and redis.call('HEXISTS', PREFIX .. id, 'res:' .. tostring(first)) == 1 then
            pass_results(PREFIX .. id)
        end
    end
    if f[7] then
        hset(PREFIX .. id, 'left', 0)  -- waits for none: a pause and resume must not block it
    end
    schedule(id, f[4], NOW)
    return transit(id, f, TARGET, extra)
end, 'revived', 'after', 'results')
