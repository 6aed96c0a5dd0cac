-- write_events: insert a batch of transitions and fold them into runner_jobs.
-- Idempotent: an event is keyed by (job_id, seq), so a replayed batch inserts
-- nothing new, and runner_jobs only moves forward (a higher seq wins).
-- $1 job ids  $2 seqs  $3 from states ('' = none)  $4 to states  $5 times (ms)
-- $6 daemon ids  $7 attempts  $8 details (JSON text)
WITH batch AS (
    SELECT job_id, seq, NULLIF(from_state, '') AS from_state, to_state,
           to_timestamp(at_ms / 1000.0) AS at, NULLIF(daemon, '') AS daemon, attempt,
           detail::jsonb AS detail
    FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                $7::int[], $8::text[])
         AS b(job_id, seq, from_state, to_state, at_ms, daemon, attempt, detail)
),
inserted AS (
    INSERT INTO runner_job_events (job_id, seq, from_state, to_state, at, daemon, attempt, detail)
    SELECT job_id, seq, from_state, to_state, at, daemon, attempt, detail FROM batch
    ON CONFLICT (job_id, seq) DO NOTHING
    RETURNING 1
),
folded AS (
    SELECT job_id,
           max(seq) AS seq,
           (array_agg(to_state ORDER BY seq DESC))[1] AS state,
           (array_agg(attempt ORDER BY seq DESC))[1] AS attempt,
           (array_agg(at ORDER BY seq DESC))[1] AS updated_at,
           (array_agg(daemon ORDER BY seq DESC))[1] AS daemon,
           min(at) FILTER (WHERE seq = 1) AS created_at,
           max(detail ->> 'task') AS task,
           (array_agg(detail -> 'args' ORDER BY seq DESC) FILTER (WHERE detail ? 'args'))[1] AS args,
           (array_agg(detail -> 'kwargs' ORDER BY seq DESC) FILTER (WHERE detail ? 'kwargs'))[1] AS kwargs,
           (array_agg(detail -> 'result' ORDER BY seq DESC) FILTER (WHERE detail ? 'result'))[1] AS result,
           (array_agg(detail ->> 'error' ORDER BY seq DESC) FILTER (WHERE detail ? 'error'))[1] AS error,
           (array_agg(to_timestamp((detail ->> 'due_at')::bigint / 1000.0) ORDER BY seq DESC)
                FILTER (WHERE detail ? 'due_at'))[1] AS due_at
    FROM batch
    GROUP BY job_id
)
INSERT INTO runner_jobs AS j
    (id, task, state, attempt, seq, args, kwargs, result, error, due_at, created_at, updated_at, daemon)
SELECT job_id, task, state, attempt, seq, args, kwargs, result, error, due_at, created_at, updated_at, daemon
FROM folded
ON CONFLICT (id) DO UPDATE SET
    state      = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.state ELSE j.state END,
    attempt    = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.attempt ELSE j.attempt END,
    updated_at = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.updated_at ELSE j.updated_at END,
    daemon     = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.daemon ELSE j.daemon END,
    task       = COALESCE(j.task, EXCLUDED.task),
    created_at = COALESCE(j.created_at, EXCLUDED.created_at),
    args       = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.args, j.args) ELSE COALESCE(j.args, EXCLUDED.args) END,
    kwargs     = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.kwargs, j.kwargs) ELSE COALESCE(j.kwargs, EXCLUDED.kwargs) END,
    result     = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.result, j.result) ELSE COALESCE(j.result, EXCLUDED.result) END,
    error      = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.error, j.error) ELSE COALESCE(j.error, EXCLUDED.error) END,
    due_at     = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.due_at, j.due_at) ELSE COALESCE(j.due_at, EXCLUDED.due_at) END,
    seq        = GREATEST(j.seq, EXCLUDED.seq);
