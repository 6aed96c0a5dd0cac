-- 001_init: the latest state of each job, and every transition it went through.

CREATE TABLE runner_jobs (
    id          text PRIMARY KEY,
    task        text,
    state       text NOT NULL,
    attempt     integer NOT NULL DEFAULT 0,
    seq         integer NOT NULL,
    args        jsonb,
    kwargs      jsonb,
    result      jsonb,
    error       text,
    due_at      timestamptz,
    created_at  timestamptz,
    updated_at  timestamptz NOT NULL,
    daemon      text
);
CREATE INDEX runner_jobs_state_updated ON runner_jobs (state, updated_at);
CREATE INDEX runner_jobs_task_updated ON runner_jobs (task, updated_at);

CREATE TABLE runner_job_events (
    job_id      text NOT NULL,
    seq         integer NOT NULL,
    from_state  text,
    to_state    text NOT NULL,
    at          timestamptz NOT NULL,
    daemon      text,
    attempt     integer NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX runner_job_events_at ON runner_job_events (at);
