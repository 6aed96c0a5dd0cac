"""What the commands share in reading their arguments: the settings, JSON payloads
(inline, @FILE or -), durations and due times, each refused with the option named."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from typing import Any

import orjson

from runner.config.durations import parse_duration
from runner.config.settings import Settings, config_path, load_settings
from runner.errors import UsageError


def settings_of(args: argparse.Namespace) -> Settings:
    settings = load_settings(config_path(getattr(args, "config", None), os.environ))
    args.loaded_settings = settings  # for naming the config and URL if a server is down
    return settings


def payload_text(value: str, name: str) -> str:
    """A JSON argument given inline, as @FILE, or as - (stdin): payloads too big for a
    command line come from a file or a pipe."""
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            return open(value[1:], encoding="utf-8").read()  # read at once
        except OSError as exc:
            raise UsageError(f"{name}: cannot read {value[1:]!r}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise UsageError(f"{name}: {value[1:]!r} is not UTF-8 text: {exc}") from None
    return value


def json_arg(value: str, name: str, kind: type) -> Any:
    from runner.client.input import refuse_nul  # noqa: PLC0415  # keeps `runner --help` fast

    text = payload_text(value, name)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise UsageError(f"{name}: not valid JSON ({exc}); e.g. {name} '[1, \"two\"]'") from None
    if not isinstance(value, kind):
        wanted = "a JSON array" if kind is list else "a JSON object"
        raise UsageError(f"{name}: must be {wanted}, got {text[:200]!r}")
    refuse_nul(name, orjson.dumps(value).decode())
    return value


def duration_arg(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{option}: {exc}") from None


def when(args: argparse.Namespace) -> dict[str, Any]:
    if args.in_ and args.at:
        raise UsageError("give --in or --at, not both")
    if args.in_:
        return {"delay": duration_arg(args.in_, "--in")}
    if args.at:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            raise UsageError(f"--at: not an ISO 8601 time: {args.at!r}") from None
        if at.tzinfo is None:
            raise UsageError(f"--at: give a UTC offset, e.g. {args.at}+00:00 or {args.at}Z")
        return {"at": at}
    return {}
