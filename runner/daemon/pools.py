"""The daemon's pools, one executor per kind, resized by a reload: new sizes take
effect for new jobs, and running jobs finish on the pool they started on."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping

from runner.config.settings import Settings
from runner.daemon.cpu_pool import CpuPool
from runner.daemon.executors import AsyncExecutor, Executor, ThreadExecutor


def make_pools(settings: Settings, on_free: Callable[[], None]) -> dict[str, Executor]:
    return {
        "async": AsyncExecutor(settings.async_concurrency, on_free),
        "io": ThreadExecutor(settings.io_threads, on_free),
        "cpu": CpuPool(settings.cpu_processes, on_free),
    }


async def resize_pools(
    pools: MutableMapping[str, Executor], old: Settings, new: Settings, on_free: Callable[[], None]
) -> None:
    """The async limit changes in place; a new io or cpu pool replaces the old one,
    which takes no more jobs and ends once its running ones do."""
    async_executor = pools["async"]
    assert isinstance(async_executor, AsyncExecutor)
    async_executor.limit = new.async_concurrency
    if new.io_threads != old.io_threads:
        retired_io = pools["io"]
        assert isinstance(retired_io, ThreadExecutor)
        pools["io"] = ThreadExecutor(new.io_threads, on_free, retired_io.next_job)
        retired_io.retire()
    if new.cpu_processes != old.cpu_processes:
        pool = CpuPool(new.cpu_processes, on_free)
        await pool.start()
        retired_cpu = pools["cpu"]
        assert isinstance(retired_cpu, CpuPool)
        pools["cpu"] = pool
        await retired_cpu.retire()
