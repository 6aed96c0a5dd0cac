-- job_states: which of these ids name a recorded job, and its latest state.
-- $1 job ids (text[])
SELECT id, state FROM runner_jobs WHERE id = ANY($1::text[]);
