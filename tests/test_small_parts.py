"""Pure helpers: durations, backoff, redaction, the state table."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from runner.config.durations import parse_duration
from runner.config.settings import TaskSettings
from runner.daemon.backoff import backoff_seconds
from runner.redact import redact_text, redact_url
from runner.states import REQUESTS, TERMINAL, TRANSITIONS, State
from runner.store.redis.fields import FIELD
from tests import request_matrix


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("3s", 3.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), (7, 7.0)],
)
def test_durations(text: object, seconds: float) -> None:
    """Units and bare numbers (seconds) parse; the result is in seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "5 weeks", "", True, None, "-3s"])
def test_bad_durations_say_what_is_accepted(bad: object) -> None:
    """Anything else raises ValueError naming the accepted forms."""
    with pytest.raises(ValueError, match="expected a duration like"):
        parse_duration(bad)


def test_backoff_grows_exponentially_and_is_capped() -> None:
    """1, 2, 4, 8... times the base, never above backoff_max; jitter spreads around it."""
    task = TaskSettings("t", "m:f", "io", backoff=1.0, backoff_max=5.0, backoff_jitter=0.0)
    assert [backoff_seconds(task, n, 0.5) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 5.0]
    jittery = TaskSettings("t", "m:f", "io", backoff=10.0, backoff_jitter=0.2)
    assert backoff_seconds(jittery, 1, 0.0) == pytest.approx(8.0)
    assert backoff_seconds(jittery, 1, 0.999999) == pytest.approx(12.0, abs=1e-3)


def test_redaction_hides_passwords_only() -> None:
    """User and host stay for diagnosis; the password never shows."""
    assert redact_url("postgresql://runner:s3cret@db:5432/x") == "postgresql://runner:***@db:5432/x"
    assert redact_url("redis://localhost:6379/0") == "redis://localhost:6379/0"
    assert "s3cret" not in redact_text("could not connect to redis://:s3cret@h:6379")


def test_state_table_is_consistent() -> None:
    """Terminal states have no way out except an operator's retry (a workflow's may
    make the job wait for its dependencies again) or delete."""
    for transition in TRANSITIONS.values():
        if transition.action not in ("retry", "retry_blocked", "delete"):
            assert not (transition.sources & TERMINAL), transition
    assert TRANSITIONS["claim"].sources_argv == ",retrying,scheduled,"
    assert TRANSITIONS["claim"].target is State.RUNNING


def test_the_state_table_allows_each_request_where_the_matrix_does() -> None:
    """The table the Lua scripts are given agrees, cell by cell, with the request x
    state matrix written out by hand in tests/request_matrix.py."""
    assert REQUESTS == request_matrix.REQUESTS
    assert set(request_matrix.STATES) == {str(s) for s in State} - {State.DELETED}
    for action in REQUESTS:
        step = TRANSITIONS[action]
        for state in request_matrix.STATES:
            expected = request_matrix.outcome(action, state)
            if expected == request_matrix.REFUSED:
                assert state not in step.sources, (action, state)
            else:
                assert state in step.sources, (action, state)
                assert (step.target or state) == expected, (action, state, step)


def test_the_lua_scripts_and_python_store_job_fields_under_the_same_names() -> None:
    """lua/lib.lua's FIELD table and job_fields.FIELD must agree, or a field written by
    a script reads as missing in Python (and the reverse)."""
    source = (resources.files("runner.store.redis") / "lua" / "lib.lua").read_text(encoding="utf-8")
    table = source.split("local FIELD = {", 1)[1].split("}", 1)[0]
    in_lua = dict(re.findall(r"(\w+) = '(\w+)'", table))
    assert in_lua == FIELD
    assert len(set(FIELD.values())) == len(FIELD)  # no two fields share a name
