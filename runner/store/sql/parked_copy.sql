-- parked_copy: lock the row of job $1 parked at seq $2, if it is still there.
SELECT 1 FROM runner_parked_jobs WHERE id = $1 AND seq = $2 FOR UPDATE;
