"""Plain async tests: mark an ``async def`` test with ``@pytest.mark.asyncio`` and await freely."""

import asyncio

import pytest


async def fetch_greeting(name: str) -> str:
    await asyncio.sleep(0.1)  # stands in for network I/O
    return f"Hello, {name}!"


async def parse_port(text: str) -> int:
    await asyncio.sleep(0)
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {port}")
    return port


@pytest.mark.asyncio
async def test_await_a_coroutine():
    assert await fetch_greeting("Ada") == "Hello, Ada!"


@pytest.mark.asyncio
async def test_async_code_can_raise():
    assert await parse_port("8080") == 8080
    with pytest.raises(ValueError, match="out of range"):
        await parse_port("70000")


@pytest.mark.asyncio
async def test_loop_callbacks_resolve_futures():
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    loop.call_later(0.05, future.set_result, "done")
    assert not future.done()
    assert await future == "done"


@pytest.mark.asyncio
async def test_sleep_advances_loop_time():
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(0.2)
    assert loop.time() - start >= 0.19
