"""What a test leaves behind: tasks, timers, threads, file descriptors, unretrieved errors.

pytest-asyncio cancels whatever a test leaves on its loop, silently. aiotempo looks first:
after the test's own teardown, before its loop is cleaned for the next test, it compares the
loop and the process with what they were when the test started. Each finding names the test
and where the leaked thing comes from. ``--asyncio-leaks`` (ini ``asyncio_leaks``, marker
``aiotempo(leaks=...)``) is ``warn`` by default: findings go to aiotempo's summary and the
test's report, never through Python's warnings; ``error`` fails the test's teardown, ``off``
skips the check. ``aiotempo(allow_leaks=[...])`` silences findings containing a given text.

Checked for tests on their own (function-scoped) loop, run one at a time. The check is cheap
(a young-generation garbage collection, not a full one, so that unretrieved task exceptions of
objects that just died are seen).
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import gc
import linecache
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

LEVELS = ("off", "warn", "error")

#: The timer of ``asyncio.sleep``: its task is reported instead.
_SLEEP_TIMER = asyncio.futures._set_result_unless_cancelled  # type: ignore[attr-defined]

#: Threads libraries start for a moment on their own (not the test's doing).
_BENIGN_THREADS = ("waitpid-", "_run_safe_shutdown_loop", "aiotempo-")


class LeakCheck:
    """What a loop and the process hold when a test starts, to compare at its end."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._threads = set(threading.enumerate())
        self._lowest_free_fd = _lowest_free_fd()
        self._unretrieved: list[str] = []
        # Seen before the loop's exception handler, which stays the test's to set.
        self._call_exception_handler = loop.call_exception_handler
        loop.call_exception_handler = self._exception  # type: ignore[method-assign]

    def _exception(self, context: dict[str, Any]) -> None:
        if "never retrieved" in context.get("message", ""):
            task = context.get("future")
            self._unretrieved.append(
                f"exception never retrieved from {_task_name(task)}: {context.get('exception')!r}"
            )
        else:
            self._call_exception_handler(context)

    def findings(self) -> list[str]:
        """Everything the test left behind, one line each."""
        gc.collect(0)  # objects that just died report their unretrieved exceptions now
        loop = self._loop
        found = [
            f"task {_task_name(task)} still pending{_where(task)}"
            for task in asyncio.all_tasks(loop)
            if not task.done()
        ]
        found += [
            f"timer {handle._callback!r} still scheduled"
            for handle in getattr(loop, "_scheduled", ())
            if not handle.cancelled() and handle._callback is not _SLEEP_TIMER
        ]
        pool = set(concurrent.futures.thread._threads_queues)
        found += [
            f"thread {thread.name!r} still running"
            for thread in threading.enumerate()
            if thread not in self._threads
            and thread not in pool
            and not thread.name.startswith(_BENIGN_THREADS)
            and not _ends_soon(thread)
        ]
        # A descriptor left open takes the lowest free number: the lowest free one moves up.
        for fd in range(self._lowest_free_fd, _lowest_free_fd()):
            target = _target(fd)
            if target is not None and not target.startswith(("anon_inode:", "pipe:")):
                found.append(f"file descriptor {fd} still open ({target})")
        found += self._unretrieved
        del self._loop.call_exception_handler
        return found


#: Real seconds a thread the test asked to stop may take to end (e.g. aiosqlite's worker).
_THREAD_GRACE = 0.1


def _ends_soon(thread: threading.Thread) -> bool:
    thread.join(_THREAD_GRACE)
    return not thread.is_alive()


def allowed(finding: str, allow: Sequence[str]) -> bool:
    return any(text in finding for text in allow)


def _task_name(task: Any) -> str:
    coro = task.get_coro() if hasattr(task, "get_coro") else None
    name = getattr(coro, "__qualname__", None) or repr(coro)
    return f"{task.get_name()!r} ({name})" if task is not None else "a task"


def _where(task: asyncio.Task[Any]) -> str:
    """Where the task's coroutine is suspended, the nearest clue to who created it."""
    frame = getattr(task.get_coro(), "cr_frame", None)
    if frame is None:
        return ""
    return f", suspended at {os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno}"


def _lowest_free_fd() -> int:
    fd = os.open(os.devnull, os.O_RDONLY)
    os.close(fd)
    return fd


