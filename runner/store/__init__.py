"""The store: the only names the rest of runner uses to reach Redis and PostgreSQL.

Redis (store/redis/) holds what is live: jobs waiting and running, the schedule,
the leases, the stream of transitions, the Lua scripts that change them. PostgreSQL
(store/postgres/) holds the history and the jobs parked far ahead. The rules that
span both live here too: parking (parking.py) and reviving a job Redis forgot
(revival.py). Callers import from this module alone; the modules behind it, and the
drivers, are the store's own business.
"""

from runner.store.kafka.topic import KafkaTopic
from runner.store.parking import Parking
from runner.store.postgres.history import HistoryStore, Kept
from runner.store.postgres.listing import BadCursor, check_limit, decode_cursor
from runner.store.postgres.status import per_state
from runner.store.postgres.store import PgStore
from runner.store.postgres.webhooks import AttemptRow, WebhookAttempts
from runner.store.redis.caps import LimitGroup
from runner.store.redis.connect import RedisClient, redis_client
from runner.store.redis.gauges import read_queue_gauges
from runner.store.redis.keys import (
    ALL_TASKS,
    DEFAULT_QUEUE,
    PRIORITIES,
    Keys,
    check_queue_name,
)
from runner.store.redis.notify import DeadLetter, SinkEntries, SinkStore
from runner.store.redis.retention import Backlog, id_pair
from runner.store.redis.runs import PRIORITY_AGING_MS
from runner.store.redis.sources.figures import count_source, note_held, read_source_figures
from runner.store.redis.sources.lists import SourceList
from runner.store.redis.sources.message import SourceMessage
from runner.store.redis.sources.stream import SourceStream
from runner.store.redis.status import DaemonInfo
from runner.store.redis.store import RedisStore
from runner.store.redis.stream import StreamEntry
from runner.store.redis.stream_set import StreamSet
from runner.store.redis.thread_claims import ThreadClaims
from runner.store.redis.waiting import WaitingForResume
from runner.store.revival import REVIVING, revive_for

__all__ = [
    "ALL_TASKS",
    "DEFAULT_QUEUE",
    "PRIORITIES",
    "PRIORITY_AGING_MS",
    "REVIVING",
    "AttemptRow",
    "Backlog",
    "BadCursor",
    "DaemonInfo",
    "DeadLetter",
    "HistoryStore",
    "KafkaTopic",
    "Kept",
    "Keys",
    "LimitGroup",
    "Parking",
    "PgStore",
    "RedisClient",
    "RedisStore",
    "SinkEntries",
    "SinkStore",
    "SourceList",
    "SourceMessage",
    "SourceStream",
    "StreamEntry",
    "StreamSet",
    "ThreadClaims",
    "WaitingForResume",
    "WebhookAttempts",
    "check_limit",
    "check_queue_name",
    "count_source",
    "decode_cursor",
    "id_pair",
    "note_held",
    "per_state",
    "read_queue_gauges",
    "read_source_figures",
    "redis_client",
    "revive_for",
]
