"""Libraries' standard-library log records join the JSON log, one line each."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from runner.logs import configure_logging, flush_logs


def test_a_library_traceback_becomes_one_json_line(tmp_path: Path) -> None:
    """asyncpg's pool logs a reconnect failure with its traceback through `logging`:
    the log file holds one JSON object for it, the exception as a field."""
    log_file = tmp_path / "runner.log"
    configure_logging("info", "json", str(log_file))
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError:
            logging.getLogger("asyncpg.pool").warning(
                "Failed to restore the pool connection floor; retrying", exc_info=True
            )
        flush_logs()
    finally:
        configure_logging(
            "info", "json", os.devnull
        )  # JSON: cached loggers follow any later stream
    lines = log_file.read_text().splitlines()
    assert len(lines) == 1
    line = json.loads(lines[0])
    assert line["event"] == "Failed to restore the pool connection floor; retrying"
    assert (line["level"], line["logger"]) == ("warning", "asyncpg.pool")
    assert line["error"] == "ConnectionRefusedError: [Errno 111] Connection refused"
