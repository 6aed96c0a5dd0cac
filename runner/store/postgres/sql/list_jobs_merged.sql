-- list_jobs_merged: one part of a page of every job, or of one task's jobs: the
-- rows of one state (`{state}`), newest first by listing time, then id (migration
-- 002 says why). listing.py joins one part per state with UNION ALL and keeps the
-- first rows of them all in that order: Postgres merges the parts (Merge Append),
-- each one range of runner_jobs_state_listed, or of runner_jobs_state_task_listed
-- with a task, read in order and only as far as the page needs. One more part reads
-- runner_jobs_other_states_listed, the rows of a state runner does not know
-- (migration 012 says why these listings have no index of their own).
-- $1 the earliest listing time shown (timestamptz; -infinity for no bound)
-- $2, $3 the keyset: only rows before (listing time $2, id $3) in the order; with
--        $3 = '' that is every row listed before $2 (see store/postgres/listing.py)
-- $4 how many rows
-- $5 the task, when `{task}` is its condition
-- listing.py adds the default queue's condition to each part (see filtered)
(SELECT id, task, state, attempt, due_at, created_at, updated_at,
        COALESCE(queue, 'default') AS queue,
        COALESCE(created_at, updated_at) AS listed_at
 FROM runner_jobs
 WHERE {state}{task}
   AND COALESCE(created_at, updated_at) >= $1::timestamptz
   AND (COALESCE(created_at, updated_at), id) < ($2::timestamptz, $3::text)
 ORDER BY COALESCE(created_at, updated_at) DESC, id DESC
 LIMIT $4::int)
