-- 003_history_partitions: runner_job_events becomes a table partitioned by day, so
-- that old history leaves by dropping whole partitions (runner/daemon/history_keeper.py)
-- instead of deleting rows one by one. Its columns are unchanged.
--
-- Partitions: one per UTC day, named runner_job_events_YYYYMMDD, created ahead of
-- time by `runner migrate` and by every daemon (runner/store/postgres/history.py). A
-- DEFAULT partition takes any event whose day has none (a clock far off, a stream
-- entry another program wrote), so no insert can ever fail for want of a partition;
-- when that day's partition is created later, its rows move into it.
--
-- The key becomes (job_id, seq, at): a unique constraint of a partitioned table must
-- hold the partition key. A replayed event carries the same `at` (the Lua script's
-- time, in the stream entry), so inserts stay idempotent.
--
-- The history already written is kept where it is: the old table is attached as one
-- partition covering everything before the start of tomorrow (UTC), with no copy.
-- Attaching builds its (job_id, seq, at) index and reads it once to check the range,
-- inside this transaction: writes wait meanwhile (seconds per million events).
-- Old rows dated tomorrow or later (a clock far ahead) move to the DEFAULT partition
-- first. An empty old table (a new install) is dropped instead.

ALTER TABLE runner_job_events RENAME TO runner_job_events_legacy;
ALTER TABLE runner_job_events_legacy RENAME CONSTRAINT runner_job_events_pkey
    TO runner_job_events_legacy_pkey;
ALTER INDEX runner_job_events_at RENAME TO runner_job_events_legacy_at;

CREATE TABLE runner_job_events (
    job_id      text NOT NULL,
    seq         integer NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    at          timestamptz NOT NULL,
    daemon      text,
    attempt     integer NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, seq, at)
) PARTITION BY RANGE (at);
CREATE INDEX runner_job_events_at ON runner_job_events (at);
CREATE TABLE runner_job_events_default PARTITION OF runner_job_events DEFAULT;

DO $$
DECLARE
    -- On timestamps, not timestamptz: adding a day must not depend on the session's zone.
    cutover timestamptz :=
        (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM runner_job_events_legacy) THEN
        DROP TABLE runner_job_events_legacy;
        RETURN;
    END IF;
    WITH moved AS (DELETE FROM runner_job_events_legacy WHERE at >= cutover RETURNING *)
    INSERT INTO runner_job_events
    SELECT job_id, seq, from_state, to_state, at, daemon, attempt, detail FROM moved;
    -- The (job_id, seq, at) index the partitioned key needs replaces it.
    ALTER TABLE runner_job_events_legacy DROP CONSTRAINT runner_job_events_legacy_pkey;
    EXECUTE format(
        'ALTER TABLE runner_job_events ATTACH PARTITION runner_job_events_legacy '
        'FOR VALUES FROM (MINVALUE) TO (%L)', cutover
    );
END
$$;
