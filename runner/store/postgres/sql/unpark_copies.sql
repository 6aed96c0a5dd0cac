-- unpark_copies: forget the parked copies of these jobs made at these seqs (Redis kept
-- the jobs).   $1 ids   $2 seqs
DELETE FROM runner_parked_jobs p
USING unnest($1::text[], $2::int[]) AS c (id, seq)
WHERE p.id = c.id AND p.seq = c.seq;
