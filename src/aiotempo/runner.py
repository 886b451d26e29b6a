"""Running a coroutine to completion on a given loop, for pytest's synchronous protocol.

pytest calls fixtures and tests synchronously; this module is the one place where such a call
turns into work on an event loop. In sequential mode that is ``loop.run_until_complete``, so
no loop is running while pytest's own (synchronous) code runs.

In concurrent mode each test's whole protocol runs in a greenlet of its own, started by a task
on the running loop (``spawn``). A call here then suspends the test's greenlet, hands the
coroutine to that task to await, and resumes the greenlet with the result: pytest's code stays
synchronous while the tests' awaits overlap. This is the technique of SQLAlchemy's asyncio
layer (``greenlet_spawn``/``await_only``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import greenlet
import pytest

T = TypeVar("T")

#: asyncio's messages when code drives a loop from inside a running one, and the fix.
_NESTED_LOOP_MESSAGES = {
    "asyncio.run() cannot be called from a running event loop": (
        "called asyncio.run() while its event loop is running; await the coroutine instead"
    ),
    "This event loop is already running": (
        "called loop.run_until_complete() or loop.run_forever() on its own running loop; "
        "await the coroutine instead"
    ),
    "Cannot run the event loop while another loop is running": (
        "started a second event loop inside the running one; await the coroutine instead"
    ),
}


class AsyncioMisuse(Exception):
    """Test code used the event loop in a way that cannot work; the message says how to fix it."""


class TestTimeout(Exception):
    """A test ran past its ``--asyncio-timeout``; the message holds every task's await chain."""

    #: The message of a timeout raised into a blocked thread (only a class can be raised there).
    report = ""

    def __str__(self) -> str:
        return super().__str__() or self.report


class TestTasks:
    """The tasks aiotempo runs for one test, so that it can be interrupted."""

    def __init__(self) -> None:
        #: Kept only while the test runs: asyncio.all_tasks() walks every task still alive.
        self.tasks: list[asyncio.Task[Any]] = []
        #: What the test's interrupted await raises instead of ``CancelledError``.
        self.interrupted: BaseException | None = None
        self._delivered = False

    def interrupt(self, error: BaseException) -> None:
        """Cancel the test's tasks; the await that was interrupted raises ``error``.

        If the test is not awaiting anything of its own, its next run raises it. Once raised,
        later runs (its teardown) proceed as usual.
        """
        if self.interrupted is None:
            self.interrupted = error
        for task in self.tasks:
            task.cancel()

    def deliver(self) -> BaseException | None:
        """The interruption, the first time it is asked for."""
        if self.interrupted is None or self._delivered:
            return None
        self._delivered = True
        return self.interrupted

    def time_out(self, report: str) -> None:
        self.interrupt(TestTimeout(report))


#: The test whose code is running during a concurrent batch, in its greenlet and in every
#: task it spawns (so output, logs and findings reach the right test).
current_item: contextvars.ContextVar[pytest.Item | None] = contextvars.ContextVar(
    "aiotempo_current_item", default=None
)

#: A test's ``TestTasks``, from the start of its setup to the end of its teardown.
TEST_TASKS = pytest.StashKey[TestTasks]()

#: The tasks of the test whose code is running (set per test by the plugin).
current_test: contextvars.ContextVar[TestTasks | None] = contextvars.ContextVar(
    "aiotempo_current_test", default=None
)


