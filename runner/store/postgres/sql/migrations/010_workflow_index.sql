-- runner: no transaction
-- 010_workflow_index: the jobs of one workflow (`runner workflow WF`), in id order;
-- only jobs of a workflow are in it (CONCURRENTLY: see 002).
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_workflow;
CREATE INDEX CONCURRENTLY runner_jobs_workflow ON runner_jobs (workflow, id)
    WHERE workflow IS NOT NULL;
