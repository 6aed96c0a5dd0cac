"""The unit files: `systemd-analyze verify` passes and the exposure score is 1.5 or lower."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[1] / "systemd"
RUNNER_BIN = Path(sys.executable).parent / "runner"
UNITS = ["runner.service", "runner@.service", "runner-web.service"]


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: `make test` installs it (package systemd)"
    return subprocess.run([tool, *args], capture_output=True, text=True, check=False)


def _installed_copy(unit: str, tmp_path: Path) -> Path:
    """The unit with /opt/runner's binary pointed at this checkout's, which exists here."""
    text = (SYSTEMD / unit).read_text().replace("/opt/runner/.venv/bin/runner", str(RUNNER_BIN))
    copy = tmp_path / unit
    copy.write_text(text)
    return copy


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify_cleanly(unit: str, tmp_path: Path) -> None:
    """No warning at all from `systemd-analyze verify`."""
    path = _installed_copy(unit, tmp_path)
    target = path if "@" not in unit else path.with_name("runner@main.service")
    if target != path:
        path.rename(target)
    done = _analyze("verify", str(target))
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_exposure_score_is_at_most_1_5(unit: str) -> None:
    """`systemd-analyze security --offline=yes` rates the sandbox 1.5 or lower."""
    done = _analyze("security", "--offline=yes", str(SYSTEMD / unit))
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout[-500:] + done.stderr
    assert float(match.group(1)) <= 1.5, done.stdout
