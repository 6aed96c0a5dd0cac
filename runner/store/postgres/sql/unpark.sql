-- unpark: forget parked copies; $1 ids.
DELETE FROM runner_parked_jobs WHERE id = ANY($1::text[]);
