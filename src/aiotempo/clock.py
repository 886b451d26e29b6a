"""The virtual clock: sleeps and timeouts take no real time, honestly.

A loop with a virtual clock reads the time from an integer nanosecond counter starting at 0.
Whenever the loop would wait (nothing ready to run) and nothing outside the loop can wake it,
the clock jumps straight to the next timer. Timers keep their real-time order, so
``asyncio.sleep``, ``wait_for``, ``asyncio.timeout`` and ``call_later`` behave as in real time,
only instantly.

"Nothing outside the loop" is what makes it honest (looptime and trio's MockClock jump while a
thread is still working). While an executor job, a subprocess, a thread the test started, or
a socket request still awaiting its reply from a peer outside the loop is pending, the loop
waits in real time and the clock advances by the real time that passed. A loop that waits
with no timer and nothing pending outside it can never wake up: that is reported at once
(``Deadlock``) instead of hanging.

The clock is installed on a stdlib selector loop instance: it replaces the loop's ``time``
method and wraps its selector, and it reads ``BaseEventLoop._ready`` and ``_scheduled``.
uvloop keeps its timers in C against its own clock, so it cannot have a virtual one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import contextlib
import contextvars
import math
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Callable
from time import monotonic as _real_monotonic
from time import perf_counter as _real_perf_counter
from time import time as _real_time
from typing import Any

from . import tasks, threads

#: Real seconds a loop waits, when something outside it is pending, before it re-checks.
_RECHECK = 0.05
#: Real seconds a loop polls for late I/O before it declares a deadlock.
_DEADLOCK_GRACE = 0.01
#: Real seconds a reply from outside the loop holds the clock after its last data arrived,
#: for the rest of it (a gap longer than this mid-reply lets the clock jump).
_REPLY_GRACE = 0.25

_CLOCK_ATTR = "_aiotempo_clock"


class Deadlock(Exception):
    """The loop waits for something that can never happen."""


class VirtualClockError(Exception):
    """The virtual clock cannot be used on this loop."""


class VirtualClock:
    """The virtual time of one loop, and what it knows about work pending outside the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._ns = 0
        self._executor_jobs = 0
        self._subprocesses: weakref.WeakSet[asyncio.SubprocessTransport] = weakref.WeakSet()
        self._awaiting_reply: dict[int, asyncio.Transport] = {}
        #: Sockets whose reply started to arrive, until when (real time) they hold the clock.
        self._replying: dict[int, float] = {}
        self._baseline_threads = set(threading.enumerate())

    @property
    def time(self) -> float:
        """The loop's virtual time, in seconds since the clock started."""
        return self._ns / 1e9

    @property
    def ns(self) -> int:
        return self._ns

    def reset(self) -> None:
        """Start again at 0, as for a new loop."""
        self._ns = 0
        self._awaiting_reply.clear()
        self._replying.clear()
        self.ignore_current_threads()

    def ignore_current_threads(self) -> None:
        """Count only threads started from now on as the test's (not its fixtures')."""
        self._baseline_threads = set(threading.enumerate())

    def jump(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward (got {seconds} s)")
        self._ns += math.ceil(seconds * 1e9)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and let everything that became due run."""
        self.jump(seconds)
        await self.run_until_idle()

    async def run_until_idle(self) -> None:
        """Return once every other task is waiting (nothing else is ready to run)."""
        ready = self._loop._ready  # type: ignore[attr-defined]
        while True:
            await asyncio.sleep(0)
            if not ready:
                return

    def pending_outside(self) -> str | None:
        """What outside the loop can still wake it up, or ``None``."""
        if self._executor_jobs:
            return f"{self._executor_jobs} executor job(s)"
        if any(t.get_returncode() is None for t in list(self._subprocesses)):
            return "a subprocess"
        if self._awaiting_reply and self._replies_from_outside():
            return "a socket request awaiting its reply"
        if self._replying:
            return "a reply still arriving from outside the loop"
        pool_threads = set(concurrent.futures.thread._threads_queues)
        for thread in threading.enumerate():
            if (
                thread not in self._baseline_threads
                and thread not in pool_threads
                and not threads.is_own(thread)
            ):
                return f"thread {thread.name!r}"
        return None

    def _replies_from_outside(self) -> bool:
        local = self._local_addresses()
        for fd, transport in list(self._awaiting_reply.items()):
            if transport.is_closing():
                del self._awaiting_reply[fd]
            elif transport.get_extra_info("peername") not in local:
                return True
        return False

    def _local_addresses(self) -> set[Any]:
        """Addresses of the sockets served by this loop: a request to one is answered here.

        A socket bound to all interfaces answers on every local address of its port.
        """
        addresses: set[Any] = set()
        for key in self._loop._selector.get_map().values():  # type: ignore[attr-defined]
            address = _sockname(key.fileobj)
            addresses.add(address)
            if isinstance(address, tuple) and address[0] in ("0.0.0.0", "::"):
                for host in ("127.0.0.1", "::1", "localhost"):
                    addresses.add((host, *address[1:]))
        return addresses

    # -- hooks the installed loop calls ---------------------------------------------------

    def _track_executor_job(self, future: asyncio.Future[Any]) -> None:
        self._executor_jobs += 1
        future.add_done_callback(self._executor_job_done)

    def _executor_job_done(self, future: asyncio.Future[Any]) -> None:
        self._executor_jobs -= 1

    def _track_transport(self, transport: asyncio.Transport) -> None:
        fd = transport.get_extra_info("socket").fileno()
        original_write = transport.write

        def write(data: Any) -> None:
            self._awaiting_reply[fd] = transport
            original_write(data)

        transport.write = write  # type: ignore[method-assign]

    def _got_events(self, events: list[tuple[selectors.SelectorKey, int]]) -> None:
        """A reply has started to arrive: it holds the clock a little longer, for its rest."""
        if self._awaiting_reply:
            now = _real_monotonic()
            local: set[Any] | None = None
            for key, mask in events:
                transport = (
                    self._awaiting_reply.get(key.fd) if mask & selectors.EVENT_READ else None
                )
                if transport is None:
                    continue
                del self._awaiting_reply[key.fd]
                local = self._local_addresses() if local is None else local
                if transport.get_extra_info("peername") not in local:  # served by this loop
                    self._replying[key.fd] = now + _REPLY_GRACE
        if self._replying:
            now = _real_monotonic()
            for fd in [fd for fd, until in self._replying.items() if until <= now]:
                del self._replying[fd]

    def _wait(self, real: selectors.BaseSelector, timeout: float | None) -> Any:
        """The selector's ``select``: jump, wait in real time, or report a deadlock."""
        if timeout is not None and timeout <= 0:
            events = real.select(0)
        else:
            events = real.select(0) or self._wait_idle(real, timeout)
        self._got_events(events)
        return events

    def _wait_idle(self, real: selectors.BaseSelector, timeout: float | None) -> Any:
        pending = self.pending_outside()
        if pending is None and timeout is not None:
            self.jump(timeout)
            return []
        if pending is None:
            events = real.select(_DEADLOCK_GRACE)
            if events or self.pending_outside() is not None:
                return events
            raise Deadlock(
                "the test waits for something that can never happen: no timer is scheduled and "
                "nothing outside the loop (executor job, subprocess, thread, socket reply) can "
                "wake it up.\n" + tasks.report(self._loop)
            )
        wait = _RECHECK if timeout is None else min(timeout, _RECHECK)
        started = _real_monotonic()
        events = real.select(wait)
        self._ns += math.ceil((_real_monotonic() - started) * 1e9)
        return events


class _VirtualSelector:
    """Wraps a loop's selector so that waiting goes through the virtual clock."""

    def __init__(self, clock: VirtualClock, real: selectors.BaseSelector) -> None:
        self._clock = clock
        self.real = real

    def select(self, timeout: float | None = None) -> Any:
        return self._clock._wait(self.real, timeout)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def install(loop: asyncio.AbstractEventLoop) -> VirtualClock:
    """Give ``loop`` a virtual clock (see the module docstring)."""
    if not isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop):
        raise VirtualClockError(
            f"the virtual clock needs asyncio's default selector loop, not {type(loop).__name__} "
            "(uvloop's timers ignore loop.time()); use the real clock for this test: "
            "--asyncio-clock=real or @pytest.mark.aiotempo(clock='real')"
        )
    clock = VirtualClock(loop)
    setattr(loop, _CLOCK_ATTR, clock)
    loop.time = lambda: clock._ns / 1e9  # type: ignore[method-assign]
    loop._selector = _VirtualSelector(clock, loop._selector)  # type: ignore[attr-defined]
    run_in_executor = loop.run_in_executor
    make_socket_transport = loop._make_socket_transport  # type: ignore[attr-defined]
    make_subprocess_transport = loop._make_subprocess_transport  # type: ignore[attr-defined]

    def tracked_run_in_executor(executor: Any, func: Any, *args: Any) -> asyncio.Future[Any]:
        future = run_in_executor(executor, func, *args)
        clock._track_executor_job(future)
        return future

    def tracked_socket_transport(*args: Any, **kwargs: Any) -> Any:
        transport = make_socket_transport(*args, **kwargs)
        clock._track_transport(transport)
        return transport

    async def tracked_subprocess_transport(*args: Any, **kwargs: Any) -> Any:
        transport = await make_subprocess_transport(*args, **kwargs)
        clock._subprocesses.add(transport)
        return transport

    loop.run_in_executor = tracked_run_in_executor  # type: ignore[method-assign,assignment]
    loop._make_socket_transport = tracked_socket_transport  # type: ignore[attr-defined]
    loop._make_subprocess_transport = tracked_subprocess_transport  # type: ignore[attr-defined]
    return clock


