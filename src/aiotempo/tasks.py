"""What every task of a loop waits on: whole await chains, wait reasons and deadlock cycles.

When a test hangs, ``Task.get_stack()`` is little help: from Python 3.11 it shows one frame of a
suspended task. ``snapshot()`` walks the whole await chain instead (``cr_await`` through
coroutines, ``ag_await`` through async generators, ``yield from`` generators and future
iterators) and names what the innermost await is: a lock and the task holding it, an event, a
queue, a condition, a semaphore, a timer, an executor job and the thread running it, or other
tasks. ``find_deadlocks()`` finds the tasks that wait on each other in a cycle, and
``format_report()`` prints it all.

``asyncio.Lock`` does not record its owner; inside ``track_lock_owners()`` it does, which turns a
lock-ordering (AB/BA) deadlock into a cycle that can be named.

This reads asyncio internals that are the same from Python 3.10 to 3.13 (``Task._fut_waiter``,
``Future._callbacks``, the locals of asyncio's own coroutines, ``BaseEventLoop._thread_id``).
Whatever cannot be read is reported as unknown instead of raising: this code runs when something
has already gone wrong, possibly from another thread while the loop is stuck.
"""

from __future__ import annotations

import asyncio
import asyncio.base_subprocess
import concurrent.futures
import concurrent.futures.thread
import contextlib
import contextvars
import functools
import gc
import inspect
import linecache
import os
import re
import reprlib
import sys
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import Any, Literal, NamedTuple

__all__ = [
    "Frame",
    "TaskInfo",
    "creation_site",
    "find_deadlocks",
    "format_report",
    "lock_owner",
    "snapshot",
    "track_lock_owners",
]

AnyTask = asyncio.Task[Any]
State = Literal["waiting", "ready", "new", "running"]
Deadlock = tuple["TaskInfo", ...]

_THIS_FILE = __file__
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.dirname(asyncio.__file__))


class Frame(NamedTuple):
    """One frame of an await chain or a thread's stack."""

    filename: str
    lineno: int
    function: str
    line: str  #: the stripped source line, "" when unavailable


@dataclass(frozen=True, eq=False)
class TaskInfo:
    """What one pending task was doing when the snapshot was taken."""

    task: AnyTask
    name: str
    #: "waiting" on something, "ready" to resume, "new" (not started) or "running" right now
    state: State
    #: what follows the task's name in a sentence: "waits for Event 0x7f3a... to be set"
    waiting_on: str
    #: the await chain, outermost first: the task's coroutine down to the innermost await
    chain: tuple[Frame, ...]
    #: the tasks that must act for this one to resume (an awaited task, a lock's owner)
    waits_for: tuple[AnyTask, ...] = ()
    #: True: it needs all of ``waits_for`` (gather, a lock); False: any one (asyncio.wait)
    waits_for_all: bool = True
    #: for an executor job: the stack of the worker thread running it, outermost first
    thread_stack: tuple[Frame, ...] = ()
    #: the locks it holds (recorded inside ``track_lock_owners()``)
    holds: tuple[str, ...] = ()
    #: where it was created (only when the loop is in debug mode), outermost first
    created_at: tuple[Frame, ...] = ()


# -- lock owners ----------------------------------------------------------------------------------


class _Holder(NamedTuple):
    task: weakref.ref[AnyTask]
    name: str
    filename: str
    lineno: int
    function: str


_holders: weakref.WeakKeyDictionary[asyncio.Lock, _Holder] = weakref.WeakKeyDictionary()
_tracking = 0
_tracking_guard = threading.Lock()
_saved_methods: tuple[Any, Any] | None = None


