"""Timeouts with ``asyncio.wait_for`` and ``asyncio.wait``: ones that pass and ones that fire."""

import asyncio

import pytest


async def lookup(key: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return key.upper()


@pytest.mark.asyncio
async def test_wait_for_returns_when_fast_enough():
    assert await asyncio.wait_for(lookup("fast", 0.05), timeout=0.5) == "FAST"


@pytest.mark.asyncio
async def test_wait_for_raises_timeout_error():
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(lookup("slow", 0.5), timeout=0.1)


@pytest.mark.asyncio
async def test_timeout_cancels_the_awaited_coroutine():
    cancelled = asyncio.Event()

    async def stuck() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(stuck(), timeout=0.2)
    assert cancelled.is_set()


@pytest.mark.asyncio
async def test_retry_after_a_timeout():
    delays = iter([0.4, 0.05])  # the first call hangs, the retry is quick
    attempts = 0

    async def call_with_retry() -> str:
        nonlocal attempts
        while True:
            attempts += 1
            try:
                return await asyncio.wait_for(lookup("retry", next(delays)), timeout=0.15)
            except asyncio.TimeoutError:
                continue

    assert await call_with_retry() == "RETRY"
    assert attempts == 2


@pytest.mark.asyncio
async def test_wait_returns_what_finished_before_the_deadline():
    fast = asyncio.create_task(lookup("fast", 0.05))
    slow = asyncio.create_task(lookup("slow", 3600))
    done, pending = await asyncio.wait({fast, slow}, timeout=0.3)
    assert done == {fast}
    assert pending == {slow}
    slow.cancel()
    await asyncio.gather(slow, return_exceptions=True)
    assert slow.cancelled()
