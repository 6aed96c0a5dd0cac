-- pause.lua: take waiting jobs out of the schedule until resumed (see request_lib.lua).

return each_job(function(id, f)
    unschedule(id, f)
    return transit(id, f, TARGET)
end)
