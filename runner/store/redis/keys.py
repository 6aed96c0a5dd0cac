"""Every Redis key name, defined once.

A queue's keys (its job hashes, due and held sets, leases, transition stream,
channels) share one hash tag, so on a Redis Cluster each queue lives in one slot
and its Lua scripts may touch any of its job hashes. The default queue's tag is
``{prefix}``, the keys of a runner from before queues, so an upgrade moves no
data; queue Q's is ``{prefix:q:Q}``. What spans queues (the queue registry,
the paused tasks' record, daemons, sources, webhook sinks) is in the default
queue's slot: the control slot. The prefix also isolates each test and each
group of daemons.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from runner.jobs import DEFAULT_QUEUE, PRIORITIES, QUEUE_NAME, check_queue_name

KINDS: tuple[str, ...] = ("async", "io", "cpu")
ALL_TASKS = ":all"  # the paused-tasks entry that stops every claim (maintenance mode)
# Level 0 is a kind's due set as it always was; levels 1-9 have due sets of their own.
LEVELS = PRIORITIES[1:]
__all__ = ["ALL_TASKS", "DEFAULT_QUEUE", "KINDS", "LEVELS", "PRIORITIES", "QUEUE_NAME", "Keys",
           "check_queue_name"]  # fmt: skip


@dataclass(frozen=True)
class Keys:
    prefix: str
    queue: str = DEFAULT_QUEUE

    @property
    def base(self) -> str:
        if self.queue == DEFAULT_QUEUE:
            return "{" + self.prefix + "}"
        return "{" + f"{self.prefix}:q:{self.queue}" + "}"

    @property
    def control_base(self) -> str:
        return "{" + self.prefix + "}"

    def of_queue(self, queue: str) -> Keys:
        """The keys of another queue of the same prefix."""
        return self if queue == self.queue else Keys(self.prefix, queue)

    @property
    def control(self) -> Keys:
        """The default queue's keys, whose slot holds what spans queues."""
        return self.of_queue(DEFAULT_QUEUE)

    @property
    def queues(self) -> str:
        """Every queue a job was ever enqueued to (a set, in the control slot)."""
        return f"{self.control_base}:queues"

    def job(self, job_id: str) -> str:
        return f"{self.base}:job:{job_id}"

    @property
    def job_prefix(self) -> str:
        return f"{self.base}:job:"

    def due(self, kind: str, priority: int = 0) -> str:
        level = f":p{priority}" if priority else ""
        return f"{self.base}:due:{kind}{level}"

    @cached_property
    def due_all(self) -> tuple[str, ...]:
        """Each kind's due set of priority 0 (the KEYS every script has always had)."""
        return tuple(self.due(kind) for kind in KINDS)

    @cached_property
    def due_levels(self) -> tuple[str, ...]:
        """The due sets of priorities 1-9, kind by kind."""
        return tuple(self.due(kind, level) for kind in KINDS for level in LEVELS)

    @property
    def due_prefix(self) -> str:
        """What the due sets' names start with: the last KEYS of every script that
        schedules a job, which names the sets of priorities 1-9 from it (lua/lib.lua)."""
        return f"{self.base}:due:"

    @property
    def blocked_counts(self) -> str:
        """Blocked jobs per task in this queue (lua/lib.lua, count_blocked)."""
        return f"{self.due_prefix}blockedn"

    def workflow(self, workflow_id: str) -> str:
        """The ids of a workflow's jobs in this queue (lua/enqueue.lua)."""
        return f"{self.due_prefix}wf:{workflow_id}"

    @cached_property
    def fair_turns(self) -> tuple[str, ...]:
        """Each kind's fairness groups waiting for their turn (lua/lib.lua)."""
        return tuple(f"{self.due_prefix}fairq:{kind}" for kind in KINDS)

    @property
    def fair_waiting(self) -> str:
        """How many jobs wait in fairness groups, per kind: a hash (lua/lib.lua)."""
        return f"{self.due_prefix}fairn"

    @cached_property
    def due_every(self) -> tuple[str, ...]:
        """Every due set of the queue, whatever the kind and priority."""
        return (*self.due_all, *self.due_levels)

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
        """Paused tasks (and ":all", maintenance mode): name -> who paused it, when. The
        control slot's is the record; each other queue has a copy in its own slot, for
        its claims to read atomically (see store/redis/queues.py)."""
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
        return f"{self.control_base}:daemons"

    @property
    def daemon_pools(self) -> str:
        """Daemon id -> its pools at its last heartbeat (JSON: per kind, slots in use,
        free, and held by jobs past their timeout)."""
        return f"{self.control_base}:daemon_pools"

    @property
    def daemon_info(self) -> str:
        """Daemon id -> what it says of itself (JSON: host, pid, started, version)."""
        return f"{self.control_base}:daemon_info"

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

    @cached_property
    def requests(self) -> tuple[str, ...]:
        """The KEYS of the scripts that pick jobs as an operator's request does (see
        lua/request_lib.lua)."""
        return (*self.due_all, self.leases, self.events, self.job_prefix, self.dead,
                self.held_prefix, self.retired, self.due_prefix)  # fmt: skip

    @cached_property
    def claim(self) -> tuple[str, ...]:
        """The KEYS of claim.lua: every due set, the priorities' included (it reads them
        all), then the due-set prefix the scripts name them from (see lua/lib.lua)."""
        return (*self.due_all, self.leases, self.events, self.job_prefix, self.dead,
                self.paused, self.held_prefix, *self.due_levels, self.due_prefix)  # fmt: skip

    @cached_property
    def running_ends(self) -> tuple[str, ...]:
        """The KEYS of the scripts that end a run: finish.lua and reap.lua."""
        return (self.leases, self.events, *self.due_all, self.job_prefix, self.dead,
                self.due_prefix)  # fmt: skip

    @cached_property
    def enqueue(self) -> tuple[str, ...]:
        """The KEYS of enqueue.lua for jobs of priority 0."""
        return (*self.due_all, self.events, self.job_prefix, self.cron_state, self.retired,
                self.due_prefix)  # fmt: skip

    def enqueue_for(self, levels: set[tuple[str, int]]) -> tuple[str, ...]:
        """The KEYS of enqueue.lua for a batch whose jobs wait in these (kind, priority)
        sets: the due sets of priorities 1-9 it writes are named among them."""
        named = tuple(self.due(kind, level) for kind, level in sorted(levels) if level)
        if not named:
            return self.enqueue
        return (*self.enqueue[:-1], *named, self.due_prefix)

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
        return f"{self.control_base}:sources"

    @property
    def recorder_group(self) -> str:
        return "recorder"

    def notify_group(self, sink: str) -> str:
        """The consumer group a webhook sink reads the transition stream through (and
        its replay stream): what it has not acknowledged, the stream keeps."""
        return f"notify:{sink}"

    def notify_lease(self, sink: str) -> str:
        """The daemon delivering for a sink now (one at a time: seq order per job)."""
        return f"{self.control_base}:notify:{sink}:lease"

    def notify_dead(self, sink: str) -> str:
        """A sink's dead letters: deliveries that failed for its whole `retry_for`."""
        return f"{self.control_base}:notify:{sink}:dead"

    def notify_replay(self, sink: str) -> str:
        """Dead letters an operator sent again, for the sink's holder to deliver."""
        return f"{self.control_base}:notify:{sink}:replay"
