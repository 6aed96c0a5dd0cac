-- state_task_counts: how many jobs of each task are in each state, as last recorded.
-- One scan serves both of `runner status`'s tables: per task, and per state (summed).
SELECT task, state, count(*)::int AS jobs
FROM runner_jobs
GROUP BY task, state
ORDER BY task, state;
