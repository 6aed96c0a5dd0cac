"""check_config: every problem of a config file in one call, each with its key path."""

from __future__ import annotations

from pathlib import Path

from runner.config.checks import check_config

BROKEN = """
[pools]
cpu = -1

[tasks.missing]
target = "tests.no_such_module:f"
kind = "async"

[tasks.wrong_kind]
target = "tests.tasks:echo"
kind = "io"

[tasks.fine]
target = "tests.tasks:sleep_io"
kind = "io"

[cron.nightly]
schedule = "61 * * * *"
timezone = "Mars/Olympus"
task = "fine"
"""


def _write(folder: Path, text: str) -> Path:
    path = folder / "runner.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_structural_import_kind_and_cron_problems_come_in_one_call(tmp_path: Path) -> None:
    """A structural error no longer hides the task targets that do not import or do not
    match their kind, and a bad time zone no longer hides a bad schedule beside it."""
    settings, problems = check_config(_write(tmp_path, BROKEN), {})
    assert settings is None
    expected = [
        "pools.cpu: must be a whole number > 0, got -1",
        "tasks.missing.target: cannot import module 'tests.no_such_module'",
        "tasks.wrong_kind.kind: kind is 'io' but the target is 'async def'; use kind = 'async'",
        "cron.nightly.schedule: invalid cron expression '61 * * * *'",
        "cron.nightly.timezone: unknown time zone 'Mars/Olympus'; use an IANA name",
    ]
    for fragment in expected:
        assert any(p.startswith(fragment) for p in problems), (fragment, problems)
    assert len(problems) == len(expected), problems
    assert not any(p.startswith("tasks.fine") for p in problems)


def test_a_task_whose_own_table_is_broken_is_not_imported(tmp_path: Path) -> None:
    """Only a task with a sound table is imported: a bad table is reported for itself,
    not again as an import failure of half-read values."""
    config = _write(
        tmp_path,
        '[tasks.typo]\ntarget = "tests.no_such_module:f"\ncolour = "blue"\n'
        '[tasks.other]\ntarget = "tests.tasks:nope"\n',
    )
    settings, problems = check_config(config, {})
    assert settings is None
    assert problems[0].startswith("tasks.typo.colour: unknown key")
    assert problems[1:] == ["tasks.other.target: module 'tests.tasks' has no attribute 'nope'"]


def test_cron_schedule_is_checked_even_beside_other_faults_in_its_table(tmp_path: Path) -> None:
    """An unknown key or a non-string time zone in a cron table no longer stops its
    schedule from being checked; a zone database folder ('Europe') is a bad time zone."""
    config = _write(
        tmp_path,
        '[tasks.t]\ntarget = "tests.tasks:echo"\n'
        '[cron.a]\nschedule = "* * *"\ntask = "t"\ntimezone = 3\n'
        '[cron.b]\nschedule = "@never"\ntask = "t"\nwhen = "now"\n'
        '[cron.c]\nschedule = "* * * * *"\ntask = "t"\ntimezone = "Europe"\n',
    )
    _, problems = check_config(config, {})
    assert problems[0] == "cron.a.timezone: must be a non-empty string, got 3"
    assert problems[1].startswith("cron.a.schedule: '* * *' has 3 fields; use 5")
    assert problems[2].startswith("cron.b.when: unknown key")
    assert problems[3].startswith("cron.b.schedule: invalid cron expression '@never'")
    assert problems[4].startswith("cron.c.timezone: unknown time zone 'Europe'")
    assert len(problems) == 5, problems


def test_a_sound_file_gives_its_settings_and_no_problems(tmp_path: Path) -> None:
    """The same call answers a valid file with its settings, tasks imported and checked."""
    config = _write(
        tmp_path,
        '[tasks.echo]\ntarget = "tests.tasks:echo"\n'
        '[cron.c]\nschedule = "30 2 * * *"\ntimezone = "Europe/Paris"\ntask = "echo"\n',
    )
    settings, problems = check_config(config, {})
    assert problems == []
    assert settings is not None and sorted(settings.tasks) == ["echo"]
    assert settings.source == str(config)


def test_an_unreadable_file_is_one_problem_not_an_exception(tmp_path: Path) -> None:
    """A missing file, bad TOML, a folder or bytes that are not UTF-8 each come back as
    the one problem, so the caller prints it like any other."""
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("[redis\nurl = 1")
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[log]\nfile = "caf\xe9.log"\n')
    cases = {
        tmp_path / "nope.toml": "file not found; pass --config PATH",
        bad_toml: "not valid TOML",
        tmp_path: "cannot read the file: Is a directory",
        latin1: "not UTF-8 text",
    }
    for path, problem in cases.items():
        settings, problems = check_config(path, {})
        assert settings is None and len(problems) == 1, (path, problems)
        assert problems[0].startswith(problem), (path, problems)
