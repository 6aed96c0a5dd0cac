"""'lease lost' means another daemon may run the job: it must never be a false alarm."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from runner.client.client import Client
from runner.config.settings import Settings
from runner.logs import configure_logging, flush_logs
from tests.daemon.harness import drain


async def test_jobs_that_end_while_their_lease_is_renewed_are_not_reported_lost(
    make_settings: Callable[..., Settings], client: Client, tmp_path: Path
) -> None:
    """Renewal every 50 ms races thousands of jobs finishing on the same daemon: a job
    whose outcome is on its way or recorded is not 'lost', so no such line appears."""
    log_file = tmp_path / "runner.log"
    configure_logging("info", "json", str(log_file))
    try:
        settings = make_settings(lease_ttl=0.15)
        jobs = [client.new_job("sleep_async", [0.001 * (n % 7)]) for n in range(3000)]
        await client.enqueue_many(jobs)
        daemon = await drain(settings, timeout=60)
    finally:
        flush_logs()
        configure_logging(
            "info", "json", os.devnull
        )  # JSON: cached loggers follow any later stream
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert sum(line["event"] == "job succeeded" for line in lines) == 3000
    assert not [line for line in lines if line["event"].startswith("lease")]
    assert daemon.recorder.recorded == 3000 * 3
