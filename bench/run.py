"""`make bench`: runner, arq, Dramatiq and Huey on the same private Valkey and
PostgreSQL, in one run.

Order: runner throughput, arq throughput, Dramatiq's and Huey's throughput
(bench/queue_peers.py), runner lateness, arq lateness, Dramatiq's and Huey's
lateness (bench/peer_lateness.py), the io and cpu workloads
on runner, Dramatiq and Huey (bench/workloads.py), then
listing at a million jobs (bench/listing.py, a database of its own), then the
recorder's write rate at ten million events and dropping a day of history
(bench/history.py, databases of their own), then cancel
of running jobs (bench/cancel.py), then the cost of metrics (bench/metrics.py:
/metrics scrape time at a million jobs, no-op throughput on vs off), the
dashboard's overview (bench/web_overview.py), webhooks (bench/webhooks.py: no-op
throughput with the endpoint down vs no sink, transition-to-delivery latency),
enqueue with chosen ids against generated ones (bench/enqueue_ids.py), ingest from
a stream source beside enqueue_many (bench/source_ingest.py), throughput with a
million jobs due against 20,000 (bench/depth.py) and what jobs cost in Redis
memory, near-term and parked (bench/redis_memory.py), with arq's, Dramatiq's and
Huey's bytes per job beside runner's (bench/memory_peers.py), then what
`[redis] wait_replicas = 1` costs on a Redis Cluster of 3 primaries and 3
replicas (bench/wait_replicas.py), then what named queues cost: this runner on one
queue against the runner from before queues, six weighted queues against one, and
six queues on that cluster against one node (bench/queues.py, last: it empties the
shared Redis between its runs), and one queue against before in instructions per
job under callgrind (bench/queue_instructions.py), then what a concurrency cap and a
rate limit cost when they do not bind (bench/limits.py), and what a graph of
10,000 jobs costs against as many independent ones (bench/workflows.py), and what
the two lines a job logs cost the daemon in instructions (bench/log_cost.py); each phase
uses its own key prefix or queue on the shared servers. Prints a table, writes
bench/results.json, and exits 1 when a target is missed.

    .venv/bin/python -m bench.run --peer-python .bench-venv/bin/python
    .venv/bin/python -m bench.run --runner-only --profile /tmp/runner.json  # engine work
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    cancel,
    cancel_report,
    ceilings,
    depth,
    enqueue_ids,
    history,
    limits,
    listing,
    log_cost,
    memory_peers,
    metrics,
    peer_lateness,
    queue_instructions,
    queue_peers,
    queues,
    redis_memory,
    runner_side,
    source_ingest,
    wait_replicas,
    web_overview,
    webhooks,
    workflows,
    workloads,
)  # fmt: skip
from bench.peer import Peer
from bench.plan import Plan
from bench.report import Figures, render
from bench.runner_side import Setup
from runner.servers.embedded import EmbeddedServers

RESULTS = Path(__file__).resolve().parent / "results.json"
LATE_OFFSET_S = 1.0  # the first due time: after the enqueue itself has finished
TIMEOUT_S = 120.0  # for any one step; a stuck run fails instead of hanging


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    peers = parser.add_mutually_exclusive_group(required=True)
    peers.add_argument("--peer-python", type=Path, help="python of the venv with arq")
    peers.add_argument("--runner-only", action="store_true", help="measure runner alone")
    parser.add_argument("--jobs", type=int, default=20_000, help="no-op jobs (throughput)")
    parser.add_argument("--late-jobs", type=int, default=2_000, help="delayed jobs (lateness)")
    parser.add_argument("--spread", type=float, default=10.0, help="seconds the due times span")
    parser.add_argument("--seed", type=int, default=1, help="for the random due times")
    parser.add_argument(
        "--listing-rows", type=int, default=listing.ROWS, help="jobs for the listing (0: skip it)"
    )
    parser.add_argument(
        "--history-rows", type=int, default=history.ROWS, help="events for history (0: skip it)"
    )
    parser.add_argument(
        "--cancel-tries", type=int, default=cancel.TRIES, help="cancels a job kind (0: skip them)"
    )
    parser.add_argument(
        "--web-rows",
        type=int,
        default=web_overview.ROWS,
        help="jobs in runner_jobs while the dashboard's overview is timed (0: skip it)",
    )
    parser.add_argument(
        "--metrics-rows", type=int, default=metrics.ROWS,
        help="jobs in runner_jobs while /metrics is scraped (0: skip the metrics phase)",
    )  # fmt: skip
    parser.add_argument(
        "--webhook-jobs", type=int, default=webhooks.THROUGHPUT_JOBS,
        help="no-op jobs a throughput run, webhook endpoint down vs no sink (0: skip the phase)",
    )  # fmt: skip
    parser.add_argument(
        "--enqueue-jobs", type=int, default=enqueue_ids.JOBS,
        help="jobs enqueued with chosen and with generated ids (0: skip the phase)",
    )  # fmt: skip
    parser.add_argument(
        "--ingest-jobs", type=int, default=source_ingest.JOBS,
        help="messages ingested from a stream source beside enqueue_many (0: skip the phase)",
    )  # fmt: skip
    parser.add_argument(
        "--wait-jobs", type=int, default=wait_replicas.JOBS,
        help="jobs a run with wait_replicas 0 and 1 on a Redis Cluster (0: skip the phase)",
    )  # fmt: skip
    parser.add_argument(
        "--queue-jobs", type=int, default=queues.JOBS,
        help="no-op jobs a run of the named-queues phase (0: skip the phase)",
    )  # fmt: skip
    parser.add_argument(
        "--limit-jobs", type=int, default=limits.JOBS,
        help="no-op jobs a run of the phase of caps and rates that do not bind (0: skip)",
    )  # fmt: skip
    parser.add_argument(
        "--no-log-cost", action="store_true",
        help="skip counting what the job lines cost the daemon (callgrind, a few minutes)",
    )  # fmt: skip
    parser.add_argument(
        "--workflow-rounds", type=int, default=workflows.ROUNDS,
        help="rounds of the phase of a 10,000-job graph against independent jobs (0: skip)",
    )  # fmt: skip
    parser.add_argument(
        "--deep", type=int, default=depth.DEEP, help="jobs due at once, depth phase (0: skip it)"
    )
    parser.add_argument(
        "--far", type=int, default=redis_memory.FAR_JOBS,
        help="far-future jobs, Redis memory phase (0: skip the phase)",
    )  # fmt: skip
    parser.add_argument(
        "--no-peer-lateness", action="store_true", help="skip Dramatiq's and Huey's lateness"
    )
    parser.add_argument("--no-workloads", action="store_true", help="skip the io and cpu workloads")
    parser.add_argument(
        "--no-peer-memory", action="store_true",
        help="skip the peers' Redis bytes per job (measured with the Redis memory phase)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="results JSON file")
    parser.add_argument(
        "--profile", metavar="FILE",
        help="run runner's throughput daemon under `py-spy record` (speedscope JSON to FILE)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the folder of logs and data")
    return parser.parse_args(argv)


def _profiler(target: str | None) -> list[str]:
    if target is None:
        return []
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    # --nonblocking: sample without pausing the daemon, so the profile's run is a fair one.
    return [py_spy, "record", "--rate", "250", "--nonblocking", "--format", "speedscope",
            "--output", target, "--"]  # fmt: skip


def measure(args: argparse.Namespace, servers: EmbeddedServers, folder: Path) -> Figures:
    plan = Plan(args.jobs, args.late_jobs, args.spread, LATE_OFFSET_S, args.seed, TIMEOUT_S)
    setup = Setup(servers.redis_url, servers.database_url, folder, own_databases=True)
    peer = None if args.runner_only else Peer(args.peer_python, servers.redis_url, folder)
    print(f"measuring throughput ({plan.jobs:,} jobs) ...", flush=True)
    runner_rate = runner_side.throughput(setup, plan, _profiler(args.profile))
    arq_rate = peer.throughput(plan) if peer else None
    peer_rates = {}
    for queue_peer in queue_peers.PEERS if peer else ():
        print(f"measuring {queue_peer.name} throughput ...", flush=True)
        peer_rates[queue_peer.name] = queue_peers.throughput(
            queue_peer, args.peer_python, servers.redis_url, folder, plan
        )
    print(f"measuring lateness ({plan.late_jobs:,} jobs over {plan.spread_s:g} s) ...", flush=True)
    late = runner_side.lateness(setup, plan)
    arq_late = peer.lateness(plan) if peer else None
    peer_late = {}
    if peer and not args.no_peer_lateness:
        peer_late = peer_lateness.measure(args.peer_python, servers.redis_url, folder, plan)
    return Figures(
        jobs=plan.jobs, late_jobs=plan.late_jobs, spread_s=plan.spread_s,
        runner_throughput=runner_rate, runner_lateness=late.started,
        runner_claim_lateness=late.claimed, arq_throughput=arq_rate, arq_lateness=arq_late,
        peer_throughput=peer_rates,
        peer_settings={p.name: p.settings for p in queue_peers.PEERS if p.name in peer_rates},
        peer_lateness=peer_late,
        peer_late_settings={p.name: p.settings for p in peer_lateness.PEERS if p.name in peer_late},
    )  # fmt: skip


@dataclass(frozen=True)
class Section:
    """One phase's figures: printed, written under `key`, and whether its targets held."""

    key: str
    text: str
    data: Any
    ok: bool


