-- workflow_jobs: the recorded jobs of one workflow, in id order (index 010).
-- $1 workflow id   $2 most rows
SELECT id, task, state, attempt, depends_on, result, error,
       (extract(epoch FROM updated_at) * 1000)::bigint AS updated_at_ms
FROM runner_jobs
WHERE workflow = $1
ORDER BY id
LIMIT $2;
