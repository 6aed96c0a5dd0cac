"""Every code block of README.md that is meant to be run is run, for real, as written.

A reader copies the README's commands into a terminal with `make run` going in
another one; a block that no longer works there is a broken promise. So each
fenced block is either run here or marked, on the line right before its fence,
with `<!-- not run: why -->` (an HTML comment: invisible on the rendered page,
where the prose around the block says it is an example or a fragment).

How each block runs:

- ```sh / ```bash / ```shell blocks through `bash -euo pipefail` (a command that
  fails part-way fails the block), ```python blocks as a script through the
  interpreter running the suite (the virtualenv's), both with the checkout as
  cwd, so `config/dev.toml` and `.venv/bin/runner` resolve as they do for a reader.
- The environment names the test's own servers and data: RUNNER_REDIS_URL and
  RUNNER_DATABASE_URL (the session's real servers, a database of this module's
  own) and RUNNER_KEY_PREFIX (a prefix of its own), which override the dev
  config's embedded servers and its data; any other RUNNER_* variable is removed.
- `make run` is replaced by the daemon this module starts:
  `python -m runner --config config/dev.toml run` on those servers, ready before
  the first block runs and stopped with SIGTERM after the last.
- Nothing long-running or system-wide is run: `make` (run, test, chaos, bench,
  lint), `runner run` and `runner logs -f` in a block not marked not-run fail
  `test_every_block_is_run_or_says_why` instead of hanging; the README marks
  the `make` block and the systemd install block not-run, and the config
  fragments (a task, a cron schedule) too. `sudo`, `systemctl` and `useradd`
  are refused alike: they change the machine.

Each run block must exit 0 within SNIPPET_TIMEOUT seconds, print no traceback,
and, for the blocks named in EXPECTED, print what the README's comments promise.
A failure shows the block, its output and the daemon's last log lines.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from redis import Redis

from runner.cli.commands import COMMANDS
from tests.daemon.process import DaemonProcess
from tests.real_servers import Servers

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEV_CONFIG = Path("config/dev.toml")  # relative, as the README writes it: cwd is ROOT
SNIPPET_TIMEOUT = 60.0

SHELL = frozenset({"sh", "bash", "shell"})
PYTHON = frozenset({"python", "py"})

_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.*?)\s*-->$")
_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<info>[^`]*)$")

# Commands a test must not start: they run until stopped, run whole suites or
# change the machine. A runnable block holding one is refused with this reason.
_LONG_RUNNING = (
    (re.compile(r"(?m)^\s*(?:sudo\s+)?make\b"), "`make` runs the daemon, suites or builds"),
    (
        re.compile(r"\brunner(?:\s+--config[= ]\S+)*\s+run(?:\s|$)"),
        "`runner run` runs until stopped (the test starts its own daemon)",
    ),
    (
        re.compile(r"\b(?:logs|events|journalctl|tail)\b[^\n#]*\s(?:-f|--follow)\b"),
        "`logs -f` and `events -f` follow forever",
    ),
    (re.compile(r"\b(?:sudo|systemctl|useradd)\b"), "it changes the machine"),
)

# What a block must print (patterns searched in stdout and stderr), by its key: the
# heading's slug, then -2, -3... for later blocks under the same heading. Loose
# checks of what the block's comments promise, not of the layout.
EXPECTED: dict[str, tuple[str, ...]] = {
    "trying-it": (
        r"state\s+scheduled",  # the first `show`, before the job is due
        r"due at\s+\d{4}-\d\d-\d\dT[\d:.]+Z",  # and when it is due
        r"state\s+succeeded",  # the second one, after it ran
        r'"hello, you"',  # its result
        r"->\s*succeeded",  # and its history, read from Postgres
    ),
    "controlling-jobs": (
        r"pause: job \w+ is paused",
        r"update: job \w+ is paused",
        r"resume: job \w+ is scheduled",
        r'state\s+succeeded[\s\S]*"hello, sooner"',  # the updated arguments ran
        r"cancel: job \w+ is cancelled",
        r"state\s+cancelled",
        r"running\s+->\s*cancelled",  # the history: running, then cancelled
        r"paused task checksum",
        r"paused\s+1: checksum",  # status shows the paused task
        r"next page: runner",  # jobs lists a page and says how to get the next
        r"resumed task checksum",
    ),
    "command-line": (
        r"config/dev\.toml: OK \(7 tasks",
        r"greet\b.*\* \* \* \* \*",  # the dev config's schedule
        r"next\s+\d{4}-",
        r"daemons\s+1\b",  # the daemon this module started, and only it
    ),
    "python-client": (r"result: hello, you", r"succeeded hello, you"),
    "dependencies-between-jobs": (
        r"state\s+blocked",  # the second job, while the first waits for its due time
        r"waiting for the jobs it depends on: 1 of them still going",
        r"state\s+succeeded",  # then it ran
    ),
    "fan-out-decided-at-run-time-2": (
        r'"4 parts: hello, part 0; hello, part 1; hello, part 2; hello, part 3"',
        r"workflow \S+: 5 jobs \(succeeded 5\)",
    ),
    "a-workflow-as-a-whole": (r"\{'paused': 2\}", r"\{'cancelled': 2\}", r"second succeeded"),
    "live-events-3": (
        r"hello\s+live-\d+\s+new -> scheduled",  # the job just enqueued, from the stream
        r'"to_state":"succeeded"',  # a success as JSON, once the daemon ran it
    ),
}


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README, where it is and whether it is run."""

    key: str
    line: int
    language: str
    code: str
    not_run: str | None  # the reason given in `<!-- not run: ... -->`, if any

    @property
    def where(self) -> str:
        return f"README.md:{self.line} ({self.key}, ```{self.language})"


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "top"


