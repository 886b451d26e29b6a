"""Task introspection for hang reports: await chains, what each task waits on, deadlock cycles.

Unlike the rest of the suite these are direct tests of ``aiotempo.tasks``: each builds a loop,
starts tasks that block in one particular way, lets the loop run a few iterations and inspects
the snapshot and the report.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import sys
import threading
import time
from collections.abc import Awaitable, Coroutine, Iterator
from typing import Any

import pytest

from aiotempo import tasks
from aiotempo.tasks import TaskInfo, find_deadlocks, format_report, snapshot, track_lock_owners

Task = asyncio.Task[Any]
HERE = __file__
py311 = pytest.mark.skipif(sys.version_info < (3, 11), reason="new in Python 3.11")


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    try:
        yield loop
        leftovers = asyncio.all_tasks(loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def spawn(loop: asyncio.AbstractEventLoop, **coros: Coroutine[Any, Any, Any]) -> dict[str, Task]:
    """One task per keyword, named after it."""
    return {name: loop.create_task(coro, name=name) for name, coro in coros.items()}


def start(loop: asyncio.AbstractEventLoop, **coros: Coroutine[Any, Any, Any]) -> dict[str, Task]:
    """Spawn tasks and run the loop until they are all blocked."""
    started = spawn(loop, **coros)
    settle(loop)
    return started


async def awaiting(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def settle(loop: asyncio.AbstractEventLoop) -> None:
    for _ in range(5):
        loop.run_until_complete(asyncio.sleep(0))


def info(infos: list[TaskInfo], name: str) -> TaskInfo:
    (found,) = [i for i in infos if i.name == name]
    return found


def line_of(marker: str) -> int:
    """The line of this file carrying the comment ``# <marker>``."""
    with open(HERE) as source:
        for number, line in enumerate(source, 1):
            if line.rstrip().endswith(f"# {marker}"):
                return number
    raise LookupError(marker)


def here(marker: str) -> str:
    """How the report names the line of ``marker``."""
    return f"{tasks._short(HERE)}:{line_of(marker)}"


def user_frames(task_info: TaskInfo) -> list[tuple[str, str]]:
    """(function, source line) of the chain's frames in this file."""
    return [(f.function.split(".")[-1], f.line) for f in task_info.chain if f.filename == HERE]


# -- await chains ---------------------------------------------------------------------------------


def test_chain_follows_every_await_down_to_asyncio(loop):
    event = asyncio.Event()

    async def inner():
        await event.wait()  # inner-await

    async def middle():
        await inner()  # middle-await

    async def outer():
        await middle()  # outer-await

    started = start(loop, outer=outer())
    waiting = info(snapshot(loop), "outer")
    assert user_frames(waiting) == [
        ("outer", "await middle()  # outer-await"),
        ("middle", "await inner()  # middle-await"),
        ("inner", "await event.wait()  # inner-await"),
    ]
    assert [f.lineno for f in waiting.chain[:3]] == [
        line_of("outer-await"),
        line_of("middle-await"),
        line_of("inner-await"),
    ]
    assert waiting.chain[-1].function.endswith("Event.wait")
    assert len(started["outer"].get_stack()) < len(waiting.chain)  # what asyncio itself shows


def test_chain_enters_async_generators(loop):
    event = asyncio.Event()

    async def numbers():
        await event.wait()  # in-generator
        yield 1

    async def consume():
        async for _ in numbers():  # async-for
            pass

    start(loop, consume=consume())
    assert user_frames(info(snapshot(loop), "consume")) == [
        ("consume", "async for _ in numbers():  # async-for"),
        ("numbers", "await event.wait()  # in-generator"),
    ]


def test_chain_enters_yield_from_generators(loop):
    future = loop.create_future()

    class Awaitable:
        def __await__(self):
            yield from future  # yield-from

    async def main():
        await Awaitable()

    start(loop, main=main())
    waiting = info(snapshot(loop), "main")
    assert user_frames(waiting)[-1] == ("__await__", "yield from future  # yield-from")
    assert waiting.waiting_on.startswith(f"waits for Future 0x{id(future):x}")


# -- what a task waits on -------------------------------------------------------------------------


def test_event(loop):
    event = asyncio.Event()
    start(loop, waiter=event.wait())
    assert info(snapshot(loop), "waiter").waiting_on == f"waits for Event 0x{id(event):x} to be set"


