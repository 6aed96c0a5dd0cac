-- 006_webhook_attempts: every attempt to deliver a transition to a webhook sink
-- ([notify.NAME], see runner/notify/): when, what the endpoint answered or what went
-- wrong, how long it took, and what became of the delivery (delivered, failed and
-- retried, or dead-lettered after its retry budget). Written in batches by the
-- delivering daemon (runner/notify/attempts.py); a replayed batch inserts nothing
-- twice: an attempt is keyed by its sink, event, number and time.

CREATE TABLE runner_webhook_attempts (
    sink         text NOT NULL,
    event_id     text NOT NULL,     -- job id and seq: "<job_id>:<seq>"
    job_id       text NOT NULL,
    seq          integer NOT NULL,
    attempt      integer NOT NULL,  -- 1 for a delivery's first try, counted per delivery
    at           timestamptz NOT NULL,
    daemon       text NOT NULL,
    http_status  integer,           -- null: no answer (timeout, connection refused...)
    error        text,
    duration_ms  integer NOT NULL,
    outcome      text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dead')),
    PRIMARY KEY (sink, event_id, attempt, at)
);
CREATE INDEX runner_webhook_attempts_job ON runner_webhook_attempts (job_id, seq);
CREATE INDEX runner_webhook_attempts_at ON runner_webhook_attempts (at);