def _previous_text_line(lines: list[str], index: int) -> str:
    """The nearest non-blank line above `index`: where a not-run mark must be."""
    for line in reversed(lines[:index]):
        if line.strip():
            return line.strip()
    return ""


def _closing_fence(lines: list[str], opening: int, fence: str) -> int:
    """The index of the line closing the block opened at `opening` (the same fence
    character, at least as long, nothing else on the line); the end if none."""
    for index in range(opening + 1, len(lines)):
        line = lines[index].strip()
        if line.startswith(fence) and not line.strip(fence[0]):
            return index
    return len(lines)


def _dedent(lines: list[str], indent: int) -> str:
    """A block's code without the indentation of its fence (a block inside a list)."""
    return "".join(f"{line[indent:] if line[:indent].isspace() else line}\n" for line in lines)


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block in order, keyed by the heading it sits under."""
    lines = text.splitlines()
    blocks: list[Block] = []
    heading, seen = "top", dict[str, int]()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = _slug(line.lstrip("#"))
        match = _FENCE.match(line)
        if match is None:
            index += 1
            continue
        end = _closing_fence(lines, index, match["fence"])
        seen[heading] = seen.get(heading, 0) + 1
        mark = _NOT_RUN.match(_previous_text_line(lines, index))
        blocks.append(
            Block(
                key=heading if seen[heading] == 1 else f"{heading}-{seen[heading]}",
                line=index + 1,
                language=(match["info"].split() or [""])[0].lower(),
                code=_dedent(lines[index + 1 : end], len(match["indent"])),
                not_run=mark["reason"] if mark else None,
            )
        )
        index = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))
RUN = [block for block in BLOCKS if block.not_run is None]


def _refusal(block: Block) -> str | None:
    """Why a block that is not marked not-run cannot be run by a test, if it cannot."""
    if block.language not in SHELL | PYTHON:
        return f"a ```{block.language or '(no language)'} block is neither sh, bash nor python"
    if block.language in SHELL:
        for pattern, reason in _LONG_RUNNING:
            if pattern.search(block.code):
                return reason
    return None


def test_every_block_is_run_or_says_why() -> None:
    """A block is run, or marked `<!-- not run: reason -->` with a reason; a block that
    cannot be run (another language, a long-running command) must be marked, so a new
    block is never silently skipped and a test never hangs on `make run`."""
    problems = [
        f"{block.where}: {reason}; make it runnable or mark it <!-- not run: why -->"
        for block in RUN
        if (reason := _refusal(block))
    ]
    problems += [f"{b.where}: say why it is not run" for b in BLOCKS if b.not_run == ""]
    assert not problems, "\n".join(problems)
    keys = {block.key for block in RUN}
    stale = set(EXPECTED) - keys
    assert not stale, f"EXPECTED names blocks that are not run: {sorted(stale)}"
    assert {b.language for b in RUN} >= {"sh", "python"}, "the README's examples are not run"


def _command_table(text: str) -> set[str]:
    """The commands the "Command line" section's table lists (`runner NAME ...` rows)."""
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"(?m)^\| `runner ([a-z-]+)", section)) | set(
        re.findall(r"(?m)^\| `runner [^`]*`, `runner ([a-z-]+)", section)
    )


