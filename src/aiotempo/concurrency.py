"""Running independent async tests concurrently on one loop, each with pytest's full protocol.

The session's items are cut into segments, in collection order: a run of consecutive tests
that may overlap and resolve to the same loop is a batch; everything else runs one at a time,
exactly as without aiotempo's concurrency. A batch runs on its loop, and each of its tests
runs its whole standard protocol (hooks, fixtures, reports) in a greenlet of its own (see
``runner``); at most ``limit`` tests are in flight. pytest's per-test state is made per test
while a batch runs (``_pytest_internals``, ``capture``): a setup state with one leaf per
test in flight, private copies of function-scoped fixture definitions, one setup of each
shared fixture, and output, logs and warnings routed to the test whose code produced them.

A test runs exclusively (the tests in flight drain first, nothing starts beside it) when it
changes process-wide state that cannot be attributed to it: fixtures such as ``monkeypatch``
or ``capfd``, ``pytest.warns``, ``filterwarnings`` marks, or the ``exclusive`` marker
argument. Tests sharing a named resource never overlap, nor do tests on different parameters
of a wider-scoped parametrized fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import signal
import time
import unittest.mock
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from . import _pytest_internals as internals
from . import capture, clock, config, diagnostics, explore, items, loops, reporting, runner, scopes

#: Fixtures that change process-wide state, so their tests run exclusively.
EXCLUSIVE_FIXTURES = frozenset(
    {
        "monkeypatch",
        "capfd",
        "capfdbinary",
        "capsys",
        "capsysbinary",
        "caplog",
        "recwarn",
        "mocker",
        "class_mocker",
        "module_mocker",
        "package_mocker",
        "session_mocker",
    }
)
#: Names in a test's code that reveal process-wide changes (``pytest.warns`` and friends).
_EXCLUSIVE_CALLS: dict[str, tuple[str, tuple[object, ...]]] = {
    # name used in the test's code: (what it is, the modules it is reached through)
    "warns": ("pytest.warns", (pytest,)),
    "deprecated_call": ("pytest.deprecated_call", (pytest,)),
    "MonkeyPatch": ("pytest.MonkeyPatch", (pytest,)),
    "patch": ("unittest.mock.patch", (unittest.mock, unittest)),
}

current_item = runner.current_item

_BATCH = pytest.StashKey["Batch"]()


@dataclass
class Plan:
    """Why a test cannot overlap with others (empty: it can), and what it must not share."""

    exclusive: list[str] = field(default_factory=list)
    resources: frozenset[str] = frozenset()
    #: (fixture name, parameter index) of wider-scoped parametrized fixtures.
    params: frozenset[tuple[str, int]] = frozenset()


def wanted(session: pytest.Session) -> bool:
    """Whether ``--asyncio-concurrency`` or a marker asks for concurrency in this run."""
    if items.settings_of(session.config).concurrency > 1:
        return True
    for item in session.items:
        with contextlib.suppress(config.MarkerError):  # reported by the test itself
            if items.aiotempo_marker(item).concurrent:
                return True
    return False


def forced_sequential(config: pytest.Config) -> str | None:
    """Why this whole run must be sequential, if it must."""
    if config.getoption("usepdb", False) or config.getoption("trace", False):
        return "--pdb/--trace"
    if config.getoption("capture", "fd") == "no":
        return "-s (no capture)"
    return None


def in_batch(item: pytest.Item) -> bool:
    return _BATCH in item.stash


def plan(item: pytest.Item) -> Plan:
    """What keeps ``item`` from overlapping with other tests."""
    result = Plan()
    marker = items.aiotempo_marker(item)
    if marker.exclusive:
        result.exclusive.append("@pytest.mark.aiotempo(exclusive=True)")
    for name in getattr(item, "fixturenames", ()):
        if name in EXCLUSIVE_FIXTURES:
            result.exclusive.append(f"fixture {name}")
    if any(True for _ in item.iter_markers("filterwarnings")):
        result.exclusive.append("@pytest.mark.filterwarnings")
    function = getattr(item, "obj", None)
    if getattr(function, "patchings", None):  # @unittest.mock.patch(...) decorators
        result.exclusive.append("unittest.mock.patch")
    code = getattr(function, "__code__", None)
    for name, (shown, modules) in _EXCLUSIVE_CALLS.items():
        if shown not in result.exclusive and _calls(function, code, name, modules):
            result.exclusive.append(shown)
    result.resources = frozenset(marker.resources)
    result.params = frozenset(internals.wider_scoped_params(item))
    return result


#: Called with each test and the seconds its protocol took, as soon as it is done.
OnDone = Callable[[pytest.Item, float], None]


def _calls(function: Any, code: Any, name: str, modules: tuple[object, ...]) -> bool:
    """Whether the test's own code uses ``name`` from one of ``modules`` (not, say, an HTTP
    client's ``patch`` method)."""
    if code is None or name not in code.co_names:
        return False
    namespace = getattr(function, "__globals__", {})
    direct = getattr(modules[0], name, None)
    return namespace.get(name) is direct or any(
        namespace.get(used) in modules for used in code.co_names
    )


