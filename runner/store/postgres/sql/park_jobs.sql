-- park_jobs: write jobs that wait in PostgreSQL; an id parked already is left as it is.
-- $1 ids   $2 due (ms)   $3 seq   $4 attempt   $5 the jobs (JSON text)
-- $6 the state each waits in (scheduled or retrying)
-- Returns the ids parked now.
INSERT INTO runner_parked_jobs (id, due_ms, seq, attempt, job, state)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::int[], $5::text[], $6::text[])
ORDER BY 1
ON CONFLICT (id) DO NOTHING
RETURNING id;
