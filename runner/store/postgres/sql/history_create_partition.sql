-- history_create_partition: one day's partition of runner_job_events, created beside
-- the table and then attached, so that events of that day already in the DEFAULT
-- partition (written before it existed) move into it first: attaching a range that
-- the DEFAULT partition holds rows of would fail. Writes to the DEFAULT partition
-- wait for this transaction (milliseconds: it holds only stray events); writes to
-- other partitions do not.
-- A template, not parameters (DDL takes none): {name}, {lower} and {upper} are made
-- by runner from a date (runner/store/postgres/history.py), never from input.
LOCK TABLE runner_job_events_default IN EXCLUSIVE MODE;
CREATE TABLE {name} (LIKE runner_job_events INCLUDING DEFAULTS);
WITH moved AS (
    DELETE FROM runner_job_events_default
    WHERE at >= '{lower}' AND at < '{upper}'
    RETURNING job_id, seq, from_state, to_state, at, daemon, attempt, detail
)
INSERT INTO {name} (job_id, seq, from_state, to_state, at, daemon, attempt, detail)
SELECT job_id, seq, from_state, to_state, at, daemon, attempt, detail FROM moved;
ALTER TABLE runner_job_events ATTACH PARTITION {name}
    FOR VALUES FROM ('{lower}') TO ('{upper}');
