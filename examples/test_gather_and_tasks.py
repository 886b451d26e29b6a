"""Concurrency inside a test: ``asyncio.gather``, ``create_task``, queues, events, cancellation."""

import asyncio

import pytest


async def double_later(value: int, delay: float) -> int:
    await asyncio.sleep(delay)
    return value * 2


async def fail_later(delay: float) -> int:
    await asyncio.sleep(delay)
    raise ValueError("backend unavailable")


@pytest.mark.asyncio
async def test_gather_runs_coroutines_concurrently():
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(double_later(1, 0.3), double_later(2, 0.2), double_later(3, 0.1))
    assert results == [2, 4, 6]  # in argument order, not completion order
    assert loop.time() - start < 0.55  # sequential awaits would take 0.6 s


@pytest.mark.asyncio
async def test_gather_can_collect_exceptions():
    results = await asyncio.gather(double_later(5, 0.1), fail_later(0.05), return_exceptions=True)
    assert results[0] == 10
    assert isinstance(results[1], ValueError)


@pytest.mark.asyncio
async def test_as_completed_yields_fastest_first():
    delays = {"slow": 0.3, "fast": 0.1, "medium": 0.2}

    async def probe(name: str) -> str:
        await asyncio.sleep(delays[name])
        return name

    order = [await next_done for next_done in asyncio.as_completed(map(probe, delays))]
    assert order == ["fast", "medium", "slow"]


@pytest.mark.asyncio
async def test_background_task_consumes_a_queue():
    queue: asyncio.Queue[int] = asyncio.Queue()
    processed: list[int] = []

    async def worker() -> None:
        while True:
            item = await queue.get()
            await asyncio.sleep(0.05)  # simulated work per item
            processed.append(item * item)
            queue.task_done()

    task = asyncio.create_task(worker())
    for item in range(4):
        queue.put_nowait(item)
    await queue.join()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert processed == [0, 1, 4, 9]


@pytest.mark.asyncio
async def test_cancelling_a_task_runs_its_cleanup():
    started = asyncio.Event()
    cleaned_up = False

    async def long_poll() -> None:
        nonlocal cleaned_up
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            cleaned_up = True

    task = asyncio.create_task(long_poll())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert cleaned_up
