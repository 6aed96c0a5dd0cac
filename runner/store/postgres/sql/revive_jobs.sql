-- revive_jobs: what Redis needs to hold a forgotten job again (see runner/store/revival.py):
-- its row, the retries and timeout its latest updates set, and its first event's
-- detail (the extra fields it was enqueued with). Parked jobs are not forgotten ones.
-- $1 job ids (text[])
SELECT j.id, j.task, j.state, j.attempt, j.seq,
       j.args::text AS args, j.kwargs::text AS kwargs, j.result::text AS result, j.error,
       (extract(epoch FROM j.due_at) * 1000)::int8 AS due_ms,
       (SELECT e.detail ->> 'max_attempts' FROM runner_job_events e
         WHERE e.job_id = j.id AND e.detail ? 'update' AND e.detail ? 'max_attempts'
         ORDER BY e.seq DESC LIMIT 1) AS max_attempts,
       (SELECT e.detail ->> 'timeout' FROM runner_job_events e
         WHERE e.job_id = j.id AND e.detail ? 'update' AND e.detail ? 'timeout'
         ORDER BY e.seq DESC LIMIT 1) AS timeout,
       (SELECT e.detail::text FROM runner_job_events e
         WHERE e.job_id = j.id AND e.seq = 1 LIMIT 1) AS first_detail
FROM runner_jobs j
WHERE j.id = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM runner_parked_jobs p WHERE p.id = j.id);
