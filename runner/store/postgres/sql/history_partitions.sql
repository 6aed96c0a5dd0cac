-- history_partitions: the partitions of runner_job_events and the range each covers.
-- lower is NULL for a range from MINVALUE (the legacy partition of migration 003),
-- upper NULL for one up to MAXVALUE; both NULL with is_default for the DEFAULT one.
-- The bounds are read back from the partition's definition, whatever its name.
SELECT c.relname AS name,
       (regexp_match(b.bound, 'FROM \(''([^'']*)''\)'))[1]::timestamptz AS lower,
       (regexp_match(b.bound, 'TO \(''([^'']*)''\)'))[1]::timestamptz AS upper,
       b.bound = 'DEFAULT' AS is_default
FROM pg_inherits AS i
JOIN pg_class AS c ON c.oid = i.inhrelid
CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) AS b
WHERE i.inhparent = 'runner_job_events'::regclass
ORDER BY upper NULLS LAST, name;
