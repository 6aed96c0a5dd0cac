-- 004_parked_jobs: jobs due beyond the park horizon wait here instead of in Redis
-- memory (see runner/store/parking.py). Their runner_jobs row and history are written as
-- for any job; every daemon moves them into Redis well before they are due, in due
-- order, through runner_parked_jobs_due.

CREATE TABLE runner_parked_jobs (
    id          text PRIMARY KEY,
    due_ms      bigint NOT NULL,   -- due time, ms since the epoch (exact, as in Redis)
    seq         integer NOT NULL,  -- the job's seq when parked: its history goes on from it
    attempt     integer NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    job         text NOT NULL      -- the job as enqueue.lua takes it (JSON), to put back
);
CREATE INDEX runner_parked_jobs_due ON runner_parked_jobs (due_ms);
