-- write_events: insert a batch of transitions and fold them into runner_jobs.
-- Idempotent: an event is keyed by (job_id, seq, at) (`at` is the partition key,
-- see migration 003; a replayed event has the same `at`), so a replayed batch
-- inserts nothing new, and runner_jobs only moves forward (a higher seq wins).
-- PgStore.record first runs it without the events' ON CONFLICT line: nearly every
-- batch is new, and that spares a lookup per event; a replayed event then fails the
-- statement as a whole, and the batch is run again as written here.
-- Rows are written in key order: several daemons' recorders write overlapping
-- jobs at once, and taking row locks in one global order keeps them from
-- deadlocking each other (a deadlock that still happens is retried).
-- Returns the jobs of the batch that runner_jobs now holds in a finished state
-- ($2, the finished states), with their queues: Redis keeps such a job until then
-- (see forget.lua).
-- $1 JSON text: an array of stream entries, each an array of events as the Lua
--    scripts wrote them: [job_id, seq, from_state ('' = none), to_state, at (ms),
--    daemon ('' = none), attempt, detail (JSON text)]. Postgres parses it, so the
--    recorder never decodes an event in Python.
WITH batch AS (
    SELECT (ev ->> 0) COLLATE "C" AS job_id,
           (ev ->> 1)::int AS seq,
           NULLIF(ev ->> 2, '') AS from_state,
           ev ->> 3 AS to_state,
           to_timestamp((ev ->> 4)::float8 / 1000.0) AS at,
           NULLIF(ev ->> 5, '') AS daemon,
           (ev ->> 6)::int AS attempt,
           (ev ->> 7)::jsonb AS detail
    FROM jsonb_array_elements($1::jsonb) AS entry,
         jsonb_array_elements(entry) AS ev
),
inserted AS (
    INSERT INTO runner_job_events (job_id, seq, from_state, to_state, at, daemon, attempt, detail)
    SELECT job_id, seq, from_state, to_state, at, daemon, attempt, detail FROM batch
    ORDER BY job_id, seq
    ON CONFLICT (job_id, seq, at) DO NOTHING
),
latest AS (
    SELECT DISTINCT ON (job_id) job_id, seq, to_state, attempt, at, daemon, detail
    FROM batch
    ORDER BY job_id, seq DESC
),
first AS (
    SELECT DISTINCT ON (job_id) job_id, at, detail FROM batch WHERE seq = 1 ORDER BY job_id
),
updated AS (
    -- The due time an update's event sets.
    SELECT DISTINCT ON (job_id) job_id, detail ->> 'due_at' AS due_at
    FROM batch WHERE detail ? 'update' ORDER BY job_id, seq DESC
),
given_args AS (
    -- The args as the latest event of the batch that gives them: the enqueue, an
    -- update, or the release of a job that takes its dependencies' results (the args
    -- it runs with); their seq decides against the row's (args_seq).
    SELECT DISTINCT ON (job_id) job_id, seq, detail -> 'args' AS args
    FROM batch WHERE detail ? 'args' AND (seq = 1 OR detail ? 'update' OR detail ? 'dependency')
    ORDER BY job_id, seq DESC
),
given_kwargs AS (
    SELECT DISTINCT ON (job_id) job_id, seq, detail -> 'kwargs' AS kwargs
    FROM batch WHERE detail ? 'kwargs' AND (seq = 1 OR detail ? 'update')
    ORDER BY job_id, seq DESC
),
folded AS (
    -- The enqueue event (seq 1) carries task, args, kwargs and the first due time;
    -- the latest event carries the state and, where it has them, result and error;
    -- an update's event, new args, kwargs and due time.
    SELECT l.job_id, l.seq, l.to_state AS state, l.attempt, l.at AS updated_at, l.daemon,
           f.at AS created_at,
           f.detail ->> 'task' AS task,
           f.detail ->> 'queue' AS queue,
           f.detail ->> 'workflow' AS workflow,
           CASE WHEN jsonb_typeof(f.detail -> 'after') = 'string'
                THEN (f.detail ->> 'after')::jsonb END AS depends_on,
           (f.detail ->> 'priority')::smallint AS priority,
           a.args, a.seq AS args_seq, k.kwargs, k.seq AS kwargs_seq,
           l.detail -> 'result' AS result,
           l.detail ->> 'error' AS error,
           to_timestamp(COALESCE(l.detail ->> 'due_at', u.due_at, f.detail ->> 'due_at')::float8 / 1000.0)
               AS due_at
    FROM latest l
    LEFT JOIN first f ON f.job_id = l.job_id
    LEFT JOIN updated u ON u.job_id = l.job_id
    LEFT JOIN given_args a ON a.job_id = l.job_id
    LEFT JOIN given_kwargs k ON k.job_id = l.job_id
),
upserted AS (
INSERT INTO runner_jobs AS j
    (id, task, state, attempt, seq, args, kwargs, result, error, due_at, created_at, updated_at, daemon,
     queue, priority, workflow, depends_on, args_seq, kwargs_seq)
SELECT job_id, task, state, attempt, seq, args, kwargs, result, error, due_at, created_at, updated_at, daemon,
       queue, priority, workflow, depends_on, args_seq, kwargs_seq
FROM folded
ORDER BY job_id
ON CONFLICT (id) DO UPDATE SET
    state      = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.state ELSE j.state END,
    attempt    = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.attempt ELSE j.attempt END,
    updated_at = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.updated_at ELSE j.updated_at END,
    daemon     = CASE WHEN EXCLUDED.seq > j.seq THEN EXCLUDED.daemon ELSE j.daemon END,
    task       = COALESCE(j.task, EXCLUDED.task),
    queue      = COALESCE(j.queue, EXCLUDED.queue),
    priority   = COALESCE(j.priority, EXCLUDED.priority),
    workflow   = COALESCE(j.workflow, EXCLUDED.workflow),
    depends_on = COALESCE(j.depends_on, EXCLUDED.depends_on),
    created_at = COALESCE(j.created_at, EXCLUDED.created_at),
    args       = CASE WHEN EXCLUDED.args_seq > COALESCE(j.args_seq, 0) THEN EXCLUDED.args ELSE j.args END,
    args_seq   = GREATEST(j.args_seq, EXCLUDED.args_seq),
    kwargs     = CASE WHEN EXCLUDED.kwargs_seq > COALESCE(j.kwargs_seq, 0) THEN EXCLUDED.kwargs ELSE j.kwargs END,
    kwargs_seq = GREATEST(j.kwargs_seq, EXCLUDED.kwargs_seq),
    result     = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.result, j.result) ELSE COALESCE(j.result, EXCLUDED.result) END,
    error      = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.error, j.error) ELSE COALESCE(j.error, EXCLUDED.error) END,
    due_at     = CASE WHEN EXCLUDED.seq > j.seq THEN COALESCE(EXCLUDED.due_at, j.due_at) ELSE COALESCE(j.due_at, EXCLUDED.due_at) END,
    seq        = GREATEST(j.seq, EXCLUDED.seq)
RETURNING id, seq, state, queue
)
SELECT id, seq, COALESCE(queue, 'default') AS queue FROM upserted WHERE state = ANY($2::text[]);
