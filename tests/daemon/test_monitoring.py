"""monitoring/: the alert rules pass promtool, and the dashboard and rules only name
metrics the daemon exports (a renamed metric would otherwise leave an empty panel
or an alert that never fires)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from runner.daemon.metrics import Metrics

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
_NAME = re.compile(r"\brunner_[a-z_]+")


def exported_names() -> set[str]:
    """Every sample name a daemon's /metrics shows once each metric has a value."""
    metrics = Metrics("host:1:ab", "0", lambda: {"async": (1, 2)})
    metrics.started("t", 0.01)
    metrics.ran("t", 0.02)
    metrics.finished("t", "retry_later", 1)
    metrics.cron_tick("nightly", "scheduled")
    metrics.cron_tick("nightly", "skipped")
    metrics.due.labels("async", "default").set(1)
    metrics.oldest_due_lag.labels("default").set(0)
    metrics.recorder_backlog.labels("default").set(0)
    metrics.store_up.labels("redis").set(1)
    metrics.recorded(3, 0.01)
    text = generate_latest(metrics.registry).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [e for value in node.values() for e in _exprs(value)]
    if isinstance(node, list):
        return [e for item in node for e in _exprs(item)]
    return []


def test_alert_rules_pass_promtool() -> None:
    """`promtool check rules monitoring/alerts.yml` succeeds (make test installs promtool)."""
    checked = subprocess.run(
        ["promtool", "check", "rules", str(MONITORING / "alerts.yml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_alerts_cover_the_failures_operators_watch_for() -> None:
    """No daemon alive, recorder backlog growing, lateness p99 high, failure rate high."""
    text = (MONITORING / "alerts.yml").read_text()
    names = set(re.findall(r"^\s*- alert: (\w+)$", text, re.MULTILINE))
    assert {
        "RunnerNoDaemonAlive", "RunnerRecorderBacklogGrowing", "RunnerLatenessP99High",
        "RunnerFailureRateHigh",
    } <= names  # fmt: skip


def test_dashboard_and_alerts_name_only_exported_metrics() -> None:
    """Every runner_* name in a dashboard panel or an alert is one the daemon exports;
    every metric of the contract has a panel."""
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    rules = (MONITORING / "alerts.yml").read_text()  # expressions and annotations alike
    used_in_panels = {n for e in _exprs(dashboard["panels"]) for n in _NAME.findall(e)}
    used = used_in_panels | set(_NAME.findall(rules))
    exported = exported_names()
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in exported}
    assert used - exported - families == set()  # an annotation may name a histogram
    shown = {re.sub(r"_(total|bucket|count|sum)$", "", n) for n in used_in_panels}
    assert families - shown == set()
