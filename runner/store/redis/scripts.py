"""The Lua scripts, loaded once from their .lua files and registered for EVALSHA.

Every script that reads job hashes gets lib.lua put in front of it: the checks
that let a script set a malformed job aside instead of failing half-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from runner.errors import ConfigError
from runner.store.failures import on_redis

REQUEST_SCRIPTS = ("pause", "resume", "cancel", "retry", "delete", "update")
# Scripts that pick jobs by id and state the way an operator's request does.
REQUEST_LIB_SCRIPTS = (*REQUEST_SCRIPTS, "park")
SCRIPT_NAMES = (
    "enqueue", "claim", "finish", "renew", "reap", "forget", "release_held", "rename_fields",
    "revive", "notify_lease", "notify_replay",
    *REQUEST_LIB_SCRIPTS,
)  # fmt: skip


LUA = resources.files("runner.store.redis") / "lua"


def _read(name: str) -> str:
    return (resources.files("runner.store.redis") / "lua" / f"{name}.lua").read_text(
        encoding="utf-8"
    )


def script_source(name: str) -> str:
    """The script with lib.lua in front, and request_lib.lua for an operator's request
    (and park.lua, which picks jobs the same way)."""
    parts = ["lib", "request_lib", name] if name in REQUEST_LIB_SCRIPTS else ["lib", name]
    return "\n".join(_read(part) for part in parts)


@dataclass(frozen=True)
class Scripts:
    enqueue: AsyncScript
    claim: AsyncScript
    finish: AsyncScript
    renew: AsyncScript
    reap: AsyncScript
    forget: AsyncScript
    release_held: AsyncScript
    rename_fields: AsyncScript
    revive: AsyncScript
    notify_lease: AsyncScript
    notify_replay: AsyncScript
    pause: AsyncScript
    resume: AsyncScript
    cancel: AsyncScript
    retry: AsyncScript
    delete: AsyncScript
    update: AsyncScript
    park: AsyncScript

    def request(self, action: str) -> AsyncScript:
        script: AsyncScript = getattr(self, action)
        return script

    @classmethod
    def register(cls, redis: Redis) -> Scripts:
        return cls(**{name: redis.register_script(script_source(name)) for name in SCRIPT_NAMES})


@on_redis
async def check_scripts(redis: Redis) -> None:
    """SCRIPT LOAD every script now, so a syntax error fails at start, not at first use.

    Only the server's verdict on a script is a ConfigError; a server that cannot be
    reached raises StoreUnavailable like any other store call.
    """
    problems = []
    for name in SCRIPT_NAMES:
        try:
            await redis.script_load(script_source(name))
        except ResponseError as exc:  # the server's message is the useful part
            problems.append(f"lua/{name}.lua: {exc}")
    if problems:
        raise ConfigError(problems, "runner/store/redis/lua")