def run_items(
    run: Sequence[pytest.Item], after: pytest.Item | None, on_done: OnDone | None = None
) -> None:
    """Run ``run`` in order, in batches where tests may overlap; ``after`` follows the last.

    Returns early once the session should fail or stop.
    """
    session = run[0].session
    for segment, next_item in _segments(run, after):
        if len(segment) == 1:
            start = time.perf_counter()
            segment[0].ihook.pytest_runtest_protocol(item=segment[0], nextitem=next_item)
            if on_done is not None:
                on_done(segment[0], time.perf_counter() - start)
        else:
            run_batch(segment, next_item, on_done)
        if session.shouldfail or session.shouldstop:
            return


def _segments(
    run: Sequence[pytest.Item], after: pytest.Item | None
) -> Iterator[tuple[list[pytest.Item], pytest.Item | None]]:
    """``run`` cut into batches of tests that share a loop and single tests, each with the
    item that follows it."""
    cuts: list[tuple[Any, list[pytest.Item]]] = []
    for item in run:
        key = batch_key(item)
        if key is not None and cuts and cuts[-1][0] == key:
            cuts[-1][1].append(item)
        else:
            cuts.append((key, [item]))
    for index, (_, segment) in enumerate(cuts):
        yield segment, cuts[index + 1][1][0] if index + 1 < len(cuts) else after


def batch_key(item: pytest.Item, assume_on: bool = False) -> Any:
    """What identifies the loop ``item`` runs on, or ``None`` if it must run on its own;
    ``assume_on``: as if ``--asyncio-concurrency`` were above 1 (``savings``' estimate)."""
    try:
        marked = items.aiotempo_marker(item).concurrent
        off = not assume_on and items.settings(item).concurrency <= 1
        if marked is False or (marked is None and off):
            return None
        if not items.is_async_test(item) or any(
            scopes.overridden(item, legacy) for legacy in ("event_loop", "event_loop_policy")
        ):
            return None
        if explore.SEED_FIXTURE in getattr(item, "fixturenames", ()):
            return None  # an explored run perturbs a loop of its own with its seed
        if item.config.getoption("reruns", 0) or item.get_closest_marker("flaky"):
            # pytest-rerunfailures runs the protocol again: exclusively, as without concurrency
            reporting.count_exclusive(item.config, ["reruns (pytest-rerunfailures)"])
            return None
        scope = scopes.test_loop_scope(item)
        node = loops.scope_node(item, scope)
        for _, fixturedef in scopes.async_fixtures(item):
            if fixturedef.scope != "function":
                fixture_scope = scopes.fixture_loop_scope(fixturedef, item)
                if loops.scope_node(item, fixture_scope) is not node:
                    return None  # the test and this fixture run on different loops
        return (None if scope == "function" else node, loops.spec_of(item))
    except config.MarkerError:  # the test reports it when it runs, on its own
        return None


def run_batch(
    batch: Sequence[pytest.Item], after: pytest.Item | None, on_done: OnDone | None = None
) -> None:
    """Run the tests of one batch concurrently; return when all are finished."""
    session = batch[0].session
    limit = max(items.settings(batch[0]).concurrency, 2)
    scheduler = Batch(batch, limit, on_done)
    loop = loops.take_for_batch(batch)
    state = internals.ConcurrentSetupState(
        internals.setup_stack(session), batch, after, current_item.get
    )
    try:
        with (
            internals.concurrent_session(session, state, runner.wait_for),
            capture.concurrent(session.config, current_item, scheduler.runs_exclusively),
            _ctrl_c_cancels(loop, scheduler),
            _patches_reported(scheduler),
            _batch_protocol(session.config),
            diagnostics.origins_untracked(),
            _young_generation_for(limit),
        ):
            _run_containing_escapes(loop, scheduler, after)
    finally:
        loops.give_back_batch(batch, loop, after)
    if scheduler.stopped_by_user:
        raise KeyboardInterrupt


