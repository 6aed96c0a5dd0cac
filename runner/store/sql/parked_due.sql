-- parked_due: the parked jobs due by $1 (ms), soonest first, at most $2, locked for
-- this transaction; rows another daemon is moving are skipped, never waited for.
-- recorded_seq is runner_jobs' seq: above the parked seq, the job was moved already
-- (by a mover that died before it could delete the row) and went on from there.
SELECT p.id, p.seq, p.attempt, p.job, j.seq AS recorded_seq
FROM runner_parked_jobs p
LEFT JOIN runner_jobs j ON j.id = p.id
WHERE p.due_ms <= $1
ORDER BY p.due_ms
LIMIT $2
FOR UPDATE OF p SKIP LOCKED;
