"""What each command of `runner` says of itself: its one-line help, its description and
its examples, as `runner --help` and `runner COMMAND --help` print them. Kept apart
from the parser's arguments so the two read on their own."""

from __future__ import annotations

# name: (one-line help, description, examples)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "run the daemon",
        "Run the daemon in the foreground: claim due jobs, run them, fire cron schedules "
        "and record every transition in PostgreSQL. SIGHUP reloads the config, SIGTERM or "
        "Ctrl-C stops after running jobs finish (within [daemon] shutdown_grace); a second "
        "one stops at once. With no [redis] url or [postgres] url it starts embedded "
        "servers under [embedded] dir.",
        "runner --config config/dev.toml run\nrunner run --drain   # exit once no work is left",
    ),
    "web": (
        "serve the JSON API and the dashboard",
        "Serve a JSON API for everything the CLI does, and the dashboard, until SIGTERM or "
        "Ctrl-C. It listens on [web] listen (127.0.0.1:8080 by default). Every change "
        "(POST, PATCH, DELETE) needs the token ([web] token or RUNNER_WEB_TOKEN) as "
        "'Authorization: Bearer TOKEN'; reads need it too when listening beyond loopback, "
        "and it refuses to start there without a token.",
        "runner web\n"
        "runner web --listen 127.0.0.1:9000\n"
        'curl -H "Authorization: Bearer $RUNNER_WEB_TOKEN" -d \'{"task": "hello"}\' '
        "http://127.0.0.1:8080/api/jobs",
    ),
    "check-config": (
        "validate the config",
        "Read the config, import every task's target and check every cron schedule; list "
        "every problem found, each with its key (e.g. tasks.resize.timeout).",
        "runner check-config --config /etc/runner/runner.toml",
    ),
    "migrate": (
        "create or upgrade the schema",
        "Create or upgrade runner's tables in PostgreSQL (the daemon also does this when it "
        "starts). Safe to run any number of times.",
        "runner migrate",
    ),
    "enqueue": (
        "enqueue a job",
        "Enqueue a job for a task declared under [tasks] in the config and print its id. "
        "Arguments are JSON, given inline, as @FILE or as - (stdin). A job id names one "
        "job for good: enqueueing an id that a job already has (live, or recorded in "
        "PostgreSQL) changes nothing and says so on stderr.",
        "runner enqueue hello --args '[\"you\"]'\n"
        "runner enqueue hello --args '[\"later\"]' --in 10m --id greeting-42\n"
        "runner enqueue checksum --args @payload.json --at 2030-01-01T09:00:00Z\n"
        "produce-args | runner enqueue checksum --args - --json",
    ),
    "show": (
        "a job's state, data and history",
        "Show one job: its live state from Redis (or, once Redis forgot it, as recorded), "
        "its arguments, result and error, and its history from PostgreSQL. Large payloads "
        "are cut short unless --full; --json always prints everything.",
        "runner show greeting-42\nrunner show greeting-42 --json | jq .history",
    ),
    "workflow": (
        "a workflow's jobs, what each waits for, and their states",
        "Show the jobs of one workflow (its id is what enqueue_workflow returned, and "
        "each job's `workflow` in show --json): each job's task, state and the jobs it "
        "depends on, from PostgreSQL, with live states from Redis.",
        "runner workflow wf-3f2a9c1d0e4b5a6f\n"
        "runner workflow wf-3f2a9c1d0e4b5a6f --json | jq .states",
    ),
    "jobs": (
        "list jobs a page at a time",
        "List jobs newest first (by creation time), filtered by state, task and creation "
        "time, a page at a time: each page is as fast at a million jobs as at ten. The "
        "list comes from PostgreSQL, each live job's state from Redis. The last line gives "
        "the command for the next page.",
        "runner jobs --state scheduled --limit 50\n"
        "runner jobs --state failed --task checksum --since 1h\n"
        "runner jobs --since 2030-01-01T00:00Z --until 2030-01-02T00:00Z --json | jq .next_cursor",
    ),
    "logs": (
        "read, filter and follow the JSON log",
        "Print the daemon's JSON log lines readably, filtered by job, task, level or time. "
        "Reads [log] file from the config, a FILE, or - (stdin).",
        "runner logs -f --job greeting-42\n"
        "journalctl -u runner -o cat -f | runner logs - --level warning",
    ),
    "events": (
        "transitions as they happen",
        "Print job transitions (enqueued, started, succeeded, failed...) from the transition "
        "stream in Redis: those it still holds ([events] keep, 2 minutes by default), then "
        "with -f every new one as it happens, until Ctrl-C. Older history is in "
        "PostgreSQL (`runner show`, `runner jobs`). --json prints one object per line, "
        "as GET /api/events sends them.",
        "runner events\nrunner events -f --task checksum --state failed\n"
        "runner events -f --job greeting-42 --json",
    ),
    "status": (
        "backlog, daemons, set-aside jobs",
        "Jobs due and waiting per kind, running jobs, live daemons, unrecorded transitions, "
        "jobs and events set aside as malformed, and the count of jobs per recorded state.",
        "runner status\nrunner status --json",
    ),
    "pause": (
        "pause jobs, a task, or everything",
        "Take waiting jobs out of the schedule until resumed. --task NAME holds every job "
        "of a task on every daemon (its due jobs stay due); --all is maintenance mode: no "
        "daemon starts anything, running jobs finish. Both last until resumed, across "
        "daemon restarts. Exit 1 if any job was refused (its state is said) or not found.",
        "runner pause 8f14e45f greeting-42\nrunner pause --task checksum\nrunner pause --all",
    ),
    "resume": (
        "resume paused jobs, a task, or everything",
        "Put paused jobs back in the schedule (a due time already past runs at once), or "
        "let a paused task's jobs, or every job (--all), start again.",
        "runner resume greeting-42\nrunner resume --task checksum\nrunner resume --all",
    ),
    "cancel": (
        "cancel waiting, paused or running jobs",
        "End jobs for good. A running job's daemon, on any host, stops its work within a "
        "second: an async job is cancelled, a cpu job's worker killed and replaced, an "
        "io job's thread left to finish with its result dropped.",
        "runner cancel greeting-42 8f14e45f",
    ),
    "retry": (
        "run failed or cancelled jobs again",
        "Put failed or cancelled jobs back in the schedule, due now, with a fresh attempt budget.",
        "runner retry greeting-42",
    ),
    "delete": (
        "delete jobs that are not running",
        "Remove jobs from Redis; the history in PostgreSQL keeps a last 'deleted' event. A "
        "running job must be cancelled first.",
        "runner delete greeting-42",
    ),
    "update": (
        "change a waiting or paused job",
        "Change a scheduled, retrying or paused job's arguments, due time, retries or "
        "timeout; the history records what changed and who asked.",
        "runner update greeting-42 --args '[\"again\"]' --in 5m\n"
        "runner update greeting-42 --retries 5 --timeout 2m",
    ),
    "wait": (
        "wait for a job to end",
        "Block until the job ends, woken by its transitions (no polling), and print its "
        "result, or how it ended. Exit 0 if it succeeded, 1 if it failed, was cancelled or "
        "deleted, 3 if it has not ended within --timeout.",
        "job=$(runner enqueue hello --args '[\"you\"]')\n"
        'runner wait "$job" --timeout 30s && echo done\n'
        "runner wait greeting-42 --json",
    ),
    "notify": (
        "webhook sinks: replay dead letters",
        "Send a webhook sink's dead letters (deliveries that failed for the sink's whole "
        "retry_for) again: the daemon delivering for the sink POSTs them with a fresh "
        "retry budget. --event names one (JOB_ID:SEQ, as in the Runner-Event-Id header); "
        "--all sends every one. Exit 1 if --event matches no dead letter, 2 for a sink "
        "the config does not declare. `runner status` shows each sink's dead letters.",
        "runner notify replay billing --event greeting-42:3\nrunner notify replay billing --all",
    ),
    "cron": (
        "cron schedules: last and next fires",
        "Every cron schedule of the config: its task, time zone, the next fire times and "
        "the last one, with the job it made.",
        "runner cron\nrunner cron --json",
    ),
}
