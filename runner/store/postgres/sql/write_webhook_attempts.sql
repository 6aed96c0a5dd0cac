-- write_webhook_attempts: insert a batch of webhook delivery attempts (see migration
-- 006). Idempotent: a batch written again after an unclear failure adds nothing.
-- $1..$11 parallel arrays, one element per attempt: sink, event_id, job_id, seq,
-- attempt, at (ms since the epoch), daemon, http_status (null: no answer), error,
-- duration_ms, outcome.
INSERT INTO runner_webhook_attempts
    (sink, event_id, job_id, seq, attempt, at, daemon, http_status, error, duration_ms, outcome)
SELECT sink, event_id, job_id, seq, attempt, to_timestamp(at_ms / 1000.0), daemon,
       http_status, error, duration_ms, outcome
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::bigint[],
            $7::text[], $8::int[], $9::text[], $10::int[], $11::text[])
    AS a(sink, event_id, job_id, seq, attempt, at_ms, daemon, http_status, error,
         duration_ms, outcome)
ON CONFLICT DO NOTHING
