-- 005_parked_state: a parked job keeps the state it waits in, to come back in it:
-- scheduled, or retrying (a retry whose backoff reaches beyond the park horizon,
-- parked by the promoter's scan of the Redis schedule; see runner/store/parking.py).
-- Every job parked before this waited scheduled. A constant default: no rewrite.

ALTER TABLE runner_parked_jobs ADD COLUMN state text NOT NULL DEFAULT 'scheduled';
