"""The Lua scripts, loaded once from their .lua files and registered for EVALSHA."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from runner.errors import ConfigError

SCRIPT_NAMES = ("enqueue", "claim", "finish", "renew", "reap")


def script_source(name: str) -> str:
    return (resources.files("runner.store") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Scripts:
    enqueue: AsyncScript
    claim: AsyncScript
    finish: AsyncScript
    renew: AsyncScript
    reap: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(**{name: redis.register_script(script_source(name)) for name in SCRIPT_NAMES})


async def check_scripts(redis: Redis) -> None:
    """SCRIPT LOAD every script now, so a syntax error fails at start, not at first use."""
    problems = []
    for name in SCRIPT_NAMES:
        try:
            await redis.script_load(script_source(name))
        except Exception as exc:  # the server's message is the useful part
            problems.append(f"lua/{name}.lua: {exc}")
    if problems:
        raise ConfigError(problems, "runner/store/lua")
