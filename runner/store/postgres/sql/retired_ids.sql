-- retired_ids: a page of the jobs whose history is kept and that Redis may no longer
-- hold, to fill the retired ids from (runner/daemon/retired_ids.py): finished or deleted
-- (at: when it last changed), or parked (at: its due time, reported as scheduled).
-- $1 the last id of the page before ('' for the first)   $2 finished states and deleted
-- $3 how many at most
-- queue: the job's (its retired id is kept in its queue's slot, beside its jobs)
SELECT j.id,
       CASE WHEN p.id IS NULL THEN j.state ELSE 'scheduled' END AS state,
       COALESCE(p.due_ms, (extract(epoch FROM j.updated_at) * 1000)::int8) AS at_ms,
       COALESCE(j.queue, 'default') AS queue
FROM runner_jobs j
LEFT JOIN runner_parked_jobs p ON p.id = j.id
WHERE j.id > $1 AND (j.state = ANY($2::text[]) OR p.id IS NOT NULL)
ORDER BY j.id
LIMIT $3;