def _section(key: str, figures: Any, text: str) -> Section:
    return Section(key, text, figures.as_json(), all(figures.targets().values()))


def _phases(args: argparse.Namespace, servers: EmbeddedServers, folder: Path) -> list[Section]:
    """The phases after throughput and lateness, each skipped when its size is 0."""
    done: list[Section] = []
    if not args.no_workloads:
        peer_python = None if args.runner_only else args.peer_python
        ran = workloads.measure(servers, folder, peer_python)
        done.append(_section("workloads", ran, workloads.render(ran)))
    if args.listing_rows:
        listed = listing.measure(servers, folder, args.listing_rows)
        done.append(_section("listing", listed, listing.render(listed)))
    if args.history_rows:
        kept = history.measure(servers, args.history_rows)
        done.append(_section("history", kept, history.render(kept)))
    if args.cancel_tries:
        cancels = cancel.measure(servers.redis_url, servers.database_url, folder, args.cancel_tries)
        done.append(_section("cancel", cancels, cancel_report.render(cancels)))
    if args.metrics_rows:
        measured = metrics.measure(servers, folder, args.metrics_rows)
        done.append(_section("metrics", measured, metrics.render(measured)))
    if args.webhook_jobs:
        hooks = webhooks.measure(servers, folder, args.webhook_jobs)
        done.append(_section("webhooks", hooks, webhooks.render(hooks)))
    if args.web_rows:
        web = asyncio.run(web_overview.phase(servers, args.web_rows))
        web_text, web_ok = web_overview.render(web, args.web_rows)
        done.append(Section("web_overview", web_text, web, web_ok))
    return done + _queue_phases(args, servers, folder)


