"""What a test leaves behind: tasks, timers, threads, file descriptors, unretrieved errors,
coroutines never awaited, unclosed transports, sockets and sessions.

pytest-asyncio cancels whatever a test leaves on its loop, silently. aiotempo looks first:
after the test's own teardown, before its loop is cleaned for the next test, it compares the
loop and the process with what they were when the test started. Each finding names the test
and where the leaked thing comes from. ``--asyncio-leaks`` (ini ``asyncio_leaks``, marker
``aiotempo(leaks=...)``) is ``warn`` by default: findings go to aiotempo's summary and the
test's report, never through Python's warnings; ``error`` fails the test's teardown, ``off``
skips the check. ``aiotempo(allow_leaks=[...])`` silences findings containing a given text.

Checked for tests on their own (function-scoped) loop, run one at a time. The check is cheap
(a young-generation garbage collection, not a full one, so that unretrieved task exceptions of
objects that just died are seen). What only a full collection frees is swept periodically
(``Sweeper``) and reported by where it was created, as far as that is known.
"""

from __future__ import annotations

import asyncio
import concurrent.futures.thread
import contextlib
import contextvars
import functools
import gc
import linecache
import logging
import os
import sys
import sysconfig
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from types import FrameType
from typing import Any, cast

from . import threads

LEVELS = ("off", "warn", "error")

#: The timer of ``asyncio.sleep``: its task is reported instead.
_SLEEP_TIMER = asyncio.futures._set_result_unless_cancelled  # type: ignore[attr-defined]

#: Threads libraries start for a moment on their own (not the test's doing).
_BENIGN_THREADS = ("waitpid-", "_run_safe_shutdown_loop", threads.PREFIX)


class _Findings(list[str]):
    """What a test's check found, one line each; ``closed`` once the check has read it.

    On a shared loop, also the tasks the test's code created (``_track_tasks``): scanning
    every task of a loop shared by hundreds of tests in flight, at each test's end, would cost
    more than the test.
    """

    closed = False

    def __init__(self, track_tasks: bool) -> None:
        super().__init__()
        #: Weak references: a task dies when it would without the check.
        self.tasks: list[weakref.ref[asyncio.Task[Any]]] | None = [] if track_tasks else None
        #: The timers the test's code scheduled (same reason; a handle is small).
        self.timers: list[Any] | None = [] if track_tasks else None


