-- list_jobs_by_state: a page of the jobs in one state, newest first by listing
-- time, then id (migration 002 says why). One range of runner_jobs_state_listed,
-- read in order: no sort, no scan.
-- $1 the earliest listing time shown (timestamptz; -infinity for no bound)
-- $2, $3 the keyset: only rows before (listing time $2, id $3) in the order; with
--        $3 = '' that is every row listed before $2 (see store/postgres/listing.py)
-- $4 how many rows
-- With a queue, listing.py adds its filter on the range read (see filtered)
-- $5 state
SELECT id, task, state, attempt, due_at, created_at, updated_at,
       COALESCE(queue, 'default') AS queue,
       COALESCE(created_at, updated_at) AS listed_at
FROM runner_jobs
WHERE state = $5::text
  AND COALESCE(created_at, updated_at) >= $1::timestamptz
  AND (COALESCE(created_at, updated_at), id) < ($2::timestamptz, $3::text)
ORDER BY COALESCE(created_at, updated_at) DESC, id DESC
LIMIT $4::int;
