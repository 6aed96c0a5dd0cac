"""A sink's Prometheus figures: every try counted by outcome, and each delivery's time
from its transition."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from runner.notify.metrics import WebhookMetrics
from runner.store import RedisStore
from tests.notify.conftest import Running, eventually, run_jobs, sink_settings
from tests.notify.receiver import Receiver


async def test_tries_and_delivery_times_are_counted(
    store: RedisStore, running: Running, receiver: Receiver
) -> None:
    """With half the requests refused, the refused tries count as failed, the accepted
    ones as delivered, and every delivery lands in the delay histogram."""
    registry = CollectorRegistry()
    receiver.fail_share = 0.5
    await running.start(sink_settings(receiver.url), metrics=WebhookMetrics(registry))
    ids = [f"m{n}" for n in range(20)]
    await run_jobs(store, ids)
    await eventually(lambda: len({r.event_id for r in receiver.accepted}) == 20)

    def figure(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, {"sink": "app", **labels}) or 0.0

    await eventually(lambda: figure("runner_webhook_tries_total", outcome="delivered") >= 20)
    assert figure("runner_webhook_tries_total", outcome="failed") == receiver.refused > 0
    assert figure("runner_webhook_delivery_seconds_count") == figure(
        "runner_webhook_tries_total", outcome="delivered"
    )
    assert figure("runner_webhook_delivery_seconds_bucket", le="+Inf") >= 20