class LeakCheck:
    """What a loop and the process hold when a test starts, to compare at its end.

    ``alone``: the test has its loop and the process to itself (a function-scoped loop, not in
    a concurrent batch), so whatever is left on them is its own. Otherwise (a loop shared by a
    class, module or session, or the tests in flight of a batch) only what was created in the
    test's context is its own: tasks and timers created by its code and its function-scoped
    fixtures, but not by wider-scoped fixtures (``unattributed``) nor by other tests; threads,
    descriptors and what a young-generation collection frees cannot be told apart there, and
    are not checked.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        alone: bool = True,
        lowest_free_fd: int | None = None,
    ) -> None:
        self._loop = loop
        self._alone = alone
        #: The lowest free descriptor number when the check ended (alone), for the next check
        #: to start from: ``lowest_free_fd``, when the previous test's check ended just before.
        self.lowest_free_fd_after: int | None = None
        #: The loop's pending tasks when the check ended (alone), for its clean-up to cancel.
        self.pending: set[asyncio.Task[Any]] | None = None
        if alone:
            self._threads = set(threading.enumerate())
            self._lowest_free_fd = _lowest_free_fd() if lowest_free_fd is None else lowest_free_fd
        #: What dying objects said while the test ran (coroutines never awaited, unretrieved
        #: task exceptions), and then what the check finds: the test's context refers to it.
        self._found = _Findings(track_tasks=not alone)
        _route_unretrieved(loop)
        if not alone:
            _track_tasks(loop)
            _track_timers(loop)
        _watch_garbage()
        if alone and not _origins_untracked and not sys.get_coroutine_origin_tracking_depth():
            sys.set_coroutine_origin_tracking_depth(1)  # which line created one never awaited
        _garbage_of_test.set(self._found)

    def findings(self) -> list[str]:
        """Everything the test left behind, one line each."""
        if self._alone:
            # Objects that just died report their unretrieved exceptions and unclosed
            # resources now. The young generation holds what was allocated since the last
            # test's check, so what it frees is this test's.
            _collect(0, self._found)
        _garbage_of_test.set(None)
        self._found.closed = True
        loop = self._loop
        refs = self._found.tasks
        tasks: Iterable[asyncio.Task[Any] | None]
        if refs is None:
            tasks = self.pending = asyncio.all_tasks(loop)
        else:
            tasks = [ref() for ref in refs]
        found = [
            f"task {_task_name(task)} still pending{_where(task)}"
            for task in tasks
            if task is not None and not task.done()
        ]
        tracked = self._found.timers
        timers = getattr(loop, "_scheduled", ()) if tracked is None else tracked
        found += [
            f"timer {handle._callback!r} still scheduled"
            for handle in timers
            if handle._callback is not _SLEEP_TIMER
            and not handle.cancelled()
            and handle._scheduled  # not run yet
        ]
        if self._alone:
            found += self._threads_and_descriptors()
        return found + self._found

    def _threads_and_descriptors(self) -> list[str]:
        started = [thread for thread in threading.enumerate() if thread not in self._threads]
        pool = set(concurrent.futures.thread._threads_queues) if started else set()
        found = [
            f"thread {thread.name!r} still running"
            for thread in started
            if thread not in pool
            and not thread.name.startswith(_BENIGN_THREADS)
            and not _ends_soon(thread)
        ]
        # A descriptor left open takes the lowest free number: the lowest free one moves up.
        self.lowest_free_fd_after = _lowest_free_fd()
        for fd in range(self._lowest_free_fd, self.lowest_free_fd_after):
            target = _target(fd)
            if target is not None and not target.startswith(("anon_inode:", "pipe:")):
                found.append(f"file descriptor {fd} still open ({target})")
        return found


def unattributed() -> contextvars.Token[list[str] | None]:
    """Start code that is no test's own (a class-, module- or session-scoped fixture set up
    during a test): what it creates is not that test's leak. ``_garbage_of_test.reset`` the
    returned token when it is done."""
    return _garbage_of_test.set(None)


def _context_of(task: asyncio.Task[Any]) -> contextvars.Context | None:
    """The context a task runs in (its creator's copy).

    Python 3.12 has ``get_context()``; before, the C ``Task`` keeps it private, but hands it
    first to the garbage collector's traversal.
    """
    if sys.version_info >= (3, 12):
        return task.get_context()
    context = getattr(task, "_context", None)  # the pure-Python Task
    if context is None:
        context = next(
            (r for r in gc.get_referents(task) if isinstance(r, contextvars.Context)), None
        )
    return context


def _track_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Once per loop: note each task in the ``_Findings`` of the test whose code creates it,
    also through a task factory that code sets (the loop's ``set_task_factory`` keeps the
    tracking around it, and ``get_task_factory`` returns it, not aiotempo's wrapper)."""
    if getattr(loop.set_task_factory, "func", None) is _set_task_factory:
        return
    original_get, original_set = loop.get_task_factory, loop.set_task_factory
    loop.get_task_factory = functools.partial(_get_task_factory, original_get)  # type: ignore[method-assign]
    loop.set_task_factory = functools.partial(_set_task_factory, original_set)  # type: ignore[method-assign]
    loop.set_task_factory(original_get())


def _set_task_factory(set_factory: Any, factory: Any) -> None:
    set_factory(factory)  # asyncio's own check of the argument
    set_factory(functools.partial(_tracked, factory))


def _get_task_factory(get_factory: Any) -> Any:
    factory = get_factory()
    return factory.args[0] if getattr(factory, "func", None) is _tracked else factory


def _tracked(previous: Any, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
    if previous is not None:
        task = previous(loop, coro, **kwargs)
    else:
        task = asyncio.Task(coro, loop=loop, **kwargs)
    tasks = getattr(_garbage_of_test.get(), "tasks", None)
    if tasks is not None:
        tasks.append(weakref.ref(task))
    return task


def _track_timers(loop: asyncio.AbstractEventLoop) -> None:
    """Once per loop: note each timer (``call_later``, ``call_at``) in the ``_Findings`` of
    the test whose code schedules it."""
    if getattr(loop.call_at, "func", None) is not _timer_tracked:
        loop.call_at = functools.partial(_timer_tracked, loop.call_at)  # type: ignore[method-assign,assignment]


def _timer_tracked(call_at: Any, when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
    handle = call_at(when, callback, *args, **kwargs)
    timers = getattr(handle._context.get(_garbage_of_test), "timers", None)
    if timers is not None:
        timers.append(handle)
    return handle


def _route_unretrieved(loop: asyncio.AbstractEventLoop) -> None:
    """Once per loop: "exception never retrieved" goes to the check of the test whose context
    created the task (of the test whose code runs, for a plain future), before the loop's
    exception handler, which stays the test's to set. A test already checked hands it to the
    sweeps (``_swept``), as what it or an earlier test left."""
    original = loop.call_exception_handler
    if getattr(original, "func", None) is _unretrieved:
        return
    loop.call_exception_handler = functools.partial(_unretrieved, original)  # type: ignore[method-assign]


def _unretrieved(original: Callable[[dict[str, Any]], None], context: dict[str, Any]) -> None:
    future = context.get("future")
    if "never retrieved" in context.get("message", ""):
        if isinstance(future, asyncio.Task):
            task_context = _context_of(future)
            found = task_context.get(_garbage_of_test) if task_context is not None else None
        else:
            found = _garbage_of_test.get()
        if found is not None:
            (_swept if getattr(found, "closed", False) else found).append(
                f"exception never retrieved from {_task_name(future)}: {context.get('exception')!r}"
            )
            return
    original(context)


#: Where a dying object's report goes: the list of the test whose code runs (in its context,
#: which its tasks copy), or of a sweep; ``None``: Python's own warning.
_garbage_of_test: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "aiotempo_garbage", default=None
)

#: Python's hook warning of a coroutine never awaited, called as the coroutine dies.
_warn_unawaited = warnings._warn_unawaited_coroutine  # type: ignore[attr-defined]


def _watch_garbage() -> None:
    """Route never-awaited coroutines to the test's check, and what collections of the older
    generations free to the sweeps (once per process).

    CPython warns through ``warnings._warn_unawaited_coroutine`` whether the coroutine dies
    by reference count or in a collection; outside a check it still warns as usual.
    """
    if warnings._warn_unawaited_coroutine is _unawaited:  # type: ignore[attr-defined]
        return
    warnings._warn_unawaited_coroutine = _unawaited  # type: ignore[attr-defined]
    gc.callbacks.append(_on_collection)


def _unawaited(coro: Any) -> None:
    found = _collecting_into if _collecting_into is not None else _garbage_of_test.get()
    if found is None:
        _warn_unawaited(coro)
    else:
        found.append(f"coroutine {coro.__qualname__} was never awaited{_created_at(coro)}")


def _created_at(coro: Any) -> str:
    """Where a coroutine was created: the nearest frame outside libraries, if tracked; else
    where its function is defined."""
    origin = coro.cr_origin or ()
    frames = [f for f in origin if is_user_code(f[0])] or origin
    if not frames:
        code = coro.cr_code
        return f", defined at {os.path.relpath(code.co_filename)}:{code.co_firstlineno}"
    filename, lineno, function = frames[0]
    return f", created at {os.path.relpath(filename)}:{lineno} in {function}"


#: Whether a concurrent batch runs (``origins_untracked``).
_origins_untracked = False


@contextlib.contextmanager
def origins_untracked() -> Iterator[None]:
    """While a concurrent batch runs, coroutines do not record where they were created: it
    costs CPython about a microsecond per coroutine, a tenth of a loopback HTTP test's time
    under concurrency. A coroutine never awaited is then reported with where its function is
    defined."""
    global _origins_untracked
    depth = sys.get_coroutine_origin_tracking_depth()
    sys.set_coroutine_origin_tracking_depth(0)
    _origins_untracked = True
    try:
        yield
    finally:
        _origins_untracked = False
        sys.set_coroutine_origin_tracking_depth(depth)


class _Routed:
    """For the span of a collection: what dying objects report goes to ``found``, not to
    Python's warnings.

    An unclosed transport, socket, file or aiohttp session says so in a ``ResourceWarning``
    from its finalizer; other warnings finalizers issue are passed on as they were.
    """

    def __init__(self, found: list[str]) -> None:
        self._found = found
        self._token = _garbage_of_test.set(found)  # never-awaited coroutines
        self._catching = warnings.catch_warnings(record=True)
        self._caught = self._catching.__enter__()
        warnings.simplefilter("always", ResourceWarning)

    def end(self) -> None:
        self._catching.__exit__(None, None, None)
        _garbage_of_test.reset(self._token)
        for warning in self._caught:
            if issubclass(warning.category, ResourceWarning):
                self._found.append(str(warning.message))
            else:
                warnings.warn_explicit(
                    warning.message,
                    warning.category,
                    warning.filename,
                    warning.lineno,
                    source=warning.source,
                )


def _collect(generation: int, found: list[str]) -> None:
    """Collect ``generation``, what dying objects report going to ``found``."""
    global _explicit
    routed = _Routed(found)
    _explicit = True
    try:
        gc.collect(generation)
    finally:
        _explicit = False
        routed.end()


#: What collections of the older generations freed (a sweep's, or Python's automatic ones):
#: objects that outlived their test's check, so maybe an earlier test's.
_swept: list[str] = []
#: Where never-awaited coroutines report while Python's own collection of the older
#: generations runs. A plain global: a collection starts at any allocation, e.g. in the middle
#: of a context variable's update, so its callback must change neither context variables nor
#: the warnings module (doing so corrupted memory).
_collecting_into: list[str] | None = None
#: Whether the collection running is aiotempo's own (``_collect``), routed already.
_explicit = False


def _on_collection(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` hook: Python's own collections of the older generations report
    never-awaited coroutines to ``_swept`` (the young one is left to the test's check: Python
    collects it every few hundred allocations, and what it frees mid-test goes through
    pytest's capture of that test, as do the ResourceWarnings of any automatic one)."""
    global _collecting_into
    if info["generation"] != 0 and not _explicit:
        _collecting_into = _swept if phase == "start" else None


class Sweeper:
    """Full garbage collections now and then, never per test (one costs more than a test).

    What survives a test's young-generation collection (kept alive a while, or moved to an
    older generation by an automatic collection) is freed only by a collection of the older
    generations. A sweep runs when forced (after the last test) or once its share of the run
    time would be small: a sweep taking 20 ms runs at most once a second, and none in the first
    seconds (a short run gets only the one after its last test).
    """

    #: The share of run time sweeps may take.
    SHARE = 0.02
    #: Seconds before the first periodic sweep.
    FIRST = 5.0

    def __init__(self) -> None:
        self._next = time.monotonic() + self.FIRST

    def sweep(self, force: bool = False) -> list[str]:
        """What collections of the older generations found since the last call (with a full
        one first if it is due, or ``force``), one line each."""
        start = time.monotonic()
        if force or start >= self._next:
            _collect(2, _swept)
            end = time.monotonic()
            self._next = end + max(1.0, (end - start) / self.SHARE)
        elif not _swept:
            return []
        found = list(_swept)
        _swept.clear()
        return found


#: What was frozen when aiotempo was loaded, before the suite's code: Python 3.12 starts with a
#: few hundred of its own tuples frozen (which had kept the heap from being frozen there).
_FROZEN_AT_START = gc.get_freeze_count()


def freeze_heap() -> Callable[[], None]:
    """Keep what exists now (the collected session: modules, nodes, fixtures) out of the
    garbage collector's sight, until the returned function is called.

    Full collections then traverse only what the tests created: a sweep of a big session
    costs tens of milliseconds otherwise, and tests in flight under concurrency make Python run
    its own full collections often. Left as is if something froze more objects since
    aiotempo was loaded (the suite, for its own reasons); fewer is fine, frozen objects die.
    """
    if gc.get_freeze_count() > _FROZEN_AT_START:
        return lambda: None
    gc.freeze()
    return gc.unfreeze


#: Real seconds a thread the test asked to stop may take to end (e.g. aiosqlite's worker).
_THREAD_GRACE = 0.1


def _ends_soon(thread: threading.Thread) -> bool:
    thread.join(_THREAD_GRACE)
    return not thread.is_alive()


def allowed(finding: str, allow: Sequence[str]) -> bool:
    return any(text in finding for text in allow)


def _task_name(task: Any) -> str:
    if not isinstance(task, asyncio.Task):
        return "a future" if task is not None else "a task"
    coro = task.get_coro()
    name = getattr(coro, "__qualname__", None) or repr(coro)
    return f"{task.get_name()!r} ({name})"


def _where(task: asyncio.Task[Any]) -> str:
    """Where the task's coroutine is suspended, the nearest clue to who created it."""
    frame = getattr(task.get_coro(), "cr_frame", None)
    if frame is None:
        return ""
    return f", suspended at {os.path.relpath(frame.f_code.co_filename)}:{frame.f_lineno}"


def _lowest_free_fd() -> int:
    try:
        fd = os.dup(2)  # a new descriptor takes the lowest free number (5x cheaper than open)
    except OSError:  # no stderr descriptor
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
        _slow_callbacks.watchdog = self
        if _slow_callbacks not in _ASYNCIO_LOGGER.filters:
            _ASYNCIO_LOGGER.addFilter(_slow_callbacks)

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
                self._thread = threads.start(self._run, "blocking-watchdog")

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


@functools.cache
def _library_paths() -> tuple[str, ...]:
    """Where code that is not the suite's own lives: the standard library, installed packages
    and aiotempo itself (also when installed editable). Asked for on the first finding only."""
    paths = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple(
        {sysconfig.get_path(name) + os.sep for name in paths}
        | {os.path.dirname(os.path.abspath(__file__)) + os.sep}
    )


def is_user_code(filename: str) -> bool:
    """Whether ``filename`` is the suite's own code: a finding names the nearest such frame,
    the line of the test (or of its helpers) that did it, not the library call it went
    through."""
    return not filename.startswith(_library_paths()) and not filename.startswith("<frozen ")


def nearest_user_line(frame: FrameType | None) -> str:
    """From ``frame`` outward, the first frame of the suite's own code, as
    ``path:line in function (source)``; empty if the stack has none."""
    while frame is not None and not is_user_code(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return ""
    code = frame.f_code
    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
    where = f"{os.path.relpath(code.co_filename)}:{frame.f_lineno} in {code.co_name}"
    return where + (f" ({line})" if line else "")


def _blocking_report(thread_id: int, stalled: float, busy: float) -> tuple[str, Any]:
    """Where the loop's thread is stuck, whether it burns CPU or waits, and the context of
    the callback it is in (the blocking test's, under concurrency)."""
    innermost = sys._current_frames().get(thread_id)
    where = nearest_user_line(innermost)
    # A sleeping thread uses no CPU; a hog gets a share of it even on a busy machine.
    kind = "a CPU hog" if busy > 0.25 else "a blocking wait (the thread was not on the CPU)"
    report = (
        f"the loop was blocked for at least {stalled * 1000:.0f} ms at "
        f"{where or 'an unknown place'}: {kind}; move blocking work off the loop with "
        "asyncio.to_thread()"
    )
    return report, running_context(innermost)


def running_context(frame: FrameType | None) -> contextvars.Context | None:
    """The context of the loop callback a thread's stack ``frame`` is in (under concurrency,
    its test's: ``runner.current_item`` in it names the test)."""
    while frame is not None:
        handle = frame.f_locals.get("self") if frame.f_code.co_name == "_run" else None
        if isinstance(handle, asyncio.Handle):
            return handle._context  # type: ignore[attr-defined,no-any-return]
        frame = frame.f_back
    return None


_ASYNCIO_LOGGER = logging.getLogger("asyncio")


class _SlowCallbacks(logging.Filter):
    """asyncio's debug-mode "Executing <Handle> took 0.2 seconds": a finding of the test whose
    callback it was (through the watchdog's note-taker for that loop), not a log line.

    A stall the watchdog already reported with its stack is not reported twice; a loop the
    watchdog does not watch (``--asyncio-blocking=off``) logs as usual.
    """

    watchdog: BlockingWatchdog | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != "Executing %s took %.3f seconds" or self.watchdog is None:
            return True
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code.co_name != "_run_once":
            frame = frame.f_back
        if frame is None:
            return True
        state = self.watchdog._watched.get(frame.f_locals.get("self"))  # type: ignore[arg-type]
        handle = frame.f_locals.get("handle")
        if state is None or not isinstance(handle, asyncio.Handle):
            return True
        if state.reported != state.heartbeat.beats:  # else the watchdog reported this stall
            what, seconds = cast("tuple[str, float]", record.args)
            report = f"a callback took {seconds * 1000:.0f} ms (asyncio debug mode): {what}"
            state.on_block(report + _scheduled_at(handle), handle._context)  # type: ignore[attr-defined]
        return False


_slow_callbacks = _SlowCallbacks()


def _scheduled_at(handle: asyncio.Handle) -> str:
    """Where debug mode saw the callback scheduled (for a task's step: the task created)."""
    task = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
    stack = getattr(task if isinstance(task, asyncio.Task) else handle, "_source_traceback", None)
    frames = [f for f in stack or () if is_user_code(f.filename)]
    if not frames:
        return ""
    return "; created at " + " <- ".join(
        f"{os.path.relpath(f.filename)}:{f.lineno} in {f.name}" for f in reversed(frames[-3:])
    )
