-- history_prune_default: stray events in the DEFAULT partition (their day had no
-- partition when they were written) older than the history kept. The DEFAULT
-- partition holds only such strays, so this DELETE reads little.
-- $1 the oldest time kept (timestamptz)
DELETE FROM runner_job_events_default WHERE at < $1;