def test_queue_get_put_and_join(loop):
    empty, full, unfinished = asyncio.Queue(), asyncio.Queue(maxsize=1), asyncio.Queue()
    full.put_nowait("item")
    unfinished.put_nowait("item")
    start(loop, getter=empty.get(), putter=full.put("more"), joiner=unfinished.join())
    infos = snapshot(loop)
    assert info(infos, "getter").waiting_on == (
        f"waits for an item from Queue 0x{id(empty):x}, which is empty"
    )
    assert info(infos, "putter").waiting_on == (
        f"waits for room in Queue 0x{id(full):x}, full at 1/1"
    )
    assert info(infos, "joiner").waiting_on == (
        f"waits for task_done() on the 1 unfinished items of Queue 0x{id(unfinished):x}"
    )


def test_sleep_is_a_timer(loop):
    start(loop, sleeper=asyncio.sleep(3600))
    text = info(snapshot(loop), "sleeper").waiting_on
    assert re.fullmatch(r"waits for a timer: asyncio\.sleep\(3600\), due in 3[56]\d\d\.\ds", text)


def test_condition_and_semaphore(loop):
    condition = asyncio.Condition()
    semaphore = asyncio.Semaphore(0)

    async def wait_on_condition():
        async with condition:
            await condition.wait()

    async def wait_for_predicate():
        async with condition:
            await condition.wait_for(lambda: False)

    start(
        loop,
        notified=wait_on_condition(),
        predicate=wait_for_predicate(),
        semaphore=semaphore.acquire(),
    )
    infos = snapshot(loop)
    label = f"Condition 0x{id(condition):x}"
    assert info(infos, "notified").waiting_on == f"waits for {label} to be notified"
    assert info(infos, "predicate").waiting_on.startswith(f"waits for {label} to be notified and")
    assert info(infos, "semaphore").waiting_on == (
        f"waits for Semaphore 0x{id(semaphore):x} (value 0, 1 waiting; holders unknown)"
    )


def test_awaiting_another_task(loop):
    event = asyncio.Event()
    worker = loop.create_task(event.wait(), name="worker")

    async def boss():
        await worker

    start(loop, boss=boss())
    infos = snapshot(loop)
    assert info(infos, "boss").waiting_on == "waits for task 'worker'"
    assert info(infos, "boss").waits_for == (worker,)
    assert find_deadlocks(infos) == []


def test_gather_waits_for_every_pending_child(loop):
    event = asyncio.Event()

    async def parent():
        await asyncio.gather(event.wait(), asyncio.sleep(0), event.wait())

    start(loop, parent=parent())
    waiting = info(snapshot(loop), "parent")
    assert waiting.waiting_on.startswith("waits for gather() of 3, 2 pending: task 'Task-")
    assert len(waiting.waits_for) == 2 and waiting.waits_for_all


def test_shield(loop):
    worker = loop.create_task(asyncio.Event().wait(), name="worker")

    async def shielded():
        await asyncio.shield(worker)

    start(loop, shielded=shielded())
    waiting = info(snapshot(loop), "shielded")
    assert waiting.waiting_on == "waits for task 'worker' through shield()"
    assert waiting.waits_for == (worker,)


def test_wait_for_with_a_timeout(loop):
    worker = loop.create_task(asyncio.Event().wait(), name="worker")
    start(loop, waiter=asyncio.wait_for(worker, timeout=60))
    waiting = info(snapshot(loop), "waiter")
    assert waiting.waits_for == (worker,)
    assert re.fullmatch(r"waits for task 'worker'.* in (59|60)\.\ds", waiting.waiting_on)


def test_asyncio_wait_first_completed_needs_any(loop):
    worker = loop.create_task(asyncio.Event().wait(), name="worker")
    start(loop, waiter=asyncio.wait([worker], return_when=asyncio.FIRST_COMPLETED))
    waiting = info(snapshot(loop), "waiter")
    assert waiting.waiting_on == (
        "waits for asyncio.wait(FIRST_COMPLETED) on 1, 1 pending: task 'worker'"
    )
    assert waiting.waits_for == (worker,) and not waiting.waits_for_all


