-- history_remove_attempts: up to $2 webhook delivery attempts older than $1, found
-- through runner_webhook_attempts_at, in one short statement; the caller repeats it
-- until a batch comes back short.
-- $1 timestamptz oldest time kept, $2 batch size
DELETE FROM runner_webhook_attempts
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM runner_webhook_attempts WHERE at < $1 LIMIT $2
));
