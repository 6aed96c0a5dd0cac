"""Every error the README names can be imported from `runner` itself, as a reader
of the README would write it (`from runner import RequestRefused, JobNotFound`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import runner
from runner import errors

ROOT = Path(__file__).resolve().parents[2]
# A CamelCase name in backquotes: how the README writes a class of runner's.
_CLASS = re.compile(r"`([A-Z][a-z]+(?:[A-Z][a-z]*)+)`")
# CamelCase names the README quotes that are not runner's: systemd's unit options.
_NOT_RUNNERS = {"WatchdogSec"}


def _readme_classes() -> set[str]:
    return set(_CLASS.findall((ROOT / "README.md").read_text(encoding="utf-8"))) - _NOT_RUNNERS


def test_every_error_the_readme_names_is_importable_from_runner() -> None:
    """Each class the README names is exported by `runner` (in `__all__`); each error
    among them is the class in runner.errors, a RunnerError, so one `except` catches
    them all. The import runs in a fresh interpreter, as in a reader's script."""
    named = _readme_classes()
    assert {"RequestRefused", "JobNotFound"} <= named, named
    missing = sorted(name for name in named if name not in runner.__all__)
    assert not missing, f"the README names {missing}, which `runner` does not export"
    raised = sorted(name for name in named if hasattr(errors, name))
    assert raised, named
    for name in raised:
        error = getattr(runner, name)
        assert error is getattr(errors, name) and issubclass(error, runner.RunnerError), name
    done = subprocess.run(
        [sys.executable, "-c", f"from runner import {', '.join(sorted(named))}"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_runner_exports_every_error_it_raises() -> None:
    """Every error class of runner.errors is exported by `runner`, named or not in the
    README: a caller never has to reach into a module to catch what a call raises."""
    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, Exception)
    }
    assert classes <= set(runner.__all__), sorted(classes - set(runner.__all__))
    assert all(getattr(runner, name) is getattr(errors, name) for name in classes)
