"""Parametrized async tests and a parametrized async fixture."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import pytest_asyncio


async def retry(operation: Callable[[], Awaitable[str]], attempts: int, base_delay: float) -> str:
    """Call ``operation`` until it succeeds, backing off exponentially between attempts."""
    for attempt in range(attempts):
        try:
            return await operation()
        except ConnectionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(base_delay * 2**attempt)
    raise ValueError("attempts must be positive")


def flaky(failures: int) -> Callable[[], Awaitable[str]]:
    calls = 0

    async def operation() -> str:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls <= failures:
            raise ConnectionError(f"failure {calls}")
        return f"ok after {calls} calls"

    return operation


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("failures", "expected"),
    [(0, "ok after 1 calls"), (1, "ok after 2 calls"), (3, "ok after 4 calls")],
    ids=["first-try", "one-retry", "three-retries"],
)
async def test_retry_recovers(failures, expected):
    assert await retry(flaky(failures), attempts=4, base_delay=0.05) == expected


@pytest.mark.asyncio
async def test_retry_gives_up_and_reraises():
    with pytest.raises(ConnectionError, match="failure 3"):
        await retry(flaky(failures=5), attempts=3, base_delay=0.05)


class Cache:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self._data: dict[str, str] = {}

    async def set(self, key: str, value: str) -> None:
        await asyncio.sleep(self.latency)
        self._data[key] = value

    async def get(self, key: str) -> str | None:
        await asyncio.sleep(self.latency)
        return self._data.get(key)


@pytest_asyncio.fixture(params=[0.0, 0.1], ids=["local", "remote"])
async def cache(request):
    cache = Cache(latency=request.param)
    await cache.set("warm", "yes")
    return cache


@pytest.mark.asyncio
async def test_cache_round_trip(cache):
    await cache.set("user:1", "ada")
    assert await cache.get("user:1") == "ada"
    assert await cache.get("warm") == "yes"
    assert await cache.get("missing") is None