@py311
def test_taskgroup_waits_for_its_tasks(loop):
    event = asyncio.Event()

    async def group():
        async with asyncio.TaskGroup() as tg:
            tg.create_task(event.wait(), name="child")

    start(loop, group=group())
    waiting = info(snapshot(loop), "group")
    assert waiting.waiting_on == "waits for its TaskGroup's tasks, 1 pending: task 'child'"


@py311
def test_barrier(loop):
    barrier = asyncio.Barrier(3)
    start(loop, first=barrier.wait())
    assert info(snapshot(loop), "first").waiting_on == (
        f"waits at Barrier 0x{id(barrier):x} (1 of 3 parties waiting)"
    )


@py311
def test_a_pending_timeout_is_reported(loop):
    async def bounded():
        async with asyncio.timeout(30):
            await asyncio.Event().wait()

    start(loop, bounded=bounded())
    text = info(snapshot(loop), "bounded").waiting_on
    assert re.search(r"to be set; a timeout cancels it in (29|30)\.\ds$", text)


def test_new_and_ready_tasks(loop):
    future = loop.create_future()

    async def resumes():
        await future

    start(loop, ready=resumes())
    future.set_result(None)  # wakes the task on the next iteration, which has not run
    loop.create_task(asyncio.sleep(0), name="new")
    infos = snapshot(loop)
    assert (info(infos, "ready").state, info(infos, "new").state) == ("ready", "new")
    assert info(infos, "new").waiting_on == "has not started yet"


# -- locks ----------------------------------------------------------------------------------------


def test_lock_owner_is_unknown_without_tracking(loop):
    lock = asyncio.Lock()

    async def hold():
        await lock.acquire()

    start(loop, holder=hold(), waiter=lock.acquire())
    assert info(snapshot(loop), "waiter").waiting_on == (
        f"waits for Lock 0x{id(lock):x}, held by an unknown task"
        " (track_lock_owners() would name it)"
    )


def test_lock_owner_and_where_it_acquired_the_lock(loop):
    lock = asyncio.Lock()
    event = asyncio.Event()

    async def hold():
        async with lock:  # holder-acquires
            await event.wait()

    with track_lock_owners():
        started = start(loop, holder=hold(), waiter=lock.acquire())
        infos = snapshot(loop)
        assert tasks.lock_owner(lock) is started["holder"]
    label = f"Lock 0x{id(lock):x}"
    site = f"(acquired at {tasks._short(HERE)}:{line_of('holder-acquires')} in "
    assert info(infos, "waiter").waiting_on.startswith(
        f"waits for {label}, held by task 'holder' {site}"
    )
    assert info(infos, "waiter").waits_for == (started["holder"],)
    assert info(infos, "holder").holds[0].startswith(f"{label} {site}")


def test_lock_held_by_a_task_that_ended(loop):
    lock = asyncio.Lock()

    async def leak():
        await lock.acquire()  # leaks

    with track_lock_owners():
        start(loop, leaker=leak(), waiter=lock.acquire())
        text = info(snapshot(loop), "waiter").waiting_on
    assert "held by task 'leaker', which ended without releasing it (acquired at" in text
    assert here("leaks") in text


def test_track_lock_owners_nests_and_restores(loop):
    original = (asyncio.Lock.acquire, asyncio.Lock.release)
    lock = asyncio.Lock()

    async def owns() -> bool:
        async with lock:
            return tasks.lock_owner(lock) is asyncio.current_task()

    with track_lock_owners():
        with track_lock_owners():
            assert asyncio.Lock.acquire is not original[0]
            assert asyncio.iscoroutinefunction(asyncio.Lock.acquire)
        assert asyncio.Lock.acquire is not original[0]
        assert loop.run_until_complete(owns())
        assert tasks.lock_owner(lock) is None
    assert (asyncio.Lock.acquire, asyncio.Lock.release) == original
    assert loop.run_until_complete(owns()) is False  # still a working lock, no longer tracked


# -- deadlocks ------------------------------------------------------------------------------------


