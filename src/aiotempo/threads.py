"""aiotempo's own threads (its watchdogs), and what they do to the thread they watch.

Its threads are named with ``PREFIX``, so that the leak check does not report them and the
virtual clock does not wait for them; neither needs pytest, so ``aiotempo.TestCase`` uses them
under plain unittest too.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable

PREFIX = "aiotempo-"
#: Innermost frames shown of a blocked thread's stack.
STACK_DEPTH = 8


def start(target: Callable[[], object], name: str) -> threading.Thread:
    """Start a daemon thread of aiotempo's own."""
    thread = threading.Thread(target=target, name=PREFIX + name, daemon=True)
    thread.start()
    return thread


def is_own(thread: threading.Thread) -> bool:
    return thread.name.startswith(PREFIX)


def stack(thread_id: int) -> str:
    """The innermost frames of another thread's stack, formatted."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "(unknown)"
    return "".join(traceback.format_stack(frame)[-STACK_DEPTH:])


def raise_in(thread_id: int, error: type[BaseException]) -> None:
    """Raise ``error`` in another thread at its next Python instruction (a last resort: a
    thread blocked in C code notices only when the call returns)."""
    import ctypes  # only ever needed here, and slow to import

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))