@contextlib.contextmanager
def _young_generation_for(tests: int) -> Iterator[None]:
    """Let Python's young generation grow with the tests in flight while a batch runs.

    With hundreds of tests in flight, the default threshold (700 allocations) collects the
    young generation every few test steps and promotes what those tests still use to the older
    generations, whose collections then traverse it again, and again: a tenth of a loopback
    HTTP batch's CPU time went to the collector. Leak checks do not depend on it (batches use
    full sweeps); the threshold is restored when the batch ends.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0] * max(1, tests // 16), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _run_containing_escapes(
    loop: asyncio.AbstractEventLoop, batch: Batch, after: pytest.Item | None
) -> None:
    """Run the scheduler; what stops the loop fails the tests it concerns instead.

    A ``SystemExit`` (or other ``BaseException``) raised by a task of a test fails that test;
    a virtual clock's ``Deadlock`` (every test in flight waits for what cannot happen) fails
    every test in flight.
    """
    scheduler = loop.create_task(batch.run(after))
    while True:
        try:
            loop.run_until_complete(scheduler)
            return
        except KeyboardInterrupt:
            raise
        except clock.Deadlock as error:
            if scheduler.done():
                raise
            batch.interrupt_in_flight(error)
        except BaseException as error:
            item = None if scheduler.done() else _item_of_escaped(error)
            test = item.stash.get(runner.TEST_TASKS, None) if item is not None else None
            if test is None:
                raise
            test.interrupt(error)


def _item_of_escaped(error: BaseException) -> pytest.Item | None:
    """The test whose task raised ``error`` out of the loop: the context the loop ran it in."""
    traceback = error.__traceback__
    while traceback is not None:
        handle = traceback.tb_frame.f_locals.get("self")
        if isinstance(handle, asyncio.Handle):
            return handle._context.get(current_item)  # type: ignore[attr-defined,no-any-return]
        traceback = traceback.tb_next
    return None


@contextlib.contextmanager
def _patches_reported(scheduler: Batch) -> Iterator[None]:
    """Report a ``unittest.mock.patch`` started while other tests are in flight.

    Patches the test's code makes in plain sight are seen before it starts (``plan``); this
    catches the rest, e.g. inside helpers, since the result then depends on timing.
    """
    enter = unittest.mock._patch.__enter__

    def reporting_enter(patcher: Any) -> Any:
        item = current_item.get()
        if item is not None and scheduler.overlaps(item):
            reporting.notice(
                item.config,
                "patched a global while other tests were in flight, so results depend on "
                "timing; mark the test @pytest.mark.aiotempo(exclusive=True)",
                f"{item.nodeid} ({getattr(patcher, 'attribute', '?')})",
            )
        return enter(patcher)

    unittest.mock._patch.__enter__ = reporting_enter  # type: ignore[method-assign]
    try:
        yield
    finally:
        unittest.mock._patch.__enter__ = enter  # type: ignore[method-assign]


@contextlib.contextmanager
def _ctrl_c_cancels(loop: asyncio.AbstractEventLoop, scheduler: Batch) -> Iterator[None]:
    """The first Ctrl-C cancels the tests in flight and lets their teardowns run; a second one
    interrupts at once, as without aiotempo."""

    def first_ctrl_c() -> None:
        loop.remove_signal_handler(signal.SIGINT)
        scheduler.stop("interrupted by Ctrl-C")

    try:
        loop.add_signal_handler(signal.SIGINT, first_ctrl_c)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or Windows
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGINT)


class Batch:
    """The scheduler of one batch (see the module docstring)."""

    def __init__(self, batch: Sequence[pytest.Item], limit: int, on_done: OnDone | None) -> None:
        self.items = list(batch)
        self.limit = limit
        self._on_done = on_done
        self._plans = {item: plan(item) for item in self.items}
        self._in_flight: dict[pytest.Item, asyncio.Task[None]] = {}
        #: What the tests in flight hold: resources, and wider-scoped parameters by fixture.
        self._resources: Counter[str] = Counter()
        self._params: dict[str, Counter[int]] = {}
        self._done: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self.stopped_by_user = False

    def runs_exclusively(self, item: pytest.Item) -> bool:
        return bool(self._plans[item].exclusive)

    def overlaps(self, item: pytest.Item) -> bool:
        """Whether other tests are in flight beside ``item``."""
        return any(other is not item for other in self._in_flight)

    async def run(self, after: pytest.Item | None) -> None:
        session = self.items[0].session
        for item in self.items:
            item.stash[_BATCH] = self
        try:
            for item in self.items:
                item_plan = self._plans[item]
                while not self._may_start(item_plan):
                    await self._wait_for_change()
                if session.shouldfail or session.shouldstop or self.stopped_by_user:
                    break
                if item_plan.exclusive:
                    reporting.count_exclusive(item.config, item_plan.exclusive)
                task = asyncio.get_running_loop().create_task(self._protocol(item, after))
                self._in_flight[item] = task
                self._hold(item_plan, 1)
                task.add_done_callback(functools.partial(self._finished, item))
                # One start per turn of the loop: the tests in flight progress between starts,
                # so the first reach their waits (and end) early instead of all moving in
                # lockstep, and the next start as soon as slots free up.
                await asyncio.sleep(0)
            while self._in_flight:
                await self._wait_for_change()
        finally:
            for item in self.items:
                del item.stash[_BATCH]
        for task in self._done:  # a crash of aiotempo itself: pytest's INTERNALERROR
            task.result()

    def _may_start(self, candidate: Plan) -> bool:
        if not self._in_flight:
            return True
        if len(self._in_flight) >= self.limit or candidate.exclusive:
            return False
        if len(self._in_flight) == 1 and self._plans[next(iter(self._in_flight))].exclusive:
            return False  # an exclusive test is only ever in flight alone
        if any(self._resources[name] for name in candidate.resources):
            return False
        for name, index in candidate.params:
            held = self._params.get(name)
            if held and (len(held) > 1 or index not in held):
                return False
        return True

    def _hold(self, item_plan: Plan, sign: int) -> None:
        """Count what a test that starts (``sign`` 1) or finishes (-1) holds."""
        for name in item_plan.resources:
            self._resources[name] += sign
        for name, index in item_plan.params:
            held = self._params.setdefault(name, Counter())
            held[index] += sign
            if not held[index]:
                del held[index]

    async def _wait_for_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    def _finished(self, item: pytest.Item, task: asyncio.Task[None]) -> None:
        del self._in_flight[item]
        self._hold(self._plans[item], -1)
        self._done.append(task)
        reason = item.session.shouldfail or item.session.shouldstop
        if reason:
            self._cancel_in_flight(f"{reason} (-x/--maxfail)")
        self._changed.set()

    def stop(self, reason: str) -> None:
        """Start no more tests; cancel those in flight (they report as skipped)."""
        self.stopped_by_user = True
        self._cancel_in_flight(reason)
        self._changed.set()

    def _cancel_in_flight(self, reason: str) -> None:
        self.interrupt_in_flight(internals.skip_test(f"cancelled: {reason}"))

    def interrupt_in_flight(self, error: BaseException) -> None:
        """Make every test in flight end with ``error`` where it waits."""
        for item in self._in_flight:
            test = item.stash.get(runner.TEST_TASKS, None)
            if test is not None:
                test.interrupt(error)

    async def _protocol(self, item: pytest.Item, after: pytest.Item | None) -> None:
        def protocol() -> None:
            current_item.set(item)
            item.ihook.pytest_runtest_protocol(item=item, nextitem=after)

        start = time.perf_counter()
        await runner.spawn(protocol)
        if self._on_done is not None:
            self._on_done(item, time.perf_counter() - start)


class _BatchProtocol:
    """pytest's protocol for the tests of a batch, registered while one runs: the reports of
    each test are logged together when it ends, which keeps ``-v`` lines whole (in the order
    tests complete)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool:
        ihook = item.ihook
        reports = internals.run_test_protocol(item, nextitem)
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for report in reports:
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True


@contextlib.contextmanager
def _batch_protocol(config: pytest.Config) -> Iterator[None]:
    plugin = _BatchProtocol()
    config.pluginmanager.register(plugin)
    try:
        yield
    finally:
        config.pluginmanager.unregister(plugin)
