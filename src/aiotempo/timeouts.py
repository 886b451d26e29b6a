"""Per-test timeouts: a hung test fails alone, with every task's await chain, and the run goes on.

``--asyncio-timeout=SECONDS`` (ini ``asyncio_timeout``, marker ``aiotempo(timeout=...)``)
gives each test a deadline in real time from the start of its setup (not counting the time it
waited for a concurrency slot). One watchdog thread serves the session. At a test's deadline
it asks the test's loop to record the report of every task and cancel the tasks running for
that test; the test then fails with that report and its teardown runs as usual. If the loop
does not answer because its thread is blocked, the watchdog records the blocking stack and
raises the timeout inside that thread. If the thread is stuck in one call into C code, which
that exception cannot interrupt, the run cannot go on: as a last resort the watchdog reports
the test as failed, has pytest write its reports (terminal summary, junitxml) and exits the
process. pytest-timeout's limits on tests that run concurrently are watched here too, since
its own alarm is one per process.

Deadlines pause while a debugger is active (``--pdb``, ``breakpoint()``, an IDE's tracer or
``sys.monitoring`` debugger), but not for coverage's tracer.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import os
import sys
import threading
from dataclasses import dataclass, field
from time import monotonic, sleep
from types import FrameType
from typing import Any

import pytest

from . import concurrency, diagnostics, runner, tasks, threads, workers

#: Real seconds the watchdog waits for a loop to act on a timeout before it intervenes.
_GRACE = 1.0
#: Real seconds a thread may stay in the call it was blocked in once the timeout was raised
#: in it, before the process exits: an exception raised into a thread waits for the thread's
#: next Python instruction, which a call into C code may never return to.
_EXIT_GRACE = 2.0


@dataclass(order=True)
class _Deadline:
    at: float
    order: int
    seconds: float = field(compare=False)
    item: pytest.Item = field(compare=False)
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
        item: pytest.Item,
        source: str,
        loop: asyncio.AbstractEventLoop | None,
        test: runner.TestTasks,
    ) -> _Deadline:
        """Watch a test that must finish within ``seconds`` from now."""
        deadline = _Deadline(
            monotonic() + seconds,
            next(self._order),
            seconds,
            item,
            source,
            loop,
            threading.get_ident(),
            test,
        )
        with self._wake:
            heapq.heappush(self._deadlines, deadline)
            if self._thread is None:
                self._thread = threads.start(self._watch, "watchdog")
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
        message = f"{deadline.item.nodeid}: timed out after {deadline.seconds:g} s"
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
            self._unlocked(acted.wait, _GRACE)
        if acted.is_set() or deadline.cancelled:
            return
        # Under concurrency the loop's thread may be blocked by another test in flight.
        context = diagnostics.running_context(sys._current_frames().get(deadline.thread_id))
        culprit = context.get(runner.current_item) if context is not None else None
        if culprit is None or culprit is deadline.item:
            culprit = deadline.item
            report = f"{message}, while its thread was blocked (not awaiting) here:\n"
        else:
            report = f"{message}, while {culprit.nodeid} blocked the loop (not awaiting) here:\n"
        report += threads.stack(deadline.thread_id)
        deadline.test.time_out(report)
        blocked = type("TestTimeout", (runner.TestTimeout,), {"report": report})
        stuck_at = _position(deadline.thread_id)
        threads.raise_in(deadline.thread_id, blocked)
        if self._unlocked(_leaves, deadline, stuck_at):
            return
        stuck = (
            f"{culprit.nodeid} is stuck at {_innermost(deadline.thread_id)} in a call that "
            "cannot be interrupted"
        )
        in_flight = dict.fromkeys(
            [deadline.item, *(d.item for d in self._deadlines if not d.cancelled)]
        )
        in_flight.pop(culprit, None)
        _exit_stuck(
            [
                (
                    culprit,
                    _phase(deadline.thread_id),
                    f"{report}\nThat call did not return within {_EXIT_GRACE:g} s of the "
                    "timeout being raised in it (a call into C code, which Python cannot "
                    f"interrupt), so {workers.LAST_RESORT}.",
                ),
                *((item, "call", f"interrupted: the run exited: {stuck}") for item in in_flight),
            ],
            f"aiotempo: {stuck}, past a {deadline.seconds:g} s timeout ({deadline.source}); "
            "the reports are written and the process exits as a last resort",
        )

    def _unlocked(self, wait: Any, *args: Any) -> Any:
        """Call ``wait(*args)`` without holding the lock, so tests can start and stop meanwhile."""
        self._wake.release()
        try:
            return wait(*args)
        finally:
            self._wake.acquire()


def _position(thread_id: int) -> tuple[FrameType, int] | None:
    """Where a thread is: its innermost frame and instruction."""
    frame = sys._current_frames().get(thread_id)
    return (frame, frame.f_lasti) if frame is not None else None


def _leaves(deadline: _Deadline, stuck_at: tuple[FrameType, int] | None) -> bool:
    """Whether the test ends, or its thread moves on from ``stuck_at``, within the grace."""
    end = monotonic() + _EXIT_GRACE
    while monotonic() < end:
        if deadline.cancelled or _position(deadline.thread_id) != stuck_at:
            return True
        sleep(0.05)
    return False


def _phase(thread_id: int) -> str:
    """The phase of pytest's protocol the thread is in: ``setup``, ``call`` or ``teardown``.

    A test of a concurrent batch blocked in one of its tasks is not inside its protocol's
    frames (they wait in its greenlet): ``call`` then.
    """
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == "call_and_report" and "when" in frame.f_locals:
            return str(frame.f_locals["when"])
        frame = frame.f_back
    return "call"


def _innermost(thread_id: int) -> str:
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "an unknown place"
    return f"{os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno} in {frame.f_code.co_name}"


def _exit_stuck(failed: list[tuple[pytest.Item, str, str]], line: str) -> None:
    """The last resort when a test's thread cannot be interrupted: report the tests still
    running as failed (each with its phase and message), have pytest finish the session's
    reports as if the run ended there (the terminal summary, the junitxml file, the last-failed
    cache), say why in one line, and exit.

    pytest-timeout's ``thread`` method exits at once, so the run leaves no report. The stuck
    thread holds no lock pytest's reporting needs; the one part of the session's finish left
    out is the teardown of the remaining fixtures, which would run the code of the stuck thread
    (and its loop) in this one.
    """
    config = failed[0][0].config
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None and capman.is_globally_capturing():
        capman.suspend(in_=True)  # the terminal's descriptors back, and the tests' output
        out, err = capman.read_global_capture()
        failed[0][0].add_report_section(failed[0][1], "stdout", out)
        failed[0][0].add_report_section(failed[0][1], "stderr", err)
    for item, when, message in failed:

        def fail(message: str = message) -> None:
            pytest.fail(message, pytrace=False)

        call = pytest.CallInfo.from_call(fail, when)  # type: ignore[arg-type]
        if concurrency.in_batch(item):  # a batch logs a test's reports when it ends
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
        item.ihook.pytest_runtest_logreport(report=report)
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    worker = workers.interactor(config)
    if worker is not None:
        # The controller runs this worker's other tests on a new one; the stuck test's
        # protocol stays unfinished, so that it hears of it as the worker's crash.
        workers.exit_after(worker, [item for item, _, _ in failed[1:]])
    fixture_teardown = config.pluginmanager.get_plugin("runner")
    finish = config.pluginmanager.subset_hook_caller("pytest_sessionfinish", [fixture_teardown])
    finish(session=failed[0][0].session, exitstatus=pytest.ExitCode.TESTS_FAILED)
    sys.stdout.flush()
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    os._exit(pytest.ExitCode.TESTS_FAILED)


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
