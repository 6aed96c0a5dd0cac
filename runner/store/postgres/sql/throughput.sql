-- throughput: per minute since $1 (a timestamptz), jobs that ended succeeded or
-- failed, and how late claimed jobs started (the claim event's detail.late_ms).
-- The WHERE on `at` alone reads the window through runner_job_events_at, so the
-- cost follows the window's events, never the table's size. A late_ms that is not
-- a number (a stream entry runner did not write) counts as no sample.
SELECT date_trunc('minute', at) AS minute,
       count(*) FILTER (WHERE to_state = 'succeeded')::int AS succeeded,
       count(*) FILTER (WHERE to_state = 'failed')::int AS failed,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY late_ms)
           FILTER (WHERE late_ms IS NOT NULL) AS lateness_p50_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY late_ms)
           FILTER (WHERE late_ms IS NOT NULL) AS lateness_p99_ms
FROM (
    SELECT at, to_state,
           CASE WHEN to_state = 'running' AND jsonb_typeof(detail -> 'late_ms') = 'number'
                THEN (detail ->> 'late_ms')::float8 END AS late_ms
    FROM runner_job_events
    WHERE at >= $1
) AS window_events
GROUP BY 1
ORDER BY 1;