def of(loop: asyncio.AbstractEventLoop) -> VirtualClock | None:
    """The loop's virtual clock, if it has one."""
    clock: VirtualClock | None = getattr(loop, _CLOCK_ATTR, None)
    return clock


def _sockname(fileobj: Any) -> Any:
    """The local address of a registered socket (asyncio registers most by file descriptor)."""
    if hasattr(fileobj, "getsockname"):
        with contextlib.suppress(OSError):
            return fileobj.getsockname()
        return None
    try:
        sock = socket.socket(fileno=fileobj)
    except OSError:  # not a socket (a pipe)
        return None
    try:
        return sock.getsockname()
    except OSError:
        return None
    finally:
        sock.detach()  # the descriptor stays open: it is not ours


def patch_time(clock: VirtualClock) -> Callable[[], None]:
    """Make ``time.monotonic()``, ``perf_counter()`` and ``time()`` follow ``clock`` for the
    calling test (its context, and the tasks it spawns); other code keeps the real time.

    ``time.time()`` is the real time when the patch starts plus the virtual time elapsed since.
    pytest's own timing (``--durations``, junitxml) binds these functions at import, so it
    stays real. The functions are replaced while any test uses the patch. Returns the undo.
    """
    global _patch_users
    token = _followed.set(
        (clock, clock.ns, (_real_monotonic(), _real_perf_counter(), _real_time()))
    )
    if _patch_users == 0:
        time.monotonic, time.perf_counter, time.time = (
            _follower(index, real) for index, real in enumerate(_REAL_TIME)
        )
    _patch_users += 1

    def undo() -> None:
        global _patch_users
        _followed.reset(token)
        _patch_users -= 1
        if _patch_users == 0:
            time.monotonic, time.perf_counter, time.time = _REAL_TIME

    return undo


_REAL_TIME = (_real_monotonic, _real_perf_counter, _real_time)
#: The clock the running test's time follows, with its start (ns) and the real bases.
_followed: contextvars.ContextVar[tuple[VirtualClock, int, tuple[float, float, float]] | None] = (
    contextvars.ContextVar("aiotempo_followed_clock", default=None)
)
_patch_users = 0


def _follower(index: int, real: Callable[[], float]) -> Callable[[], float]:
    def now() -> float:
        followed = _followed.get()
        if followed is None:
            return real()
        clock, start_ns, bases = followed
        return bases[index] + (clock.ns - start_ns) / 1e9

    return now
