"""``aiotempo.TestCase``: ``unittest.IsolatedAsyncioTestCase`` with a virtual clock, leak checks
and a timeout, for suites run by ``python -m unittest`` as well as by pytest.

It keeps the stdlib API (``asyncSetUp``, ``asyncTearDown``, ``addAsyncCleanup``,
``enterAsyncContext``, ``loop_factory``) and changes how each test's loop runs:

- ``clock = "virtual"`` (the default) gives the loop aiotempo's virtual clock (``clock.py``):
  sleeps and timeouts take no real time, and a test that waits for what can never happen fails
  at once with ``Deadlock``. ``clock = "real"`` keeps real time.
- Tasks still pending once ``asyncTearDown`` and the cleanups have run fail the test, each with
  where it was created and what it waits for; they are then cancelled.
- ``timeout = SECONDS`` (real time, as ``--asyncio-timeout``) fails a test that runs longer,
  with every task's await chain. A loop blocked in synchronous code gets the timeout raised in
  its thread after a grace second.

The stdlib's runner differs between 3.10 (one task awaiting every step) and 3.11+
(``asyncio.Runner``), so this class runs its own loop on every version, through the hooks
``unittest.TestCase`` calls (``_callSetUp`` and its siblings). Nothing here imports pytest.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import math
import sys
import threading
import unittest
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ClassVar, Literal, TypeVar

from . import clock as _clock
from . import tasks, threads

__all__ = ["TestCase", "TestTimeout"]

T = TypeVar("T")

#: Real seconds a loop has to act on a timeout before it is raised in the loop's thread.
_GRACE = 1.0


class TestTimeout(AssertionError):
    """A test ran past its ``timeout``; the message holds every task's await chain."""

    #: The message of a timeout raised into a blocked thread (only a class can be raised there).
    report = ""

    def __str__(self) -> str:
        return super().__str__() or self.report


