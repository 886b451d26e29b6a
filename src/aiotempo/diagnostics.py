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
import os
import threading
from collections.abc import Sequence
from typing import Any

LEVELS = ("off", "warn", "error")

#: The timer of ``asyncio.sleep``: its task is reported instead.
_SLEEP_TIMER = asyncio.futures._set_result_unless_cancelled  # type: ignore[attr-defined]

#: Threads libraries start for a moment on their own (not the test's doing).
_BENIGN_THREADS = ("waitpid-", "_run_safe_shutdown_loop")


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
