"""Async generators: consume them with ``async for``, comprehensions, ``anext`` and ``aclose``."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

PAGES = {0: ["a", "b"], 1: ["c"], 2: []}


async def fetch_page(number: int) -> list[str]:
    await asyncio.sleep(0.05)
    return PAGES[number]


async def paginate(fetch: Callable[[int], Awaitable[list[str]]]) -> AsyncIterator[str]:
    page = 0
    while items := await fetch(page):
        for item in items:
            yield item
        page += 1


async def ticker(interval: float, count: int) -> AsyncIterator[int]:
    for tick in range(count):
        await asyncio.sleep(interval)
        yield tick


@pytest.mark.asyncio
async def test_async_for_walks_every_page():
    items = []
    async for item in paginate(fetch_page):
        items.append(item)
    assert items == ["a", "b", "c"]


@pytest.mark.asyncio
async def test_async_comprehension_filters_a_stream():
    assert [tick async for tick in ticker(0.02, 8) if tick % 3 == 0] == [0, 3, 6]


@pytest.mark.asyncio
async def test_aclose_runs_the_generators_cleanup():
    closed = False

    async def subscription() -> AsyncIterator[str]:
        nonlocal closed
        try:
            for number in range(1000):
                await asyncio.sleep(0.05)
                yield f"message {number}"
        finally:
            closed = True

    stream = subscription()
    assert await anext(stream) == "message 0"
    assert await anext(stream) == "message 1"
    assert not closed
    await stream.aclose()
    assert closed