class TestCase(unittest.IsolatedAsyncioTestCase):
    """``IsolatedAsyncioTestCase`` on a virtual clock, with leak checks and a timeout."""

    #: ``"virtual"``: sleeps and timeouts take no real time; ``"real"``: they do.
    clock: ClassVar[Literal["virtual", "real"]] = "virtual"
    #: Real seconds a test (setup to cleanups) may take; ``None``: no limit.
    timeout: ClassVar[float | None] = None
    #: Fail a test that leaves tasks pending after its teardown and cleanups.
    check_leaks: ClassVar[bool] = True
    #: Makes the test's loop (as in Python 3.13); the virtual clock needs a stdlib selector loop.
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None

    def __init__(self, methodName: str = "runTest") -> None:
        super().__init__(methodName)
        self._aiotempo_context = contextvars.copy_context()
        self._aiotempo_loop: asyncio.AbstractEventLoop | None = None
        self._aiotempo_clock: _clock.VirtualClock | None = None
        self._aiotempo_deadline: _Deadline | None = None
        self._aiotempo_step: asyncio.Task[Any] | None = None
        self._aiotempo_timed_out: TestTimeout | None = None
        self._aiotempo_failed = False

    @property
    def virtual_clock(self) -> _clock.VirtualClock:
        """The test's virtual clock: ``time``, ``await advance(seconds)``, ``run_until_idle()``."""
        if self._aiotempo_clock is None:
            raise RuntimeError(f"{type(self).__name__} runs on the real clock (clock = 'real')")
        return self._aiotempo_clock

    # -- what unittest.TestCase calls -------------------------------------------------------------

    def run(self, result: unittest.TestResult | None = None) -> unittest.TestResult | None:
        try:
            return unittest.TestCase.run(self, result)
        finally:
            self._aiotempo_close()

    def debug(self) -> None:
        try:
            unittest.TestCase.debug(self)
        finally:
            self._aiotempo_close()

    def _callSetUp(self) -> None:
        __tracebackhide__ = True
        self._aiotempo_open()
        if self.check_leaks:
            self.addCleanup(self._aiotempo_check_leaks)  # the first cleanup runs last
        self._callMaybeAsync(self.setUp)
        self._callAsync(self.asyncSetUp)

    def _callTestMethod(self, method: Callable[[], Any]) -> None:
        __tracebackhide__ = True
        if self._aiotempo_clock is not None:
            self._aiotempo_clock.ignore_current_threads()  # threads setUp started are not its own
        super()._callTestMethod(method)  # type: ignore[misc]

    def _callTearDown(self) -> None:
        __tracebackhide__ = True
        self._callAsync(self.asyncTearDown)
        self._callMaybeAsync(self.tearDown)

    def _callAsync(self, func: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any) -> T:
        __tracebackhide__ = True
        result: T = self._callMaybeAsync(func, *args, **kwargs)
        return result

    def _callMaybeAsync(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Every step goes through here: setUp, the test, tearDown, each cleanup."""
        __tracebackhide__ = True
        if func == self._aiotempo_check_leaks:  # it runs the loop: not from inside the context
            return func()
        try:
            result = self._aiotempo_context.run(func, *args, **kwargs)
            return self._aiotempo_run(result, func) if inspect.isawaitable(result) else result
        except BaseException:
            self._aiotempo_failed = True
            raise

    async def enterAsyncContext(self, cm: Any) -> Any:
        """Enter an async context manager and exit it as a cleanup (on every version)."""
        cls = type(cm)
        try:
            enter, exit_ = cls.__aenter__, cls.__aexit__
        except AttributeError:
            raise TypeError(
                f"'{cls.__module__}.{cls.__qualname__}' object does not support the "
                "asynchronous context manager protocol"
            ) from None
        result = await enter(cm)
        self.addAsyncCleanup(exit_, cm, None, None, None)
        return result

    # -- the loop ---------------------------------------------------------------------------------

    def _aiotempo_open(self) -> None:
        factory = type(self).loop_factory
        loop = factory() if factory is not None else asyncio.new_event_loop()
        self._aiotempo_loop = loop
        loop.set_debug(True)  # as IsolatedAsyncioTestCase; it also records where tasks start
        asyncio.set_event_loop(loop)
        if self.timeout:  # started before the clock, which must not count its thread
            self._aiotempo_deadline = _Deadline(self, self.timeout, loop)
        if self.clock == "virtual":
            try:
                self._aiotempo_clock = _clock.install(loop)
            except _clock.VirtualClockError:
                raise _clock.VirtualClockError(
                    f"the virtual clock needs asyncio's default selector loop, not "
                    f"{type(loop).__name__}; set clock = 'real' on {type(self).__name__}"
                ) from None
            # Debug mode's slow-callback log would time clock jumps (advance()), not work.
            loop.slow_callback_duration = math.inf
        elif self.clock != "real":
            raise ValueError(f"clock must be 'virtual' or 'real', not {self.clock!r}")

    def _aiotempo_run(self, awaitable: Awaitable[T], func: Callable[..., Any]) -> T:
        __tracebackhide__ = True
        loop = self._aiotempo_loop
        assert loop is not None, "the test's loop starts in _callSetUp"
        if self._aiotempo_timed_out is not None:  # it timed out while no step was running
            _close(awaitable)
            raise self._take_timeout()
        name = getattr(func, "__qualname__", None)
        task = _create_task(loop, awaitable, self._aiotempo_context, name)
        self._aiotempo_step = task
        try:
            result = loop.run_until_complete(task)
        except asyncio.CancelledError as cancelled:
            if self._aiotempo_timed_out is None:
                raise
            # Keep the traceback of the cancelled await: it points at where the test was.
            raise self._take_timeout().with_traceback(cancelled.__traceback__) from None
        finally:
            self._aiotempo_step = None
        if self._aiotempo_timed_out is not None:  # the step swallowed the cancellation
            raise self._take_timeout()
        return result

    def _take_timeout(self) -> TestTimeout:
        error, self._aiotempo_timed_out = self._aiotempo_timed_out, None
        assert error is not None
        return error

    def _aiotempo_time_out(self, seconds: float) -> None:
        """In the loop, at the deadline: record every task's await chain, stop the step."""
        loop = self._aiotempo_loop
        report = tasks.report(loop) if loop is not None else ""
        self._aiotempo_timed_out = TestTimeout(
            f"{self.id()}: timed out after {seconds:g} s (TestCase.timeout)\n{report}"
        )
        if self._aiotempo_step is not None:
            self._aiotempo_step.cancel()

    def _aiotempo_check_leaks(self) -> None:
        __tracebackhide__ = True
        loop = self._aiotempo_loop
        leftovers = asyncio.all_tasks(loop) if loop is not None else set()
        if loop is None or not leftovers:
            return
        report = tasks.format_report(tasks.snapshot(loop))
        tasks.cancel_and_wait(loop, leftovers, "test shutdown")
        if self._aiotempo_failed:
            return  # it failed already: the leftovers are likely a consequence
        raise self.failureException(
            f"{self.id()}: {len(leftovers)} task(s) still pending after asyncTearDown and the "
            "cleanups; await or cancel them (or close what started them) in asyncTearDown or "
            f"a cleanup (addAsyncCleanup):\n{report}"
        )

    def _aiotempo_close(self) -> None:
        deadline, self._aiotempo_deadline = self._aiotempo_deadline, None
        if deadline is not None:
            deadline.stop()
        loop, self._aiotempo_loop = self._aiotempo_loop, None
        self._aiotempo_clock = None
        self._aiotempo_timed_out = None
        self._aiotempo_failed = False
        if loop is None or loop.is_closed():
            return
        try:
            tasks.cancel_and_wait(loop, asyncio.all_tasks(loop), "test shutdown")
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


# -- steps as tasks -------------------------------------------------------------------------------


def _create_task(
    loop: asyncio.AbstractEventLoop,
    awaitable: Awaitable[T],
    context: contextvars.Context,
    name: str | None,
) -> asyncio.Task[T]:
    """A task running one step in the test's context, so context variables set in
    ``asyncSetUp`` are seen by the test and its teardown."""
    coro = awaitable if inspect.iscoroutine(awaitable) else _await(awaitable)
    debug = loop.get_debug()
    loop.set_debug(False)  # reports would say every step was created here
    try:
        if sys.version_info >= (3, 11):
            return loop.create_task(coro, name=name, context=context)
        else:  # a task runs in a copy of the context: carry what the step set back
            return context.run(loop.create_task, _carrying(coro, context), name=name)
    finally:
        loop.set_debug(debug)


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


async def _carrying(coro: Coroutine[Any, Any, T], context: contextvars.Context) -> T:
    try:
        return await coro
    finally:
        for var, value in contextvars.copy_context().items():
            if var not in context or context[var] is not value:
                context.run(var.set, value)


def _close(awaitable: object) -> None:
    if inspect.iscoroutine(awaitable):
        awaitable.close()


# -- the timeout ----------------------------------------------------------------------------------


class _Deadline:
    """A thread that times a test out: in its loop if the loop answers, else in its thread."""

    def __init__(self, case: TestCase, seconds: float, loop: asyncio.AbstractEventLoop) -> None:
        self._case = case
        self._seconds = seconds
        self._loop = loop
        self._thread_id = threading.get_ident()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._thread = threads.start(self._watch, f"timeout {case.id()}")

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _watch(self) -> None:
        # After a timeout the rest of the test (its teardown) gets as long again.
        while not self._stopped.wait(self._seconds):
            acted = threading.Event()
            try:
                self._loop.call_soon_threadsafe(self._in_loop, acted)
            except RuntimeError:  # the loop closed meanwhile
                return
            if acted.wait(_GRACE):
                continue
            with self._lock:
                if acted.is_set() or self._stopped.is_set():
                    continue
                acted.set()  # the loop must not act on it too, later
                self._raise_in_thread()

    def _in_loop(self, acted: threading.Event) -> None:
        with self._lock:
            if acted.is_set() or self._stopped.is_set():
                return
            acted.set()
        self._case._aiotempo_time_out(self._seconds)

    def _raise_in_thread(self) -> None:
        """The loop's thread is blocked (not awaiting): raise at its next Python instruction."""
        report = (
            f"{self._case.id()}: timed out after {self._seconds:g} s (TestCase.timeout), while "
            f"its thread was blocked (not awaiting) here:\n{threads.stack(self._thread_id)}"
        )
        threads.raise_in(self._thread_id, type("TestTimeout", (TestTimeout,), {"report": report}))