def run(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], label: str) -> T:
    """Run ``coro`` as a task on ``loop`` (in a copy of the current context) and return its result.

    ``label`` names the test or fixture in error messages.
    """
    __tracebackhide__ = True
    if loop.is_closed():
        coro.close()
        raise AsyncioMisuse(
            f"{label}: its event loop was closed by earlier code; tests and fixtures must not "
            "close the loop aiotempo runs them on (use asyncio.new_event_loop() for a private one)"
        )
    concurrent = isinstance(greenlet.getcurrent(), _TestGreenlet)
    if concurrent and loop is not asyncio.get_running_loop():
        coro.close()
        raise AsyncioMisuse(
            f"{label}: needs a loop other than the one the concurrent tests run on; run "
            "this test sequentially with @pytest.mark.aiotempo(concurrent=False)"
        )
    if not concurrent and loop.is_running():
        coro.close()
        raise AsyncioMisuse(
            f"{label}: was requested while its event loop is running (request.getfixturevalue() "
            "inside an async test or fixture); request it as an argument instead"
        )
    test = current_test.get()
    interruption = test.deliver() if test is not None else None
    if interruption is not None:
        coro.close()
        raise interruption
    task = loop.create_task(_contained(coro))  # the task copies this test's context
    if test is not None:
        test.tasks.append(task)
    try:
        return _await_in_task(task) if concurrent else loop.run_until_complete(task)
    except _Escaped as escaped:
        raise escaped.error.with_traceback(escaped.error.__traceback__) from None
    except asyncio.CancelledError as cancelled:
        interruption = test.deliver() if test is not None else None
        if interruption is None:
            raise
        # Keep the traceback of the cancelled await: it points at where the test was.
        raise interruption.with_traceback(cancelled.__traceback__) from None
    except RuntimeError as error:
        if not task.done():
            raise AsyncioMisuse(
                f"{label}: stopped its event loop (loop.stop()) before finishing; "
                "aiotempo runs it on that loop, so let it run to the end"
            ) from None
        fix = _NESTED_LOOP_MESSAGES.get(str(error))
        if fix is None:
            raise
        # Keep the traceback of the misuse, so the report points at the offending line.
        raise AsyncioMisuse(f"{label}: {fix}").with_traceback(error.__traceback__) from None


@contextlib.contextmanager
def explained_nested_loop(label: str) -> Iterator[None]:
    """In a concurrent test, explain a synchronous call that tries to drive the running loop."""
    try:
        yield
    except RuntimeError as error:
        if not isinstance(greenlet.getcurrent(), _TestGreenlet):
            raise
        if str(error) not in _NESTED_LOOP_MESSAGES:
            raise
        raise AsyncioMisuse(
            f"{label} drives the event loop itself (run_until_complete, asyncio.run), which "
            "cannot work while concurrent tests run on it; mark the tests that use it "
            "@pytest.mark.aiotempo(concurrent=False)"
        ).with_traceback(error.__traceback__) from None


class _Escaped(Exception):
    """Carries a ``SystemExit`` (or other ``BaseException``) raised by test code out of its
    task: raised in a task, it would stop the loop and every test on it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def _contained(coro: Coroutine[Any, Any, T]) -> T:
    try:
        return await coro
    except (Exception, asyncio.CancelledError, KeyboardInterrupt):
        raise
    except BaseException as error:
        raise _Escaped(error) from None


class _TestGreenlet(greenlet.greenlet):
    """The greenlet one test's protocol runs in during a concurrent run."""


async def spawn(function: Callable[[], T]) -> T:
    """Run ``function`` in a greenlet of its own; await what it hands over, resume it."""
    child = _TestGreenlet(function)
    child.gr_context = contextvars.copy_context()
    handed: Any = child.switch()
    while not child.dead:
        try:
            value = await handed
        except BaseException as error:
            handed = child.throw(type(error), error, error.__traceback__)
        else:
            handed = child.switch(value)
    return handed  # type: ignore[no-any-return]


def wait_for(future: Awaitable[Any]) -> None:
    """From a test's greenlet: wait until ``future`` is done (other tests run meanwhile)."""
    _await_in_task(future)


def _await_in_task(awaitable: Awaitable[T]) -> T:
    """From a test's greenlet: let the spawning task await ``awaitable``, return its result."""
    parent = greenlet.getcurrent().parent
    assert parent is not None, "only a test's greenlet hands work to its task"
    result: T = parent.switch(awaitable)
    return result
