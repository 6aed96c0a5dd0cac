"""The audits judged on doctored histories: each must name the fault it exists to find.

The chaos scenarios pass when their audit finds nothing, so an audit that cannot see
a fault would let every scenario pass. These histories are written by hand, each
with one fault, next to a clean one that must pass.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaos import control_audit
from tests.chaos.audit import AuditReport, audit_job
from tests.chaos.cluster import TASKS, ledger_tasks
from tests.chaos.history import illegal_step


def _event(seq: int, source: str | None, target: str, **detail: Any) -> dict[str, Any]:
    return {"seq": seq, "from_state": source, "to_state": target, "detail": detail}


def _ran_once(final: str = "succeeded") -> list[dict[str, Any]]:
    return [
        _event(1, None, "scheduled"),
        _event(2, "scheduled", "running"),
        _event(3, "running", final),
    ]


def _judge(history: list[dict[str, Any]], executions: int | None = 1) -> AuditReport:
    """The audit of one job whose Redis hash and runner_jobs row agree with its history."""
    last = history[-1]
    live = {"state": last["to_state"], "seq": str(last["seq"])}
    row = {"state": last["to_state"], "seq": last["seq"]}
    report = AuditReport(jobs=1)
    audit_job(report, "j", live, row, history, executions)
    return report


def test_a_clean_history_passes() -> None:
    """Enqueued, claimed, succeeded, with one execution in the ledger: nothing to say."""
    report = _judge(_ran_once())
    assert report.clean, report.describe()


def test_a_step_outside_the_transition_table_is_illegal() -> None:
    """scheduled -> succeeded is continuous (each event starts where the last ended)
    but no transition: the job never ran."""
    history = [_event(1, None, "scheduled"), _event(2, "scheduled", "succeeded")]
    report = _judge(history, executions=None)
    assert list(report.illegal) == ["j"], report.describe()
    assert "seq 2: scheduled -> succeeded" in report.illegal["j"]
    assert not report.clean


@pytest.mark.parametrize(
    ("history", "why"),
    [
        ([], "no history"),
        ([_event(1, "scheduled", "running")], "starts with seq 1: scheduled -> running"),
        (
            [_event(1, None, "scheduled"), _event(3, "scheduled", "running")],
            "seq 1 is followed by seq 3",
        ),
        (
            [_event(1, None, "scheduled"), _event(2, "running", "succeeded")],
            "seq 2: running -> succeeded after None -> scheduled",
        ),
        (
            [*_ran_once(), _event(4, "succeeded", "running")],
            "seq 4: succeeded -> running",
        ),
        (
            [*_ran_once(), _event(4, "succeeded", "deleted"), _event(5, "deleted", "scheduled")],
            "seq 5 follows a deletion",
        ),
    ],
)
def test_each_kind_of_broken_history_is_named(history: list[dict[str, Any]], why: str) -> None:
    """A missing start, a gap in the seqs, a step from another state than the last one
    ended in, a step the table does not have, and life after deletion."""
    problem = illegal_step(history)
    assert problem is not None and problem.startswith(why), problem


def test_a_succeeded_job_that_never_ran_is_found() -> None:
    """A legal history that says the job ran and succeeded, and no execution in the
    ledger: its body never ran, whatever the history says."""
    report = _judge(_ran_once(), executions=0)
    assert list(report.never_ran) == ["j"], report.describe()
    assert not report.clean
    # A job may fail unrun: its daemon killed between the claim and the body, no retries left.
    failed = _judge(_ran_once("failed"), executions=0)
    assert failed.clean, failed.describe()


def test_every_audit_judges_paths_with_the_same_validator() -> None:
    """The control audit and the chaos audit share one legality check, and every task
    of the chaos mix notes its executions, so the never-ran check covers all of them."""
    assert vars(control_audit)["illegal_step"] is illegal_step
    assert ledger_tasks(TASKS) == set(TASKS)
    assert ledger_tasks({"x": {"target": "tests.chaos.tasks:kill_process"}}) == set()