def _queue_phases(
    args: argparse.Namespace, servers: EmbeddedServers, folder: Path
) -> list[Section]:
    """Enqueue, queue depth and what jobs cost in Redis, each skipped when its size is 0."""
    done: list[Section] = []
    if args.enqueue_jobs:
        ids = enqueue_ids.measure(servers, args.enqueue_jobs)
        done.append(_section("enqueue_ids", ids, enqueue_ids.render(ids)))
    if args.ingest_jobs:
        ingest = source_ingest.measure(servers, args.ingest_jobs)
        done.append(_section("source_ingest", ingest, source_ingest.render(ingest)))
    if args.deep:
        deep = depth.measure(servers, folder, args.deep)
        done.append(
            Section("depth", depth.render(deep), deep.as_json(), deep.ratio >= depth.TARGET)
        )
    if args.far:
        memory = redis_memory.measure(servers, folder, args.far)
        done.append(_section("redis_memory", memory, redis_memory.render(memory)))
        if not args.runner_only and not args.no_peer_memory:
            peers = memory_peers.measure(
                args.peer_python, servers.redis_url, folder, memory.near.jobs, memory.near
            )
            done.append(_section("redis_memory_peers", peers, memory_peers.render(peers)))
    if args.wait_jobs:
        waited = wait_replicas.measure(servers, args.wait_jobs)
        done.append(_section("wait_replicas", waited, wait_replicas.render(waited)))
    if args.queue_jobs:
        named = queues.measure(servers, folder, jobs=args.queue_jobs)
        done.append(_section("queues", named, queues.render(named)))
        if queue_instructions.available():  # the same, counted in instructions
            counted = queue_instructions.measure(servers, folder)
            done.append(_section("queue_instructions", counted, counted.render()))
    return done + _shaping_phases(args, servers, folder)


def _shaping_phases(
    args: argparse.Namespace, servers: EmbeddedServers, folder: Path
) -> list[Section]:
    """What limits and workflows cost, each skipped when its size is 0."""
    done: list[Section] = []
    if args.limit_jobs:
        shaped = limits.measure(servers, folder, jobs=args.limit_jobs)
        done.append(_section("limits", shaped, limits.render(shaped)))
    if args.workflow_rounds:
        graph = workflows.measure(servers, folder, rounds=args.workflow_rounds)
        done.append(_section("workflows", graph, workflows.render(graph)))
    if not args.no_log_cost and queue_instructions.available():  # valgrind, for both
        lines = log_cost.measure(servers, folder)
        done.append(_section("log_cost", lines, log_cost.render(lines)))
    return done


def _ceilings(figures: Figures, sections: list[Section]) -> list[Section]:
    """Throughput against the Redis and PostgreSQL ceilings, once both were measured."""
    history_run = next((s.data for s in sections if s.key == "history"), None)
    if history_run is None or figures.runner_throughput.redis_cpu_s is None:
        return []
    found = ceilings.Ceilings.of(figures.runner_throughput, history_run["events_per_s"]["empty"])
    return [_section("ceilings", found, ceilings.render(found))]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    folder = Path(tempfile.mkdtemp(prefix="runner-bench-"))
    folder.chmod(0o755)  # as root, PostgreSQL runs as `nobody` and must reach its data
    # In a subfolder: throwaway servers delete their folder when they stop, logs stay.
    servers = EmbeddedServers(folder / "servers", durable=False)
    ok = False
    try:
        servers.start_redis()
        servers.start_postgres()
        figures = measure(args, servers, folder)
        sections = _phases(args, servers, folder)
        ok = True
    finally:
        servers.stop()
        if args.keep or not ok:
            print(f"logs and data kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print()
    print(render(figures))
    results = figures.as_json()
    sections += _ceilings(figures, sections)
    for section in sections:
        print(f"\n{section.text}")
        results[section.key] = section.data
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.out}")
    met = [*figures.targets().values(), *(section.ok for section in sections)]
    return 0 if all(met) else 1


if __name__ == "__main__":
    sys.exit(main())
