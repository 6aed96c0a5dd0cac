-- state_counts: how many jobs are in each state, as last recorded.
SELECT state, count(*)::int AS jobs
FROM runner_jobs
GROUP BY state
ORDER BY state;
