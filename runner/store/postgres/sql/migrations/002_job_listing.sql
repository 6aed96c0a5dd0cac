-- runner: no transaction
-- 002_job_listing: indexes for listing jobs a page at a time (runner jobs, list()).
--
-- A listing is newest first by the job's listing time, ties broken by id, and pages
-- by keyset: "the rows after (time, id) of the last row shown", never OFFSET. Each
-- filter a listing can have (none, state, task, state and task) has an index that
-- starts with its equality columns and continues in the listing order, so every
-- page, however deep, is one index range read in order: no sort, no scan.
--
-- The listing time is COALESCE(created_at, updated_at). created_at comes from the
-- job's first event and is NULL until that event is recorded (a recorder can write
-- a later batch first); such a row is listed at its latest recorded time instead of
-- being left out, and updated_at is never NULL. Creation time, not the time of the
-- latest change, orders the list so that a job keeps its place while it runs: a walk
-- through the pages meets every job once.
--
-- The indexes are built CONCURRENTLY, so the recorders' writes to runner_jobs go on
-- while they build (seconds per million rows). That cannot run in a transaction:
-- this migration runs statement by statement (see runner/store/postgres/migrate.py) and is
-- recorded once all of them succeeded. Each index is dropped before it is built, so
-- that a run cut short (which leaves an invalid index) can be run again whole.
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_listed;
CREATE INDEX CONCURRENTLY runner_jobs_listed
    ON runner_jobs ((COALESCE(created_at, updated_at)) DESC, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_state_listed;
CREATE INDEX CONCURRENTLY runner_jobs_state_listed
    ON runner_jobs (state, (COALESCE(created_at, updated_at)) DESC, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_task_listed;
CREATE INDEX CONCURRENTLY runner_jobs_task_listed
    ON runner_jobs (task, (COALESCE(created_at, updated_at)) DESC, id DESC);
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_state_task_listed;
CREATE INDEX CONCURRENTLY runner_jobs_state_task_listed
    ON runner_jobs (state, task, (COALESCE(created_at, updated_at)) DESC, id DESC);

-- 001's (state, updated_at) and (task, updated_at) serve no query: the listing
-- indexes above cover every filter, and each index costs the recorder's upserts.
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_state_updated;
DROP INDEX CONCURRENTLY IF EXISTS runner_jobs_task_updated;
