-- 011_payload_seqs: the seq of the event that gave a job's args, and of the one that
-- gave its kwargs, as runner_jobs holds them: its enqueue (1), an update, or (args)
-- the release of a job that takes its dependencies' results. Several daemons'
-- recorders commit in parallel, so a later transition can be written before the
-- event that changed the args; they come from the event with the highest seq that
-- carries them, not from the batch written last. NULL in the rows of a runner from
-- before it (read as 0: any event that carries args or kwargs replaces them).

ALTER TABLE runner_jobs ADD COLUMN args_seq integer, ADD COLUMN kwargs_seq integer;
