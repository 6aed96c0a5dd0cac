-- webhook_attempts: the delivery attempts of one sink, oldest first (for an
-- operator, and the tests). $1 sink, $2 most rows.
SELECT sink, event_id, job_id, seq, attempt, at, daemon, http_status, error, duration_ms,
       outcome
FROM runner_webhook_attempts
WHERE sink = $1
ORDER BY at, event_id, attempt
LIMIT $2