def _target(fd: int) -> str | None:
    """What the descriptor points at, if it is open (Linux shows it; elsewhere, its number)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except FileNotFoundError:
        return None
    except OSError:
        return "?" if _is_open(fd) else None


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class Heartbeat:
    """Wraps a loop's selector to tell when the loop last turned (a blocked loop does not)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.beats = 0
        self.waiting = False
        self._selector = loop._selector  # type: ignore[attr-defined]
        loop._selector = self  # type: ignore[attr-defined]

    def select(self, timeout: float | None = None) -> Any:
        self.beats += 1
        self.waiting = True
        try:
            return self._selector.select(timeout)
        finally:
            self.waiting = False
            self.beats += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._selector, name)


class _Watched:
    def __init__(self, heartbeat: Heartbeat, thread_id: int, on_block: Any) -> None:
        self.heartbeat = heartbeat
        self.thread_id = thread_id
        self.on_block = on_block
        self.beats = -1
        self.since = 0.0
        self.cpu_since = 0.0
        self.reported = -1


class BlockingWatchdog:
    """A thread noticing when a watched loop has not turned for longer than a threshold.

    It samples the loop thread's stack while the loop is blocked and tells, from the thread's
    CPU time, a CPU hog from a blocking wait. Real time throughout: it works the same under
    the virtual clock (whose ``loop.time()`` does not move while a callback runs).
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._watched: dict[asyncio.AbstractEventLoop, _Watched] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, loop: asyncio.AbstractEventLoop, on_block: Any) -> None:
        """Watch ``loop`` (run by this thread) until it is closed; ``on_block(report,
        context)`` is called from the watchdog's thread, once per stall. Watching a watched
        loop only changes who hears of its stalls (the next test on a reused loop)."""
        state = self._watched.get(loop)
        if state is not None:
            state.on_block = on_block
            return
        if getattr(loop._selector, "beats", None) is None:  # type: ignore[attr-defined]
            Heartbeat(loop)
        with self._lock:
            selector = loop._selector  # type: ignore[attr-defined]
            self._watched[loop] = _Watched(selector, threading.get_ident(), on_block)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="aiotempo-blocking-watchdog", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        from time import monotonic

        from .timeouts import _debugger_active

        while True:
            time.sleep(self.threshold / 4)
            with self._lock:
                for closed in [loop for loop in self._watched if loop.is_closed()]:
                    del self._watched[closed]
                watched = list(self._watched.items())
                if not watched:  # ends with the last watched loop; watch() starts it again
                    self._thread = None
                    return
            now = monotonic()
            for loop, state in watched:
                beats = state.heartbeat.beats
                cpu = _thread_cpu(state.thread_id)
                if beats != state.beats or state.heartbeat.waiting or not loop.is_running():
                    state.beats, state.since, state.cpu_since = beats, now, cpu
                    continue
                stalled = now - state.since
                if stalled < self.threshold or state.reported == beats:
                    continue
                if _debugger_active(state.thread_id):
                    continue
                state.reported = beats
                busy = (cpu - state.cpu_since) / stalled if stalled else 0.0
                report, context = _blocking_report(state.thread_id, stalled, busy)
                state.on_block(report, context)


def _thread_cpu(thread_id: int) -> float:
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread_id))
    except (AttributeError, OSError):  # not available here: every stall reads as a wait
        return 0.0


_NOT_USER_CODE = (
    "/asyncio/",
    "/aiotempo/",
    "/_pytest/",
    "/pluggy/",
    "selectors.py",
    "threading.py",
)


def _blocking_report(thread_id: int, stalled: float, busy: float) -> tuple[str, Any]:
    """Where the loop's thread is stuck, whether it burns CPU or waits, and the context of
    the callback it is in (the blocking test's, under concurrency)."""
    frame = sys._current_frames().get(thread_id)
    where, context = "", None
    while frame is not None:
        filename = frame.f_code.co_filename
        if not where and not any(part in filename for part in _NOT_USER_CODE):
            line = linecache.getline(filename, frame.f_lineno).strip()
            where = f"{os.path.relpath(filename)}:{frame.f_lineno} in {frame.f_code.co_name}"
            where += f" ({line})" if line else ""
        handle = frame.f_locals.get("self") if frame.f_code.co_name == "_run" else None
        if isinstance(handle, asyncio.Handle):
            context = handle._context  # type: ignore[attr-defined]
            break
        frame = frame.f_back
    # A sleeping thread uses no CPU; a hog gets a share of it even on a busy machine.
    kind = "a CPU hog" if busy > 0.25 else "a blocking wait (the thread was not on the CPU)"
    report = (
        f"the loop was blocked for at least {stalled * 1000:.0f} ms at "
        f"{where or 'an unknown place'}: {kind}; move blocking work off the loop with "
        "asyncio.to_thread()"
    )
    return report, context