@contextlib.contextmanager
def track_lock_owners() -> Iterator[None]:
    """Record which task holds each ``asyncio.Lock`` acquired inside the block.

    asyncio's locks keep no owner, so a task waiting on a lock cannot otherwise be tied to the
    task that would have to release it. This wraps ``asyncio.Lock.acquire`` and ``release`` for
    the block's duration (process-wide: every loop and thread) and restores them on exit; blocks
    may nest. Owners are held weakly. A lock already held when the block starts has an unknown
    owner.
    """
    global _tracking, _saved_methods
    with _tracking_guard:
        if _tracking == 0:
            _saved_methods = (asyncio.Lock.acquire, asyncio.Lock.release)
            acquire, release = _tracking_methods(*_saved_methods)
            setattr(asyncio.Lock, "acquire", acquire)  # noqa: B010  (mypy: no method assignment)
            setattr(asyncio.Lock, "release", release)  # noqa: B010
        _tracking += 1
    try:
        yield
    finally:
        with _tracking_guard:
            _tracking -= 1
            if _tracking == 0 and _saved_methods is not None:
                setattr(asyncio.Lock, "acquire", _saved_methods[0])  # noqa: B010
                setattr(asyncio.Lock, "release", _saved_methods[1])  # noqa: B010
                _saved_methods = None
                _holders.clear()


def _tracking_methods(
    acquire: Callable[[asyncio.Lock], Any], release: Callable[[asyncio.Lock], None]
) -> tuple[Callable[[asyncio.Lock], Any], Callable[[asyncio.Lock], None]]:
    # A Condition binds its lock's methods when it is created, so these may outlive the block:
    # they only record while some block is active.
    @functools.wraps(acquire)
    async def tracked_acquire(self: asyncio.Lock) -> bool:
        result: bool = await acquire(self)
        task = asyncio.current_task()
        if _tracking and task is not None:
            where = _caller(sys._getframe(1))
            _holders[self] = _Holder(weakref.ref(task), task.get_name(), *where)
        return result

    @functools.wraps(release)
    def tracked_release(self: asyncio.Lock) -> None:
        release(self)
        _holders.pop(self, None)

    return tracked_acquire, tracked_release


def _caller(frame: FrameType | None) -> tuple[str, int, str]:
    """The first frame outside asyncio (``async with lock`` goes through ``__aenter__``)."""
    while frame is not None and _is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return ("?", 0, "?")
    return (frame.f_code.co_filename, frame.f_lineno or 0, _function(frame.f_code))


def lock_owner(lock: asyncio.Lock) -> AnyTask | None:
    """The task holding ``lock``, if it was acquired inside ``track_lock_owners()``."""
    holder = _holders.get(lock)
    return None if holder is None else holder.task()


# -- snapshot -------------------------------------------------------------------------------------


def snapshot(loop: asyncio.AbstractEventLoop | None = None) -> list[TaskInfo]:
    """Every pending task of ``loop`` (default: the running one) and what it waits on.

    May be called from another thread while the loop is stuck in a task: that task is reported
    as running, with its thread's current stack as its chain. Tasks are sorted by name.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    context = _Context(loop)
    infos = [context.inspect(task) for task in asyncio.all_tasks(loop)]
    return sorted(infos, key=lambda info: _natural(info.name))


def report(loop: asyncio.AbstractEventLoop) -> str:
    """The report of every task of ``loop``: deadlocks first, then each task's await chain."""
    infos = snapshot(loop)
    return format_report(infos, find_deadlocks(infos))


def creation_site(task: asyncio.Future[Any]) -> tuple[Frame, ...]:
    """Where ``task`` was created, outermost first; empty unless its loop was in debug mode."""
    summary = getattr(task, "_source_traceback", None) or ()
    return tuple(
        Frame(entry.filename, entry.lineno or 0, entry.name, (entry.line or "").strip())
        for entry in summary
    )


class _Wait(NamedTuple):
    text: str
    tasks: tuple[AnyTask, ...] = ()
    all: bool = True
    thread_stack: tuple[Frame, ...] = ()


