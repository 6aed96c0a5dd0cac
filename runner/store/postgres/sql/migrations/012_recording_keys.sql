-- 012_recording_keys: fewer and cheaper index writes for the recorder, which writes
-- every transition (write_events.sql). Three changes, measured on its own write path
-- (bench/history.py): together about a third less database CPU per event.
--
-- 1. Job ids, tasks, states, queues and workflows compare byte by byte (COLLATE "C"):
--    they are identifiers, not words, and the database's own collation (en_US.UTF-8,
--    C.UTF-8 with libc) made every comparison in every index and sort a strcoll()
--    call. Listing orders ties by id in byte order, which is what C.UTF-8 did already.
-- 2. The history's time index is a BRIN one: events are appended in time order, so a
--    block range summary finds a window (throughput.sql, the default partition's
--    prune) as well as a B-tree did, for almost nothing per insert.
-- 3. runner_jobs loses the two listing indexes that had no state in them (every job,
--    one task): each job's insert and every update wrote both. Those listings read
--    the state indexes instead, one range per state merged in order (listing.py), and
--    one small index holds the rows of a state runner does not know (none, unless
--    something else wrote them), so that a merge over the known states misses none.
--    Its list must be runner.states.State's: tests/store/postgres check that.
--
-- Changing a column's collation rebuilds its indexes: runner_jobs and the history are
-- locked meanwhile (seconds per million rows), and the recorders' writes wait; Redis
-- keeps every event until they are written.

DROP INDEX IF EXISTS runner_jobs_listed;
DROP INDEX IF EXISTS runner_jobs_task_listed;
ALTER TABLE runner_jobs
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN task TYPE text COLLATE "C",
    ALTER COLUMN state TYPE text COLLATE "C",
    ALTER COLUMN queue TYPE text COLLATE "C",
    ALTER COLUMN workflow TYPE text COLLATE "C";
CREATE INDEX runner_jobs_other_states_listed
    ON runner_jobs ((COALESCE(created_at, updated_at)) DESC, id DESC)
    WHERE state <> ALL ('{scheduled,running,succeeded,failed,retrying,paused,cancelled,deleted,blocked}'::text[]);

ALTER TABLE runner_job_events ALTER COLUMN job_id TYPE text COLLATE "C";
DROP INDEX runner_job_events_at;
CREATE INDEX runner_job_events_at ON runner_job_events USING brin (at)
    WITH (autosummarize = on);
