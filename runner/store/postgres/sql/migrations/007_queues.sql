-- 007_queues: the queue a job waits in and its priority (see runner/store/redis/keys.py
-- and lua/claim.lua), from its enqueue event's detail. NULL is the default queue, and
-- priority 0: what every job of a runner from before queues was. No index: `runner
-- jobs --queue` filters the listing's own index ranges (list_jobs*.sql).

ALTER TABLE runner_jobs ADD COLUMN queue text, ADD COLUMN priority smallint;
