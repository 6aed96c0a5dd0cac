"""Every Redis key name, defined once.

All keys share the hash tag ``{prefix}``, so on Redis Cluster they live in one
slot and a Lua script may touch any job hash of its prefix. The prefix also
isolates each test and each group of daemons.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS: tuple[str, ...] = ("async", "io", "cpu")
ALL_TASKS = ":all"  # the paused-tasks entry that stops every claim (maintenance mode)


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def base(self) -> str:
        return "{" + self.prefix + "}"

    def job(self, job_id: str) -> str:
        return f"{self.base}:job:{job_id}"

    @property
    def job_prefix(self) -> str:
        return f"{self.base}:job:"

    def due(self, kind: str) -> str:
        return f"{self.base}:due:{kind}"

    @property
    def due_all(self) -> list[str]:
        return [self.due(kind) for kind in KINDS]

    @property
    def leases(self) -> str:
        return f"{self.base}:leases"

    @property
    def events(self) -> str:
        return f"{self.base}:events"

    @property
    def dead(self) -> str:
        """Jobs set aside as malformed, scored by when (see lua/lib.lua)."""
        return f"{self.base}:dead"

    @property
    def dead_events(self) -> str:
        """Stream entries the recorder could not write, kept with the reason."""
        return f"{self.base}:dead:events"

    @property
    def paused(self) -> str:
        """Paused tasks (and ":all", maintenance mode): name -> who paused it, when."""
        return f"{self.base}:paused"

    @property
    def held_prefix(self) -> str:
        """Due jobs of a paused task wait in <held_prefix><task>, scored by due time."""
        return f"{self.base}:held:"

    def held(self, task: str) -> str:
        return f"{self.held_prefix}{task}"

    @property
    def cancel_channel(self) -> str:
        """Ids of running jobs cancelled by request: their daemon stops the work."""
        return f"{self.base}:cancel"

    @property
    def daemons(self) -> str:
        """Daemon id -> its last heartbeat (ms): liveness."""
        return f"{self.base}:daemons"

    @property
    def daemon_pools(self) -> str:
        """Daemon id -> its pools at its last heartbeat (JSON: per kind, slots in use,
        free, and held by jobs past their timeout)."""
        return f"{self.base}:daemon_pools"

    @property
    def daemon_info(self) -> str:
        """Daemon id -> what it says of itself (JSON: host, pid, started, version)."""
        return f"{self.base}:daemon_info"

    @property
    def retired(self) -> str:
        """Ids chosen by their callers that Redis no longer holds while PostgreSQL keeps
        their history: enqueue refuses them (see runner/daemon/retired_ids.py, lua/lib.lua)."""
        return f"{self.base}:retired"

    @property
    def retired_filled(self) -> str:
        """Set once the retired ids were filled from PostgreSQL's history: from then on
        they alone answer whether a chosen id is taken."""
        return f"{self.base}:retired:filled"

    @property
    def requests(self) -> list[str]:
        """The KEYS of the scripts that pick jobs as an operator's request does (see
        lua/request_lib.lua)."""
        return [*self.due_all, self.leases, self.events, self.job_prefix, self.dead,
                self.held_prefix, self.retired]  # fmt: skip

    @property
    def running_ends(self) -> list[str]:
        """The KEYS of the scripts that end a run: finish.lua and reap.lua."""
        return [self.leases, self.events, *self.due_all, self.job_prefix, self.dead]

    @property
    def enqueue(self) -> list[str]:
        """The KEYS of enqueue.lua."""
        return [*self.due_all, self.events, self.job_prefix, self.cron_state, self.retired]

    @property
    def hash_format(self) -> str:
        """The layout the job hashes are in (see store/redis/upgrade.py)."""
        return f"{self.base}:format"

    @property
    def cron_state(self) -> str:
        return f"{self.base}:cron"

    @property
    def wake_channel(self) -> str:
        return f"{self.base}:wake"

    @property
    def sources(self) -> str:
        """What the daemons' sources did: per source, messages accepted, duplicates and
        dead-lettered, and a note while one is held back (see redis/sources/figures.py)."""
        return f"{self.base}:sources"

    @property
    def recorder_group(self) -> str:
        return "recorder"

    def notify_group(self, sink: str) -> str:
        """The consumer group a webhook sink reads the transition stream through (and
        its replay stream): what it has not acknowledged, the stream keeps."""
        return f"notify:{sink}"

    def notify_lease(self, sink: str) -> str:
        """The daemon delivering for a sink now (one at a time: seq order per job)."""
        return f"{self.base}:notify:{sink}:lease"

    def notify_dead(self, sink: str) -> str:
        """A sink's dead letters: deliveries that failed for its whole `retry_for`."""
        return f"{self.base}:notify:{sink}:dead"

    def notify_replay(self, sink: str) -> str:
        """Dead letters an operator sent again, for the sink's holder to deliver."""
        return f"{self.base}:notify:{sink}:replay"
