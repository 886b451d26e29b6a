"""Per-test timeouts: a hung test fails alone, with every task's await chain, and the run goes on.

``--asyncio-timeout=SECONDS`` (ini ``asyncio_timeout``, marker ``aiotempo(timeout=...)``)
gives each test a deadline in real time from the start of its setup (not counting the time it
waited for a concurrency slot). One watchdog thread serves the session. At a test's deadline
it asks the test's loop to record the report of every task and cancel the tasks running for
that test; the test then fails with that report and its teardown runs as usual. If the loop
does not answer because its thread is blocked, the watchdog records the blocking stack and
raises the timeout inside that thread. pytest-timeout's limits on tests that run concurrently
are watched here too, since its own alarm is one per process.

Deadlines pause while a debugger is active (``--pdb``, ``breakpoint()``, an IDE's tracer or
``sys.monitoring`` debugger), but not for coverage's tracer.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import sys
import threading
import traceback
from dataclasses import dataclass, field
from time import monotonic
from types import FrameType
from typing import Any

from . import runner, tasks

#: Real seconds the watchdog waits for a loop to act on a timeout before it intervenes.
_GRACE = 1.0


@dataclass(order=True)
class _Deadline:
    at: float
    order: int
    seconds: float = field(compare=False)
    label: str = field(compare=False)
    #: What set the limit (``--asyncio-timeout``, ``pytest-timeout``), named in the failure.
    source: str = field(compare=False)
    loop: asyncio.AbstractEventLoop | None = field(compare=False)
    thread_id: int = field(compare=False)
    test: runner.TestTasks = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Watchdog:
    """One thread watching every test deadline of the session."""

    def __init__(self) -> None:
        self._deadlines: list[_Deadline] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: When the watching thread wakes next on its own. Waking it costs the test's thread
        #: the GIL (most of a millisecond), so a deadline due later does not wake it.
        self._wakes_at = 0.0

    def start(
        self,
        seconds: float,
        label: str,
        source: str,
        loop: asyncio.AbstractEventLoop | None,
        test: runner.TestTasks,
    ) -> _Deadline:
        """Watch a test that must finish within ``seconds`` from now."""
        deadline = _Deadline(
            monotonic() + seconds,
            next(self._order),
            seconds,
            label,
            source,
            loop,
            threading.get_ident(),
            test,
        )
        with self._wake:
            heapq.heappush(self._deadlines, deadline)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._watch, name="aiotempo-watchdog", daemon=True
                )
                self._thread.start()
            if deadline.at < self._wakes_at:
                self._wake.notify()
        return deadline

    def stop(self, deadline: _Deadline) -> None:
        deadline.cancelled = True

    def close(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()

    def _watch(self) -> None:
        with self._wake:
            while not self._stopping:
                while self._deadlines and self._deadlines[0].cancelled:
                    heapq.heappop(self._deadlines)
                if not self._deadlines:
                    self._wakes_at = float("inf")
                    self._wake.wait()
                    continue
                first = self._deadlines[0]
                delay = first.at - monotonic()
                if delay > 0:
                    self._wakes_at = monotonic() + min(delay, 0.5)
                    self._wake.wait(min(delay, 0.5))
                    continue
                if _debugger_active(first.thread_id):
                    first.at = monotonic() + 0.5  # paused while a debugger is active
                    heapq.heapify(self._deadlines)
                    continue
                heapq.heappop(self._deadlines)
                self._expire(first)

    def _expire(self, deadline: _Deadline) -> None:
        message = f"{deadline.label}: timed out after {deadline.seconds:g} s"
        acted = threading.Event()
        loop = deadline.loop

        def in_loop() -> None:
            report = tasks.report(loop) if loop is not None else ""
            deadline.test.time_out(f"{message} ({deadline.source})\n{report}")
            acted.set()

        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(in_loop)
            except RuntimeError:  # closed meanwhile
                return
            self._wake.release()
            try:
                acted.wait(_GRACE)
            finally:
                self._wake.acquire()
        if acted.is_set() or deadline.cancelled:
            return
        report = f"{message}, while its thread was blocked (not awaiting) here:\n"
        report += _thread_stack(deadline.thread_id)
        deadline.test.time_out(report)
        blocked = type("TestTimeout", (runner.TestTimeout,), {"report": report})
        _raise_in_thread(deadline.thread_id, blocked)


#: Innermost frames shown of a blocked thread's stack.
_STACK_DEPTH = 8


def _thread_stack(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "(unknown)"
    return "".join(traceback.format_stack(frame)[-_STACK_DEPTH:])


def _raise_in_thread(thread_id: int, error: type[BaseException]) -> None:
    """Raise ``error`` in another thread at its next Python instruction (a last resort)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))


def _debugger_active(thread_id: int) -> bool:
    """Whether a debugger traces the thread (coverage's tracer does not count)."""
    monitoring: Any = getattr(sys, "monitoring", None)
    if monitoring is not None and monitoring.get_tool(monitoring.DEBUGGER_ID) is not None:
        return True
    frame: FrameType | None = sys._current_frames().get(thread_id)
    while frame is not None:
        tracer = frame.f_trace
        if tracer is not None and "coverage" not in type(tracer).__module__ + getattr(
            tracer, "__module__", ""
        ):
            return True
        frame = frame.f_back
    return False
