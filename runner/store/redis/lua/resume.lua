-- resume.lua: put paused jobs back in the schedule at their due time; one already
-- past is due at once (see request_lib.lua).

return each_job(function(id, f)
    local due = whole(f[6], -MAX_SAFE)
    if due == nil then
        return 'malformed:due_at=' .. shown(f[6])
    end
    schedule(id, f[4], due)
    return transit(id, f, TARGET)
end, 'due_at')
