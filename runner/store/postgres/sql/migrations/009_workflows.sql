-- 009_workflows: the workflow a job belongs to and the jobs it depends on (see
-- runner/client/depends.py and runner/workflows), from its enqueue event's detail
-- (`workflow`, and `after`, a JSON list as text). NULL for a job of neither, as every
-- job of a runner from before workflows was. So a workflow's graph can be read once
-- Redis has forgotten it.

ALTER TABLE runner_jobs ADD COLUMN workflow text, ADD COLUMN depends_on jsonb;
