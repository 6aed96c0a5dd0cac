-- runner: no transaction
-- 008_queue_listing: the index of `runner jobs --queue Q` (a listing of one queue's
-- jobs, see 002 for the listing order and why CONCURRENTLY): the queue first, then
-- the listing order, so each page of one queue is one index range read in order.
-- Only the jobs of named queues are in it (queue IS NOT NULL): the default queue's,
-- all of a runner's jobs until it uses queues, cost no index write, and their
-- listing keeps the rows of the plain listing's range whose queue is NULL.
-- A queue combined with a state or task filter reads that filter's index and keeps
-- the queue's rows.
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_queue_listed;
CREATE INDEX CONCURRENTLY runner_jobs_queue_listed
    ON runner_jobs (queue, (COALESCE(created_at, updated_at)) DESC, id DESC)
    WHERE queue IS NOT NULL;
