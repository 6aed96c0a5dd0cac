-- parked_copies: lock the rows of these jobs parked at these seqs, those still there,
-- in id order (as every locking read of parked rows, so two never wait on each other).
-- $1 ids   $2 seqs
SELECT p.id
FROM runner_parked_jobs p
JOIN unnest($1::text[], $2::int[]) AS c (id, seq) ON c.id = p.id AND c.seq = p.seq
ORDER BY p.id
FOR UPDATE OF p;
