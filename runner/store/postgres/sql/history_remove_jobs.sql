-- history_remove_jobs: up to $3 rows of runner_jobs in a finished state ($1) whose
-- history is older than $2, in one short statement; the caller repeats it until a
-- batch comes back short, so no lock is held for long.
-- The rows are found through runner_jobs_state_listed (state, listing time): a row
-- qualifies when both its creation and its latest change are older than $2. The
-- ids found are deleted through the primary key (an array, not a join, which the
-- planner may turn into a scan of the whole table), and the outer WHERE checks the
-- state again, so a row that changed in the meantime (a retried job) stays.
-- $1 text[] finished states, $2 timestamptz oldest time kept, $3 batch size
DELETE FROM runner_jobs
WHERE id = ANY (ARRAY(
        SELECT id FROM runner_jobs
        WHERE state = ANY($1::text[])
          AND COALESCE(created_at, updated_at) < $2
          AND updated_at < $2
        LIMIT $3
    ))
  AND state = ANY($1::text[])
  AND updated_at < $2;
