-- history_drop_partition: a whole partition of runner_job_events goes at once, with
-- no scan of its rows. Takes a moment's exclusive lock on runner_job_events (the
-- caller bounds the wait with lock_timeout).
-- A template: {name} comes from history_partitions, quoted by runner.
DROP TABLE {name};
