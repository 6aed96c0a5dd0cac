"""[notify.NAME] is checked whole: every problem of every sink, each with its key path;
the secret never shows, in problems or in reprs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from runner.cli.main import main
from runner.config.checks import check_config
from runner.config.notify import NOTIFY_KEYS
from runner.config.settings import parse_settings

GOOD = """
[tasks.echo]
target = "tests.tasks:echo"

[notify.app]
url = "https://hooks.example.com/runner"
secret = "s3cret-s3cret-s3cret"
states = ["succeeded", "failed"]
tasks = ["echo"]
timeout = "5s"
retry_for = "30m"
concurrency = 4
"""

BAD = """
[tasks.echo]
target = "tests.tasks:echo"

[notify.ftp]
url = "ftp://files.example.com/in"
secret = "s3cret-s3cret-s3cret"

[notify.typo]
url = "http://127.0.0.1:9000/hook"
secret = "s3cret-s3cret-s3cret"
state = ["succeeded"]

[notify.bad_lists]
url = "http://127.0.0.1:9000/hook"
secret = "short"
states = ["done"]
tasks = ["resize"]
retry_for = -1

[notify.missing]
states = ["failed"]
"""


def test_a_sound_sink_is_read_with_its_defaults_and_no_secret_in_its_repr() -> None:
    """Every key is read; the secret is kept but never shown."""
    settings = parse_settings(tomllib.loads(GOOD), "t", {})
    sink = settings.notify["app"]
    assert sink.states == {"succeeded", "failed"} and sink.tasks == {"echo"}
    assert (sink.timeout, sink.retry_for, sink.concurrency) == (5.0, 1800.0, 4)
    assert "s3cret" not in repr(sink) and "s3cret" not in repr(settings)
    default = parse_settings(
        {"notify": {"d": {"url": "http://h/x", "secret": "s" * 16}}}, "t", {}
    ).notify["d"]
    assert default.states == {"succeeded", "failed", "cancelled"} and not default.tasks


def test_check_config_refuses_bad_sinks_naming_each_key(tmp_path: Path) -> None:
    """A URL that is not http(s), an unknown key, unknown states and tasks, a short
    secret, a negative duration, missing url and secret: all reported at once."""
    path = tmp_path / "runner.toml"
    path.write_text(BAD, encoding="utf-8")
    settings, problems = check_config(path, {})
    assert settings is None
    text = "\n".join(problems)
    for fragment in (
        "notify.ftp.url: must be a URL starting with http:// or https://",
        "notify.typo.state: unknown key",
        "notify.bad_lists.secret: must be a string of at least 16 characters",
        "notify.bad_lists.states: unknown state(s) 'done'",
        "notify.bad_lists.tasks: unknown task(s) 'resize' (declared: echo)",
        "notify.bad_lists.retry_for:",
        "notify.missing.url: missing",
        "notify.missing.secret: missing",
    ):
        assert fragment in text, fragment
    assert "short" not in text


def test_runner_check_config_exits_1_on_a_bad_sink(tmp_path: Path) -> None:
    """The command line says which key is wrong and fails."""
    path = tmp_path / "runner.toml"
    path.write_text(BAD, encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 1


def test_the_example_sink_in_the_shipped_config_is_valid() -> None:
    """config/runner.toml documents every key of [notify.NAME] in a commented table;
    uncommented, it passes check-config with every key set."""
    lines = (Path(__file__).parents[2] / "config" / "runner.toml").read_text().splitlines()
    start = lines.index("# [notify.billing]")
    example = [line[2:] for line in lines[start:] if line.startswith("# ") and "=" in line]
    text = "[tasks.checksum]\ntarget = 'runner.examples:checksum'\nkind = 'cpu'\n"
    text += "[notify.billing]\n" + "\n".join(line for line in example if not line.startswith("#"))
    sink = parse_settings(tomllib.loads(text), "t", {}).notify["billing"]
    keys = {line.split("=")[0].strip() for line in example if not line.startswith("#")}
    assert keys == NOTIFY_KEYS and sink.concurrency == 8
