"""Async context managers: classes, ``@asynccontextmanager`` and ``AsyncExitStack``."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest


class Pool:
    """A connection pool that hands out at most ``size`` connections at once."""

    def __init__(self, size: int) -> None:
        self._free = asyncio.Semaphore(size)
        self.in_use = 0
        self.peak = 0

    async def __aenter__(self) -> "Pool":
        await self._free.acquire()
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.sleep(0)  # e.g. reset the connection's session state
        self.in_use -= 1
        self._free.release()


@asynccontextmanager
async def transaction(log: list[str]) -> AsyncIterator[list[str]]:
    log.append("BEGIN")
    try:
        yield log
    except Exception:
        log.append("ROLLBACK")
        raise
    else:
        log.append("COMMIT")


@pytest.mark.asyncio
async def test_class_based_context_manager_limits_concurrency():
    pool = Pool(size=2)

    async def query() -> None:
        async with pool:
            await asyncio.sleep(0.1)

    await asyncio.gather(*(query() for _ in range(5)))
    assert pool.peak == 2
    assert pool.in_use == 0


@pytest.mark.asyncio
async def test_generator_based_context_manager_commits():
    async with transaction([]) as log:
        log.append("INSERT")
    assert log == ["BEGIN", "INSERT", "COMMIT"]


@pytest.mark.asyncio
async def test_context_manager_rolls_back_on_error():
    log: list[str] = []
    with pytest.raises(LookupError):
        async with transaction(log):
            raise LookupError("row not found")
    assert log == ["BEGIN", "ROLLBACK"]


@pytest.mark.asyncio
async def test_async_exit_stack_unwinds_in_reverse_order():
    log: list[str] = []
    pool = Pool(size=1)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(pool)
        await stack.enter_async_context(transaction(log))
        stack.push_async_callback(asyncio.to_thread, log.append, "CLEANUP")
        assert pool.in_use == 1
    assert log == ["BEGIN", "CLEANUP", "COMMIT"]
    assert pool.in_use == 0
