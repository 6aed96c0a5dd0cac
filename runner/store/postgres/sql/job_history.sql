-- job_history: every recorded transition of one job, oldest first.
-- $1 job id
SELECT seq, from_state, to_state, at, daemon, attempt, detail::text AS detail
FROM runner_job_events
WHERE job_id = $1
ORDER BY seq;
