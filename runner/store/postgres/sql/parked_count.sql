-- parked_count: how many jobs wait in PostgreSQL, and the soonest due time (ms).
SELECT count(*)::bigint AS jobs, min(due_ms) AS soonest_ms FROM runner_parked_jobs;
