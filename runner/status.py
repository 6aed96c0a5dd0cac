"""`runner status`: the whole system at a glance, for an operator or a script.

Live figures come from Redis (what is due now, waiting, running; which daemons
sent a heartbeat lately; what was set aside as malformed; what the recorders
have not written yet), counts per state from Postgres.
"""

from __future__ import annotations

from typing import Any

import orjson

from runner.client import Client
from runner.config import Settings
from runner.jobs import rfc3339


async def status_document(settings: Settings) -> dict[str, Any]:
    async with await Client.connect(settings) as client:
        now = client.clock.now_ms()
        # A live daemon renews every third of a lease: two leases of silence is dead.
        alive_since = now - int(2 * settings.lease_ttl * 1000)
        live = await client.store.overview(now, alive_since)
        pg = await client.history_store()
        states = await pg.state_counts() if pg else {}
    return {"at": rfc3339(now), "states": states, **live}


def render(doc: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return orjson.dumps(doc).decode()
    kinds = ", ".join(f"{k} {n}" for k, n in doc["due"].items())
    states = ", ".join(f"{s} {n}" for s, n in doc["states"].items()) or "none recorded"
    aside = doc["set_aside"]
    lines = [
        f"at {doc['at']}",
        f"  due now      {sum(doc['due'].values())} ({kinds})",
        f"  waiting      {sum(doc['waiting'].values())} in the schedule",
        f"  running      {doc['running']}",
        f"  daemons      {len(doc['daemons'])}: {', '.join(doc['daemons']) or '-'}",
        f"  unrecorded   {doc['unrecorded_entries']} stream entries",
        f"  set aside    {aside['jobs']} malformed jobs ({{prefix}}:dead), "
        f"{aside['events']} stream entries ({{prefix}}:dead:events)",
        f"  states       {states} (Postgres)",
    ]
    return "\n".join(lines)