def test_the_command_table_lists_every_command() -> None:
    """Each command `runner --help` lists has its row in the README's command table,
    and the table lists no command that does not exist."""
    listed = _command_table(README.read_text(encoding="utf-8"))
    assert listed == set(COMMANDS), (
        f"missing: {sorted(set(COMMANDS) - listed)}, unknown: {sorted(listed - set(COMMANDS))}"
    )


# --- the module's servers, data and daemon ---------------------------------------------


@dataclass
class Stage:
    """What a block runs against: the environment naming it, and the daemon."""

    env: dict[str, str]
    daemon: DaemonProcess


async def _admin_execute(servers: Servers, sql: str) -> None:
    conn = await asyncpg.connect(servers.admin_database_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _delete_keys(redis_url: str, prefix: str) -> None:
    with Redis.from_url(redis_url) as redis:
        keys = list(redis.scan_iter(match=f"{{{prefix}}}*", count=1000))
        if keys:
            redis.delete(*keys)


def _stop(daemon: DaemonProcess) -> None:
    """SIGTERM, as Ctrl-C on `make run` would; a kill if it does not exit in time."""
    daemon.signal(signal.SIGTERM)
    try:
        daemon.wait_exit(15)
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def stage(servers: Servers) -> Iterator[Stage]:
    """The dev config's daemon on the session's servers, with a database (migrated by
    the daemon at start) and a key prefix of this module's own."""
    token = secrets.token_hex(4)
    database, prefix = f"runner_readme_{token}", f"readme-{token}"
    asyncio.run(_admin_execute(servers, f"CREATE DATABASE {database}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNNER_")}
    env |= {
        "RUNNER_REDIS_URL": servers.redis_url,
        "RUNNER_DATABASE_URL": servers.database_url(database),
        "RUNNER_KEY_PREFIX": prefix,
    }
    daemon = DaemonProcess(DEV_CONFIG, env)
    try:
        daemon.wait_ready()
        yield Stage(env, daemon)
    finally:
        _stop(daemon)
        asyncio.run(_admin_execute(servers, f"DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        _delete_keys(servers.redis_url, prefix)


# --- running a block ---------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: timed out
    stdout: str
    stderr: str


def _command(block: Block, scratch: Path) -> list[str]:
    if block.language in PYTHON:
        script = scratch / "snippet.py"
        script.write_text(block.code, encoding="utf-8")
        return [sys.executable, str(script)]
    return ["bash", "-euo", "pipefail", "-c", block.code]


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else data or ""


def run_block(block: Block, env: dict[str, str], scratch: Path) -> Outcome:
    """Run the block as a reader would, from the checkout, within SNIPPET_TIMEOUT."""
    try:
        done = subprocess.run(
            _command(block, scratch),
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=SNIPPET_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return Outcome(None, _text(exc.stdout), _text(exc.stderr))
    return Outcome(done.returncode, done.stdout, done.stderr)


def _report(block: Block, outcome: Outcome, stage: Stage, problem: str) -> str:
    """Everything needed to see why a block failed without running it again."""
    status = "timed out" if outcome.code is None else f"exit {outcome.code}"
    return (
        f"{block.where}: {problem} ({status})\n"
        f"--- block ---\n{block.code}"
        f"--- stdout ---\n{outcome.stdout}"
        f"--- stderr ---\n{outcome.stderr}"
        f"--- daemon's last log lines ---\n{stage.daemon.output()}"
    )


@pytest.mark.parametrize("block", RUN, ids=[f"{b.key}:L{b.line}" for b in RUN])
def test_readme_block_runs(block: Block, stage: Stage, tmp_path: Path) -> None:
    """The block exits 0 against the dev config and a running daemon, prints no
    traceback, and prints what its comments promise (EXPECTED)."""
    refusal = _refusal(block)
    assert refusal is None, f"{block.where}: {refusal}"
    outcome = run_block(block, stage.env, tmp_path)
    assert outcome.code == 0, _report(block, outcome, stage, "failed")
    assert "Traceback" not in outcome.stderr, _report(block, outcome, stage, "a traceback")
    output = outcome.stdout + outcome.stderr
    missing = [p for p in EXPECTED.get(block.key, ()) if not re.search(p, output)]
    assert not missing, _report(block, outcome, stage, f"did not print {missing}")
