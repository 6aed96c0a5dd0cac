-- unpark_copy: forget the parked copy of job $1 made at seq $2 (Redis kept the job).
DELETE FROM runner_parked_jobs WHERE id = $1 AND seq = $2;