def test_ab_ba_lock_deadlock_is_a_cycle(loop):
    first, second = asyncio.Lock(), asyncio.Lock()

    async def transfer(source: asyncio.Lock, target: asyncio.Lock) -> None:
        async with source:  # takes-source
            await asyncio.sleep(0)
            async with target:  # takes-target
                pass

    with track_lock_owners():
        start(loop, a=transfer(first, second), b=transfer(second, first))
        infos = snapshot(loop)
    (cycle,) = find_deadlocks(infos)
    assert [i.name for i in cycle] == ["a", "b"]
    report = format_report(infos)
    assert report.startswith("2 tasks, 1 deadlock\n\nDeadlock 1: 'a' -> 'b' -> 'a'\n")
    assert f"task 'a' waits for Lock 0x{id(second):x}, held by task 'b' (acquired at" in report
    assert f"task 'b' waits for Lock 0x{id(first):x}, held by task 'a' (acquired at" in report
    assert f"{here('takes-source')} in " in report
    assert "async with target:  # takes-target" in report
    assert "Task 'a' [deadlock 1] waits for" in report


async def wait_for_peer(peers: dict[str, Task], peer: str, shield: bool = False) -> None:
    """Await the task named ``peer``; through ``shield()`` so that the cycle can be cancelled.

    Cancelling a task cancels what it awaits: in a cycle of plain awaits ``Task.cancel()``
    recurses until RecursionError, which would leave these tests' tasks pending forever.
    """
    await asyncio.sleep(0)
    await (asyncio.shield(peers[peer]) if shield else peers[peer])


def test_tasks_awaiting_each_other_are_a_cycle(loop):
    peers: dict[str, Task] = {}
    peers.update(
        spawn(loop, ping=wait_for_peer(peers, "pong"), pong=wait_for_peer(peers, "ping", True))
    )
    settle(loop)
    infos = snapshot(loop)
    (cycle,) = find_deadlocks(infos)
    assert [i.name for i in cycle] == ["ping", "pong"]
    assert info(infos, "ping").waiting_on == "waits for task 'pong'"
    assert info(infos, "pong").waiting_on == "waits for task 'ping' through shield()"


def test_gather_of_a_task_that_awaits_the_gatherer_is_a_cycle(loop):
    parent: list[Task] = []

    async def child():
        await asyncio.shield(parent[0])

    async def gatherer():
        await asyncio.gather(child(), asyncio.sleep(0))

    parent.extend(spawn(loop, parent=gatherer()).values())
    settle(loop)
    (cycle,) = find_deadlocks(snapshot(loop))
    assert len(cycle) == 2 and "parent" in {i.name for i in cycle}


def test_reacquiring_a_held_lock_is_a_self_deadlock(loop):
    lock = asyncio.Lock()

    async def reenter():
        async with lock, lock:  # reenters
            pass

    with track_lock_owners():
        start(loop, reenter=reenter())
        infos = snapshot(loop)
    (cycle,) = find_deadlocks(infos)
    assert [i.name for i in cycle] == ["reenter"]
    assert "Deadlock 1: 'reenter' waits for itself" in format_report(infos)


def test_no_deadlock_when_any_outside_event_can_wake_a_task(loop):
    peers: dict[str, Task] = {}
    outside = loop.create_future()

    async def either():
        await asyncio.sleep(0)
        await asyncio.wait([peers["other"], outside], return_when=asyncio.FIRST_COMPLETED)

    async def other():
        await asyncio.sleep(0)
        await peers["either"]

    peers.update(spawn(loop, either=either(), other=other()))
    settle(loop)
    infos = snapshot(loop)
    assert find_deadlocks(infos) == []
    assert "[stuck" not in format_report(infos)
    outside.cancel()


def test_a_task_behind_a_deadlock_is_marked(loop):
    peers: dict[str, Task] = {}
    peers.update(
        spawn(
            loop,
            a=wait_for_peer(peers, "b"),
            b=wait_for_peer(peers, "a", True),
            c=wait_for_peer(peers, "a"),
        )
    )
    settle(loop)
    infos = snapshot(loop)
    assert [[i.name for i in c] for c in find_deadlocks(infos)] == [["a", "b"]]
    assert "Task 'c' [stuck behind a deadlock] waits for task 'a'" in format_report(infos)


# -- executor jobs --------------------------------------------------------------------------------


def blocking(release: threading.Event) -> None:
    release.wait()  # in-thread


def test_executor_job_and_its_thread_stack(loop):
    release = threading.Event()
    try:
        start(loop, job=awaiting(loop.run_in_executor(None, blocking, release)))
        waiting = info(snapshot(loop), "job")
    finally:
        release.set()
    assert re.fullmatch(
        r"waits for executor job test_tasks\.blocking\(<threading\.Event.*>\)"
        r" running in thread 'asyncio_\d+'",
        waiting.waiting_on,
    )
    assert ("blocking", "release.wait()  # in-thread") in [
        (f.function, f.line) for f in waiting.thread_stack
    ]
    assert "  in the executor thread:\n" in format_report([waiting])


