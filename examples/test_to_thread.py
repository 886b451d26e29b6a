"""``asyncio.to_thread``: call blocking, synchronous code without stalling the event loop."""

import asyncio
import contextvars
import time
import zlib

import pytest

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id")


def blocking_checksum(data: bytes) -> int:
    time.sleep(0.1)  # e.g. a synchronous library doing file or network I/O
    return zlib.crc32(data)


def blocking_lookup(key: str) -> str:
    time.sleep(0.05)
    raise KeyError(key)


@pytest.mark.asyncio
async def test_to_thread_returns_the_result():
    assert await asyncio.to_thread(blocking_checksum, b"payload") == zlib.crc32(b"payload")


@pytest.mark.asyncio
async def test_to_thread_propagates_exceptions():
    with pytest.raises(KeyError, match="missing"):
        await asyncio.to_thread(blocking_lookup, "missing")


@pytest.mark.asyncio
async def test_to_thread_copies_context_variables():
    request_id.set("req-42")
    assert await asyncio.to_thread(request_id.get) == "req-42"


@pytest.mark.asyncio
async def test_event_loop_keeps_running_while_the_thread_blocks():
    ticks = 0
    done = asyncio.Event()

    async def heartbeat() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0.02)

    beat = asyncio.create_task(heartbeat())
    results = await asyncio.gather(
        asyncio.to_thread(blocking_checksum, b"a"), asyncio.to_thread(blocking_checksum, b"b")
    )
    done.set()
    await beat
    assert results == [zlib.crc32(b"a"), zlib.crc32(b"b")]
    assert ticks >= 2  # the heartbeat kept beating while both threads slept
