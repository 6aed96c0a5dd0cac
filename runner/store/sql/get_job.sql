-- get_job: a job's latest recorded state (used when Redis no longer holds it).
-- $1 job id
SELECT id, task, state, attempt, seq, args::text AS args, kwargs::text AS kwargs,
       result::text AS result, error, due_at, created_at, updated_at, daemon
FROM runner_jobs
WHERE id = $1;
