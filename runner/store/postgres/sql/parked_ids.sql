-- parked_ids: these parked jobs, locked for this transaction (waiting for a daemon
-- that is moving one of them); recorded_seq as in parked_due.sql.
SELECT p.id, p.state, p.seq, p.attempt, p.job, j.seq AS recorded_seq, p.due_ms
FROM runner_parked_jobs p
LEFT JOIN runner_jobs j ON j.id = p.id
WHERE p.id = ANY($1::text[])
ORDER BY p.id
FOR UPDATE OF p;
