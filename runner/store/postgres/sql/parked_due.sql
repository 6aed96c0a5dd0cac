-- parked_due: a page of the parked jobs due by $1 (ms), in due order after the row
-- ($3 due ms, $4 id) where the page before ended, at most $2, locked for this
-- transaction; rows another daemon is moving are skipped, never waited for. Rows
-- that stay parked (Redis would not take their job back) are passed, not read again.
-- recorded_seq is runner_jobs' seq: above the parked seq, the job was moved already
-- (by a mover that died before it could delete the row) and went on from there.
SELECT p.id, p.state, p.seq, p.attempt, p.job, j.seq AS recorded_seq, p.due_ms
FROM runner_parked_jobs p
LEFT JOIN runner_jobs j ON j.id = p.id
WHERE p.due_ms <= $1 AND p.due_ms >= $3 AND (p.due_ms, p.id) > ($3, $4)
ORDER BY p.due_ms, p.id
LIMIT $2
FOR UPDATE OF p SKIP LOCKED;
