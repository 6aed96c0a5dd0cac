-- get_job: a job's latest recorded state (used when Redis no longer holds it).
-- $1 job id
-- parked: the job waits in runner_parked_jobs (due beyond the park horizon).
SELECT id, task, state, attempt, seq, args::text AS args, kwargs::text AS kwargs,
       result::text AS result, error, due_at, created_at, updated_at, daemon,
       COALESCE(queue, 'default') AS queue, COALESCE(priority, 0) AS priority,
       EXISTS (SELECT 1 FROM runner_parked_jobs p WHERE p.id = j.id) AS parked
FROM runner_jobs j
WHERE id = $1;
