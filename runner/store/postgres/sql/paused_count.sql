-- paused_count: jobs whose latest recorded state is paused (one by one, or with
-- their workflow), read from the (state, updated_at) index.
SELECT count(*)::bigint FROM runner_jobs WHERE state = 'paused';