def test_to_thread_names_the_function(loop):
    release = threading.Event()
    try:
        start(loop, job=asyncio.to_thread(blocking, release))
        text = info(snapshot(loop), "job").waiting_on
    finally:
        release.set()
    assert text.startswith("waits for executor job test_tasks.blocking(<threading.Event")


def test_queued_executor_job(loop):
    release = threading.Event()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        start(
            loop,
            busy=awaiting(loop.run_in_executor(pool, blocking, release)),
            queued=awaiting(loop.run_in_executor(pool, sum, [1, 2])),
        )
        text = info(snapshot(loop), "queued").waiting_on
    finally:
        release.set()
        pool.shutdown()
    assert text == "waits for executor job sum([1, 2]), queued: no worker thread has started it"


# -- running tasks, creation sites ----------------------------------------------------------------


def test_running_task_seen_from_another_thread(loop):
    inside, release = threading.Event(), threading.Event()

    async def stuck():
        inside.set()
        release.wait()  # blocks-the-loop

    thread = threading.Thread(target=loop.run_until_complete, args=(stuck(),))
    thread.start()
    try:
        assert inside.wait(10)
        for _ in range(1000):  # until the task is in release.wait(), not just past inside.set()
            (task_info,) = snapshot(loop)
            if ("stuck", "release.wait()  # blocks-the-loop") in user_frames(task_info):
                break
            time.sleep(0.005)
    finally:
        release.set()
        thread.join()
    assert task_info.state == "running"
    assert task_info.waiting_on.startswith("is running: the event loop is executing it")
    assert user_frames(task_info)[-1] == ("stuck", "release.wait()  # blocks-the-loop")


def test_a_task_taking_its_own_snapshot(loop):
    async def introspect() -> list[TaskInfo]:
        return snapshot()  # takes-snapshot

    (task_info,) = loop.run_until_complete(introspect())
    assert task_info.state == "running"
    assert task_info.waiting_on == "is running: it took this snapshot"
    assert user_frames(task_info) == [("introspect", "return snapshot()  # takes-snapshot")]


def test_creation_site_in_debug_mode(loop):
    loop.set_debug(True)

    async def main():
        asyncio.get_running_loop().create_task(asyncio.Event().wait(), name="child")  # creates
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    child = info(snapshot(loop), "child")
    outside_asyncio = [f for f in child.created_at if "asyncio" not in f.filename]
    assert (outside_asyncio[-1].filename, outside_asyncio[-1].lineno) == (HERE, line_of("creates"))
    assert f"  created at {tasks._short(HERE)}:{line_of('creates')} in " in format_report([child])


def test_inspection_errors_are_reported_not_raised(loop, monkeypatch):
    start(loop, waiter=asyncio.Event().wait())

    def broken(*args: Any) -> Any:
        raise ValueError("boom")

    monkeypatch.setattr(tasks, "_walk", broken)
    assert (
        info(snapshot(loop), "waiter").waiting_on == "could not be inspected (ValueError('boom'))"
    )


def test_report_lists_every_task_with_its_chain(loop):
    event = asyncio.Event()

    async def worker():
        await event.wait()  # worker-waits

    start(loop, **{"Task-10": worker(), "Task-9": asyncio.sleep(60)})
    report = format_report(snapshot(loop))
    blocks = report.split("\n\n")
    assert blocks[0] == "2 tasks"
    assert blocks[1].startswith("Task 'Task-9' waits for a timer")
    lines = blocks[2].splitlines()
    assert lines[0] == f"Task 'Task-10' waits for Event 0x{id(event):x} to be set"
    assert lines[1].startswith(f"  {here('worker-waits')} in ")
    assert lines[2] == "      await event.wait()  # worker-waits"
    assert re.fullmatch(r"  asyncio[/\\]locks\.py:\d+ in Event\.wait", lines[3])


def test_helpers_have_no_side_effects_on_other_tests() -> None:
    """``track_lock_owners`` left no patch behind (it is process-wide)."""
    assert asyncio.Lock.acquire.__module__ == "asyncio.locks"