class _Context:
    """What one snapshot reads once: the loop's current task, lock owners, thread stacks."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.now = loop.time()
        self.threads = sys._current_frames()
        try:
            self.current: AnyTask | None = asyncio.current_task(loop)
        except RuntimeError:
            self.current = None
        self.timeouts = _timeouts(loop)
        self.held: dict[AnyTask, list[str]] = {}
        for lock, holder in _items(_holders):
            owner = holder.task()
            if owner is not None and lock.locked():
                site = _site(holder.filename, holder.lineno, holder.function)
                self.held.setdefault(owner, []).append(f"{_label(lock)} (acquired at {site})")

    @functools.cached_property
    def thread_names(self) -> dict[int, str]:
        return {thread.ident: thread.name for thread in threading.enumerate() if thread.ident}

    def inspect(self, task: AnyTask) -> TaskInfo:
        name = task.get_name()
        try:
            return self._inspect(task, name)
        except Exception as exc:  # degrade, never raise: the report is what matters
            return TaskInfo(task, name, "waiting", f"could not be inspected ({exc!r})", ())

    def _inspect(self, task: AnyTask, name: str) -> TaskInfo:
        coro = task.get_coro()
        frames, awaited = _walk(coro)
        state: State = "waiting"
        wait: _Wait | None = None
        if task is self.current:
            state = "running"
            frames = self._running_frames(coro) or frames
            on_this_thread = getattr(self.loop, "_thread_id", None) == threading.get_ident()
            wait = _Wait("is running: it took this snapshot" if on_this_thread else _RUNNING)
        elif inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == "CORO_CREATED":
            state, wait = "new", _Wait("has not started yet")
        else:
            if awaited is None:
                awaited = getattr(task, "_fut_waiter", None)
            if awaited is None or (asyncio.isfuture(awaited) and awaited.done()):
                wait = None  # woken up, not yet resumed
            else:
                wait = _wait_in_frames(frames, self) or _wait_on(awaited, self)
            if wait is None:
                state, wait = "ready", _Wait("is ready to resume on the next loop iteration")
            elif task in self.timeouts:
                due = self.timeouts[task] - self.now
                wait = wait._replace(text=f"{wait.text}; a timeout cancels it in {due:.1f}s")
        return TaskInfo(
            task=task,
            name=name,
            state=state,
            waiting_on=wait.text,
            chain=tuple(_frame(f) for f in frames if f.f_code.co_filename != _THIS_FILE),
            waits_for=wait.tasks,
            waits_for_all=wait.all,
            thread_stack=wait.thread_stack,
            holds=tuple(self.held.get(task, ())),
            created_at=creation_site(task),
        )

    def _running_frames(self, coro: object) -> list[FrameType]:
        """The running task's frames from its thread's stack (``cr_await`` is empty there)."""
        frame = self.threads.get(getattr(self.loop, "_thread_id", None) or -1)
        target = getattr(coro, "cr_frame", None)
        stack = []
        while frame is not None:
            stack.append(frame)
            if frame is target:
                stack.reverse()
                # Called by the task itself: the snapshot's own frames end its stack.
                mine = [f.f_code.co_filename == _THIS_FILE for f in stack]
                return stack[: mine.index(True)] if True in mine else stack
            frame = frame.f_back
        return []

    def executor_job(self, job: concurrent.futures.Future[Any]) -> _Wait:
        for ident, top in self.threads.items():
            stack: list[FrameType] = []
            frame: FrameType | None = top
            while frame is not None:
                if frame.f_code is _WORK_ITEM_RUN:
                    item = frame.f_locals.get("self")
                    if getattr(item, "future", None) is job:
                        thread = self.thread_names.get(ident, str(ident))
                        text = f"waits for executor job {_call(item)} running in thread {thread!r}"
                        frames = tuple(_frame(f) for f in reversed(stack))
                        return _Wait(text, thread_stack=frames)
                    break
                stack.append(frame)
                frame = frame.f_back
        if job.running():
            return _Wait("waits for an executor job, running outside this process's threads")
        item = _queued_work_item(job)
        what = "an executor job" if item is None else f"executor job {_call(item)}"
        return _Wait(f"waits for {what}, queued: no worker thread has started it")


_RUNNING = "is running: the event loop is executing it and it has not yielded back"


def _walk(coro: object) -> tuple[list[FrameType], object | None]:
    """The frames of an await chain, outermost first, and what its innermost await is on.

    That is a future (a task is one), an unknown awaitable, or None when nothing is awaited.
    """
    frames: list[FrameType] = []
    obj: object | None = coro
    seen: set[int] = set()
    while obj is not None and id(obj) not in seen:
        seen.add(id(obj))
        if asyncio.isfuture(obj):
            return frames, obj
        for frame_attr, await_attr in _AWAITABLE_ATTRS:
            if hasattr(obj, frame_attr):
                frame = getattr(obj, frame_attr)
                inner = getattr(obj, await_attr, None)
                if frame is not None:
                    if inner is None and _is_future_await(frame):
                        return frames, frame.f_locals.get("self")  # a pure-Python Future
                    frames.append(frame)
                obj = inner
                break
        else:
            if type(obj).__module__ not in ("builtins", "_asyncio"):
                return frames, obj
            # A C-level wrapper (future iterator, async generator asend/athrow, anext): the
            # awaitable it drives is among its references.
            obj = next((ref for ref in gc.get_referents(obj) if _is_awaitable(ref)), None)
    return frames, None


_AWAITABLE_ATTRS = (
    ("cr_frame", "cr_await"),
    ("ag_frame", "ag_await"),
    ("gi_frame", "gi_yieldfrom"),
)


def _is_awaitable(obj: object) -> bool:
    return asyncio.isfuture(obj) or any(hasattr(obj, attr) for attr, _ in _AWAITABLE_ATTRS)


def _is_future_await(frame: FrameType) -> bool:
    code = frame.f_code
    return code.co_name == "__await__" and code.co_filename == asyncio.futures.__file__


def _wait_in_frames(frames: Sequence[FrameType], context: _Context) -> _Wait | None:
    """What asyncio's own coroutines at the end of the chain say the task waits on.

    Of the asyncio frames at the end of the chain the outermost one known is the most telling
    (``Queue.join`` waits on an event inside), except that a lock wait is always about the lock.
    """
    known: list[FrameType] = []
    for frame in reversed(frames):
        if frame.f_code.co_filename == _THIS_FILE:
            continue
        if not frame.f_code.co_filename.startswith(_ASYNCIO_DIR):
            break
        if frame.f_code in _WAITS:
            known.append(frame)
    if not known:
        return None
    chosen = next((f for f in known if f.f_code is _LOCK_ACQUIRE), known[-1])
    return _WAITS[chosen.f_code](chosen.f_locals, context)


def _wait_on(awaited: object, context: _Context) -> _Wait:
    """What awaiting ``awaited`` (a future, a task, or anything else) waits for."""
    if isinstance(awaited, asyncio.Task):
        return _Wait(f"waits for {_task(awaited)}", (awaited,))
    if not asyncio.isfuture(awaited):
        return _Wait(f"waits on {_repr.repr(awaited)}")
    if isinstance(awaited, _GatheringFuture):
        children = list(getattr(awaited, "_children", ()))
        return _several(f"waits for gather() of {len(children)}", children, True)
    source = _closure_var(awaited, "_call_check_cancel", "source")
    if isinstance(source, concurrent.futures.Future):
        return context.executor_job(source)
    if source is not None:
        return _Wait(f"waits for {_future(source)} of another event loop")
    inner = _closure_var(awaited, "_outer_done_callback", "inner")
    if isinstance(inner, asyncio.Task):
        return _Wait(f"waits for {_task(inner)} through shield()", (inner,))
    return _Wait(f"waits for {_future(awaited)}")


def _several(text: str, futures: Iterable[Any], wait_all: bool) -> _Wait:
    pending = [f for f in futures if not f.done()]
    tasks = tuple(f for f in pending if isinstance(f, asyncio.Task))
    if not wait_all and len(tasks) < len(pending):
        tasks = ()  # any non-task future may wake it: no deadlock can be proven through it
    names = ", ".join(_task(f) if isinstance(f, asyncio.Task) else _future(f) for f in pending)
    return _Wait(f"{text}, {len(pending)} pending: {names}", tasks, wait_all)


def _closure_var(future: asyncio.Future[Any], callback: str, name: str) -> Any:
    """A variable of the asyncio closure named ``callback`` among ``future``'s done callbacks.

    ``wrap_future`` (so ``run_in_executor``) and ``shield`` leave one that points at the
    future the awaited one stands for.
    """
    for entry in getattr(future, "_callbacks", None) or ():
        function = entry[0] if isinstance(entry, tuple) else entry
        code = getattr(function, "__code__", None)
        if (
            code is None
            or code.co_name != callback
            or not code.co_filename.startswith(_ASYNCIO_DIR)
        ):
            continue
        if name in code.co_freevars:
            return function.__closure__[code.co_freevars.index(name)].cell_contents
    return None


def _queued_work_item(job: concurrent.futures.Future[Any]) -> Any:
    """The thread pool work item of a job that no thread runs yet (costly: a heap search)."""
    for referrer in gc.get_referrers(job):
        if isinstance(referrer, _WorkItem):
            return referrer
        if type(referrer) is dict and referrer.get("future") is job:  # a __dict__ (3.10)
            for owner in gc.get_referrers(referrer):
                if isinstance(owner, _WorkItem):
                    return owner
    return None


def _call(item: Any) -> str:
    """``fn(args)`` of a work item, seeing through ``to_thread``'s ``partial(context.run, fn)``."""
    fn, args, kwargs = item.fn, tuple(item.args), dict(item.kwargs)
    if (
        isinstance(fn, functools.partial)
        and isinstance(getattr(fn.func, "__self__", None), contextvars.Context)
        and fn.args
    ):
        fn, args, kwargs = fn.args[0], fn.args[1:] + args, {**fn.keywords, **kwargs}
    module = getattr(fn, "__module__", None)
    name = getattr(fn, "__qualname__", None) or repr(fn)
    if module and module not in ("builtins", "__main__") and "<locals>" not in name:
        name = f"{module}.{name}"
    shown = [_repr.repr(a) for a in args] + [f"{k}={_repr.repr(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(shown)})"


# -- what asyncio's own coroutines wait on ------------------------------------------------------


def _lock_acquire(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    lock = f_locals["self"]
    holder = _holders.get(lock)
    if holder is None:
        if not lock.locked():
            return _Wait(f"waits for {_label(lock)}, released and about to be handed over")
        hint = "" if _tracking else " (track_lock_owners() would name it)"
        return _Wait(f"waits for {_label(lock)}, held by an unknown task{hint}")
    site = _site(holder.filename, holder.lineno, holder.function)
    owner = holder.task()
    if owner is None or owner.done():
        text = f"held by task {holder.name!r}, which ended without releasing it"
        return _Wait(f"waits for {_label(lock)}, {text} (acquired at {site})")
    return _Wait(f"waits for {_label(lock)}, held by {_task(owner)} (acquired at {site})", (owner,))


def _event_wait(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    return _Wait(f"waits for {_label(f_locals['self'])} to be set")


def _condition_wait(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    return _Wait(f"waits for {_label(f_locals['self'])} to be notified")


def _condition_wait_for(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    predicate = getattr(f_locals.get("predicate"), "__qualname__", "its predicate")
    return _Wait(f"waits for {_label(f_locals['self'])} to be notified and {predicate}() true")


def _semaphore_acquire(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    semaphore = f_locals["self"]
    waiting = len(getattr(semaphore, "_waiters", None) or ())
    value = getattr(semaphore, "_value", "?")
    text = f"waits for {_label(semaphore)} (value {value}, {waiting} waiting; holders unknown)"
    return _Wait(text)


def _queue_get(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    return _Wait(f"waits for an item from {_label(f_locals['self'])}, which is empty")


def _queue_put(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    queue = f_locals["self"]
    return _Wait(f"waits for room in {_label(queue)}, full at {queue.qsize()}/{queue.maxsize}")


def _queue_join(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    queue = f_locals["self"]
    left = getattr(queue, "_unfinished_tasks", "some")
    return _Wait(f"waits for task_done() on the {left} unfinished items of {_label(queue)}")


def _sleep(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    handle = f_locals.get("h")
    due = f", due in {handle.when() - context.now:.1f}s" if handle is not None else ""
    return _Wait(f"waits for a timer: asyncio.sleep({f_locals.get('delay')!r}){due}")


def _wait_for(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    inner = f_locals.get("fut")
    wait = _wait_on(inner, context) if asyncio.isfuture(inner) else _Wait("waits")
    handle = f_locals.get("timeout_handle")  # 3.10 and 3.11; later, a Timeout in _timeouts()
    if handle is None:
        return wait
    due = handle.when() - context.now
    return wait._replace(text=f"{wait.text} in wait_for(), which times out in {due:.1f}s")


def _asyncio_wait(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    when = f_locals.get("return_when", asyncio.ALL_COMPLETED)
    futures = list(f_locals.get("fs") or ())
    text = f"waits for asyncio.wait({when}) on {len(futures)}"
    return _several(text, futures, when != asyncio.FIRST_COMPLETED)


def _taskgroup_exit(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    return _several("waits for its TaskGroup's tasks", f_locals["self"]._tasks, True)


def _barrier_wait(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    barrier = f_locals["self"]
    count = f"{barrier.n_waiting} of {barrier.parties} parties"
    return _Wait(f"waits at {_label(barrier)} ({count} waiting)")


def _stream_data(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    via = f_locals.get("func_name", "read")
    return _Wait(f"waits for data from {_label(f_locals['self'])} (in {via}())")


def _stream_drain(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    return _Wait("waits for a transport's write buffer to drain (StreamWriter.drain())")


def _subprocess_exit(f_locals: Mapping[str, Any], context: _Context) -> _Wait:
    pid = getattr(f_locals["self"], "_pid", "?")
    return _Wait(f"waits for subprocess {pid} to exit")


def _code(obj: object, *path: str) -> CodeType | None:
    for attr in path:
        obj = getattr(obj, attr, None)
    code = getattr(obj, "__code__", None)
    return code if isinstance(code, CodeType) else None


_Describe = Callable[[Mapping[str, Any], _Context], _Wait]

_WAITS: dict[CodeType, _Describe] = {
    code: describe
    for code, describe in [
        (_code(asyncio.Lock, "acquire"), _lock_acquire),
        (_code(asyncio.Event, "wait"), _event_wait),
        (_code(asyncio.Condition, "wait"), _condition_wait),
        (_code(asyncio.Condition, "wait_for"), _condition_wait_for),
        (_code(asyncio.Semaphore, "acquire"), _semaphore_acquire),
        (_code(asyncio.Queue, "get"), _queue_get),
        (_code(asyncio.Queue, "put"), _queue_put),
        (_code(asyncio.Queue, "join"), _queue_join),
        (_code(asyncio.tasks, "sleep"), _sleep),
        (_code(asyncio.tasks, "wait_for"), _wait_for),
        (_code(asyncio.tasks, "_wait"), _asyncio_wait),
        (_code(asyncio, "TaskGroup", "__aexit__"), _taskgroup_exit),
        (_code(asyncio, "Barrier", "wait"), _barrier_wait),
        (_code(asyncio.StreamReader, "_wait_for_data"), _stream_data),
        (_code(asyncio.streams, "FlowControlMixin", "_drain_helper"), _stream_drain),
        (_code(asyncio.base_subprocess, "BaseSubprocessTransport", "_wait"), _subprocess_exit),
    ]
    if code is not None
}
_LOCK_ACQUIRE = _code(asyncio.Lock, "acquire")
_GatheringFuture: type = getattr(asyncio.tasks, "_GatheringFuture", type(None))
_WorkItem: type = getattr(concurrent.futures.thread, "_WorkItem", type(None))
_WORK_ITEM_RUN = _code(_WorkItem, "run")


# -- deadlocks ------------------------------------------------------------------------------------


def find_deadlocks(infos: Sequence[TaskInfo]) -> list[Deadlock]:
    """The cycles of tasks that can never resume, each task waiting for the next one.

    A task that waits on something outside the tasks (an event, a timer, I/O, an unknown lock
    owner) is assumed able to resume, so a cycle is reported only when it is certain.
    """
    stuck = _stuck(infos)
    by_task = {info.task: info for info in infos if info.task in stuck}
    edges = {task: [t for t in info.waits_for if t in by_task] for task, info in by_task.items()}
    cycles: list[Deadlock] = []
    for component in _strongly_connected(edges):
        start = component[0]
        if len(component) == 1 and start not in edges[start]:
            continue
        cycles.append(tuple(by_task[t] for t in _shortest_cycle(start, edges, set(component))))
    return cycles


def _stuck(infos: Sequence[TaskInfo]) -> set[AnyTask]:
    """The tasks that cannot resume: the complement of those that can, found as a fixed point."""
    known = {info.task for info in infos}
    free = {info.task for info in infos if not info.waits_for}
    changed = True
    while changed:
        changed = False
        for info in infos:
            if info.task in free:
                continue
            able = [t in free or t not in known or t.done() for t in info.waits_for]
            if all(able) if info.waits_for_all else any(able):
                free.add(info.task)
                changed = True
    return known - free


def _strongly_connected(edges: Mapping[AnyTask, list[AnyTask]]) -> list[list[AnyTask]]:
    """Tarjan's strongly connected components, iteratively; each in discovery order."""
    index: dict[AnyTask, int] = {}
    low: dict[AnyTask, int] = {}
    stack: list[AnyTask] = []
    on_stack: set[AnyTask] = set()
    components: list[list[AnyTask]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(edges[successor])))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: list[AnyTask] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member is node:
                            break
                    components.append(component[::-1])
    return components


def _shortest_cycle(
    start: AnyTask, edges: Mapping[AnyTask, list[AnyTask]], within: set[AnyTask]
) -> list[AnyTask]:
    """The shortest path from ``start`` back to itself, by breadth-first search."""
    parent: dict[AnyTask, AnyTask] = {}
    frontier = [start]
    while frontier:
        following: list[AnyTask] = []
        for node in frontier:
            for successor in edges[node]:
                if successor is start:
                    path = [node]
                    while path[-1] is not start:
                        path.append(parent[path[-1]])
                    return path[::-1]
                if successor in within and successor not in parent:
                    parent[successor] = node
                    following.append(successor)
        frontier = following
    return [start]


# -- the report -----------------------------------------------------------------------------------


def format_report(infos: Sequence[TaskInfo], deadlocks: Sequence[Deadlock] | None = None) -> str:
    """A readable text block: deadlock cycles first, then every task with its await chain."""
    if deadlocks is None:
        deadlocks = find_deadlocks(infos)
    stuck = _stuck(infos)
    in_cycle = {info.task: number for number, cycle in enumerate(deadlocks, 1) for info in cycle}
    summary = _count(len(infos), "task")
    if deadlocks:
        summary += f", {_count(len(deadlocks), 'deadlock')}"
    lines = [summary]
    for number, cycle in enumerate(deadlocks, 1):
        names = [repr(info.name) for info in cycle]
        shape = (
            f"{names[0]} waits for itself" if len(cycle) == 1 else " -> ".join([*names, names[0]])
        )
        lines += ["", f"Deadlock {number}: {shape}"]
        lines += [f"  task {info.name!r} {info.waiting_on}" for info in cycle]
    for info in infos:
        tag = ""
        if info.task in in_cycle:
            tag = f" [deadlock {in_cycle[info.task]}]"
        elif info.task in stuck:
            tag = " [stuck behind a deadlock]"
        lines += ["", f"Task {info.name!r}{tag} {info.waiting_on}"]
        lines += [f"  holds {lock}" for lock in info.holds]
        created = next((f for f in reversed(info.created_at) if not _is_internal(f.filename)), None)
        if created is not None:
            lines.append(
                f"  created at {_site(created.filename, created.lineno, created.function)}"
            )
        lines += _frames(info.chain)
        if info.thread_stack:
            lines.append("  in the executor thread:")
            lines += _frames(info.thread_stack, "  ")
    return "\n".join(lines)


def _frames(frames: Iterable[Frame], indent: str = "") -> list[str]:
    lines = []
    for frame in frames:
        lines.append(f"{indent}  {_site(frame.filename, frame.lineno, frame.function)}")
        if frame.line:
            lines.append(f"{indent}      {frame.line}")
    return lines


# -- small helpers --------------------------------------------------------------------------------


def _frame(frame: FrameType) -> Frame:
    code = frame.f_code
    lineno = frame.f_lineno or 0
    line = linecache.getline(code.co_filename, lineno, frame.f_globals).strip()
    function = _function(code)
    if function == code.co_name and "self" in code.co_varnames[: code.co_argcount]:
        with contextlib.suppress(KeyError):  # 3.10 has no co_qualname: name the class of self
            function = f"{type(frame.f_locals['self']).__name__}.{function}"
    return Frame(code.co_filename, lineno, function, line)


def _function(code: CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


def _items(mapping: weakref.WeakKeyDictionary[Any, _Holder]) -> list[tuple[Any, _Holder]]:
    """A copy of ``mapping``, which another thread may be changing."""
    for _ in range(10):
        with contextlib.suppress(RuntimeError):
            return list(mapping.items())
    return []


def _timeouts(loop: asyncio.AbstractEventLoop) -> dict[AnyTask, float]:
    """When the pending ``asyncio.timeout()`` of each task fires (3.11+; ``wait_for`` on 3.12+)."""
    deadlines: dict[AnyTask, float] = {}
    for handle in list(getattr(loop, "_scheduled", ())):
        timeout = getattr(getattr(handle, "_callback", None), "__self__", None)
        task = getattr(timeout, "_task", None)
        if isinstance(task, asyncio.Task) and not handle.cancelled():
            deadlines[task] = min(handle.when(), deadlines.get(task, handle.when()))
    return deadlines


def _is_internal(filename: str) -> bool:
    return filename.startswith(_ASYNCIO_DIR) or filename == _THIS_FILE


def _site(filename: str, lineno: int, function: str) -> str:
    return f"{_short(filename)}:{lineno} in {function}"


def _short(filename: str) -> str:
    """``filename`` relative to the working directory or the standard library, if within."""
    for base in (os.getcwd(), _STDLIB_DIR):
        with contextlib.suppress(ValueError):  # another drive on Windows
            relative = os.path.relpath(filename, base)
            if not relative.startswith(os.pardir):
                return relative
    return filename


def _label(obj: object) -> str:
    """A short name an object keeps across the report, so waits and holdings can be matched."""
    return f"{type(obj).__name__} 0x{id(obj):x}"


def _task(task: AnyTask) -> str:
    return f"task {task.get_name()!r}"


def _future(future: object) -> str:
    created = creation_site(future) if isinstance(future, asyncio.Future) else ()
    outside = [f for f in created if not _is_internal(f.filename)]
    where = f" created at {_site(*outside[-1][:3])}" if outside else ""
    return f"{_label(future)}{where}"


_repr = reprlib.Repr()
_repr.maxother = _repr.maxstring = 80


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _natural(name: str) -> list[Any]:
    """Sorts Task-2 before Task-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def cancel_and_wait(
    loop: asyncio.AbstractEventLoop, leftovers: set[asyncio.Task[Any]], when: str
) -> None:
    """Cancel ``leftovers`` and wait for them on ``loop`` (not running), as ``asyncio.run``
    does at its end; an exception a task raised instead of ending goes to the loop's exception
    handler, "unhandled exception during ``when``"."""
    if not leftovers:
        return
    for task in leftovers:
        with contextlib.suppress(RecursionError):  # tasks awaiting each other in a cycle
            task.cancel()
    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
    for task in leftovers:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": f"unhandled exception during {when}",
                    "exception": task.exception(),
                    "task": task,
                }
            )
