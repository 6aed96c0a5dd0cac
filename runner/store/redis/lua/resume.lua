-- resume.lua: put paused jobs back in the schedule at their due time; one already
-- past is due at once (see request_lib.lua). A job paused while it waited for the
-- jobs it depends on, some still going (`left` above 0), goes back to waiting
-- (blocked) instead, and is scheduled once they ended (see lib.lua).

return each_job(function(id, f)
    if DEPS and (tonumber(f[7]) or 0) > 0 then
        return transit(id, f, DEPS.blocked)
    end
    local due = whole(f[6], -MAX_SAFE)
    if due == nil then
        return 'malformed:due_at=' .. shown(f[6])
    end
    schedule(id, f[4], due)
    return transit(id, f, TARGET)
end, 'due_at', 'left')
