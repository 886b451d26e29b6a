"""Event loops: which loop a test or fixture gets, reusing function-scoped ones safely.

A new selector loop (and its socketpair) per test is most of pytest-asyncio's per-test cost.
aiotempo keeps one function-scoped loop per (policy, factory) and, between tests, puts it back
in the state of a fresh loop: what the test left behind is cancelled and finalized, and the
loop's exception handler, task factory and debug flag are reset. A loop that cannot be proven
clean (closed, still running, file descriptors still registered, not a stdlib loop) is closed
and replaced instead, so reuse never weakens isolation.

Loops of wider scopes (class, module, package, session) belong to the collector node of that
scope and are closed after the teardown that finished that node, so every async fixture of the
scope has been torn down on an open loop.

Reuse reads a few private attributes of ``asyncio.BaseEventLoop`` (``_scheduled``, ``_ready``,
``_asyncgens``, ``_asyncgens_shutdown_called``, ``_selector``, ``_ssock``), stable from Python
3.10 to 3.13; ``tests/test_loops.py`` checks them.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import pluggy
import pytest

from . import _pytest_internals as internals
from . import clock, diagnostics, explore, items, reporting, runner, savings, scopes, tasks
from .config import MarkerError, ScopeName

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

#: pytest's name for the fixture carrying the loop factory chosen by parametrization.
FACTORY_FIXTURE = "_aiotempo_loop_factory"

#: A node a loop can belong to: the test itself or one of its collectors.
Node = pytest.Item | pytest.Collector


class LoopSpec(NamedTuple):
    """What a loop is made of; tests whose specs differ never share a loop.

    A tuple: a pool is looked up by its spec for every test, and a tuple's hash and equality
    cost a fraction of a dataclass's.
    """

    #: An overridden ``event_loop_policy`` fixture's policy; ``None``: asyncio's current one.
    policy: Any
    #: The ``pytest_asyncio_loop_factories`` factory the test is parametrized with.
    factory: LoopFactory | None
    virtual_clock: bool

    def new_loop(self, debug: bool) -> asyncio.AbstractEventLoop:
        if self.factory is not None:
            loop = self.factory()
        elif self.policy is not None:
            loop = self.policy.new_event_loop()
        else:
            loop = asyncio.new_event_loop()
        loop.set_debug(debug)
        if self.virtual_clock:
            try:
                clock.install(loop)
            except clock.VirtualClockError:
                close(loop)
                raise
        savings.meter(loop)
        return loop


class Lease:
    """A test's loop, from its first use to the end of the test's teardown, with what is
    checked on it: one record, looked up once per hook."""

    __slots__ = ("blocked", "leaks", "loop", "options", "owned", "spec")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        spec: LoopSpec | None,
        owned: bool,
        options: items.Options,
    ) -> None:
        self.loop = loop
        #: The spec of the pool the loop goes back to; ``None``: a scoped or batch loop.
        self.spec = spec
        #: Whether aiotempo owns the loop (not when an overridden ``event_loop`` fixture made it).
        self.owned = owned
        self.options = options
        self.leaks: diagnostics.LeakCheck | None = None
        #: The stalls the blocking watchdog noted against the test.
        self.blocked: list[str] = []


_LEASE = pytest.StashKey[Lease]()
_SWEEPER = pytest.StashKey[diagnostics.Sweeper]()
#: The test whose check may start from the lowest free descriptor the last check ended with.
_FD_PROBE = pytest.StashKey["tuple[pytest.Item | None, int | None]"]()
#: The session's blocking watchdog, started when a test first needs it.
BLOCKING = pytest.StashKey[diagnostics.BlockingWatchdog]()


def set_current(loop: asyncio.AbstractEventLoop | None) -> None:
    """Make ``loop`` what ``asyncio.get_event_loop()`` returns to synchronous code."""
    asyncio.set_event_loop(loop)


def current_policy() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.get_event_loop_policy()


def drain(loop: asyncio.AbstractEventLoop, pending: set[asyncio.Task[Any]] | None = None) -> None:
    """Cancel the tasks left on ``loop`` (``pending``, if known) and finalize its async
    generators.

    This is what ``asyncio.Runner.close()`` does before it closes the loop.
    """
    if loop.is_closed() or loop.is_running():
        return
    leftovers = asyncio.all_tasks(loop) if pending is None else pending
    tasks.cancel_and_wait(loop, leftovers, "test loop cleanup")
    if getattr(loop, "_asyncgens", True):
        loop.run_until_complete(loop.shutdown_asyncgens())


def close(loop: asyncio.AbstractEventLoop) -> None:
    """Close ``loop`` as ``asyncio.Runner`` would."""
    if loop.is_closed():
        return
    try:
        drain(loop)
        if not loop.is_running():
            loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        if not loop.is_running():
            loop.close()


#: Loop classes whose private state ``_reset_for_reuse`` knows.
_REUSABLE = (asyncio.SelectorEventLoop,)


def _reset_for_reuse(
    loop: asyncio.AbstractEventLoop, debug: bool, pending: set[asyncio.Task[Any]] | None
) -> bool:
    """Return ``loop`` to the state of a new loop, or say that it cannot be."""
    if type(loop) not in _REUSABLE or loop.is_closed() or loop.is_running():
        return False
    drain(loop, pending)
    selector_map = loop._selector.get_map()  # type: ignore[attr-defined]
    if len(selector_map) != 1 or loop._ssock.fileno() not in selector_map:  # type: ignore[attr-defined]
        return False  # a transport, server or reader is still registered
    for handle in loop._scheduled:  # type: ignore[attr-defined]
        handle.cancel()
    loop._scheduled.clear()  # type: ignore[attr-defined]
    loop._timer_cancelled_count = 0  # type: ignore[attr-defined]
    loop._ready.clear()  # type: ignore[attr-defined]
    loop._asyncgens_shutdown_called = False  # type: ignore[attr-defined]
    loop.set_exception_handler(None)
    loop.set_task_factory(None)
    loop.set_debug(debug)
    virtual_clock = clock.of(loop)
    if virtual_clock is not None:
        virtual_clock.reset()
    return True


class LoopFactorySpec:
    """pytest-asyncio's hook for offering loop factories, with the same name and meaning."""

    @pluggy.HookspecMarker("pytest")(firstresult=True)
    def pytest_asyncio_loop_factories(
        self, config: pytest.Config, item: pytest.Item
    ) -> Mapping[str, LoopFactory] | None:
        """Return named loop factories; each async test runs once per factory."""
        raise NotImplementedError


def hook_factories(config: pytest.Config, item: pytest.Item) -> dict[str, LoopFactory] | None:
    """The loop factories offered by ``pytest_asyncio_loop_factories`` implementations."""
    caller = item.ihook.pytest_asyncio_loop_factories
    if not caller.get_hookimpls():
        return None
    result = caller(config=config, item=item)
    factories = dict(result) if isinstance(result, Mapping) else {}
    if not factories or not all(
        isinstance(name, str) and name and callable(factory) for name, factory in factories.items()
    ):
        raise pytest.UsageError(
            "pytest_asyncio_loop_factories must return a non-empty mapping of factory names "
            f"to callables (got {result!r})"
        )
    return factories


def check_factories_offered(item: pytest.Item, selected: Sequence[str] | None) -> None:
    """A test selecting loop factories needs a hook that offers some."""
    if selected is not None and not item.config.hook.pytest_asyncio_loop_factories.get_hookimpls():
        raise MarkerError(
            f"{item.nodeid}: @pytest.mark.asyncio(loop_factories=...) needs a "
            "pytest_asyncio_loop_factories hook implementation (e.g. in conftest.py)"
        )


def parametrize_factories(
    metafunc: pytest.Metafunc,
    factories: Mapping[str, LoopFactory],
    selected: Sequence[str] | None,
    scope: str,
) -> None:
    """Run the test once per loop factory (or once per factory its marker selects)."""
    names = list(selected) if selected is not None else list(factories)
    params = [
        factories[name]
        if name in factories
        else pytest.param(
            None,
            marks=pytest.mark.skip(
                reason=f"loop factory {name!r} is not available; available: " + ", ".join(factories)
            ),
        )
        for name in names
    ]
    metafunc.fixturenames.append(FACTORY_FIXTURE)
    metafunc.parametrize(
        FACTORY_FIXTURE,
        params,
        ids=[pytest.HIDDEN_PARAM] if len(names) == 1 else names,
        indirect=True,
        scope=scope,  # type: ignore[arg-type]
    )


class Loops:
    """The loops of one test session: idle function-scoped ones, and one per scope node."""

    def __init__(self, debug: bool) -> None:
        self._debug = debug
        self._idle: dict[LoopSpec, list[asyncio.AbstractEventLoop]] = {}
        self._lent: set[asyncio.AbstractEventLoop] = set()
        self._scoped: dict[tuple[Node, LoopSpec], asyncio.AbstractEventLoop] = {}

    def take(self, spec: LoopSpec) -> asyncio.AbstractEventLoop:
        idle = self._idle.get(spec)
        loop = idle.pop() if idle else spec.new_loop(self._debug)
        self._lent.add(loop)
        return loop

    def give_back(
        self,
        spec: LoopSpec,
        loop: asyncio.AbstractEventLoop,
        pending: set[asyncio.Task[Any]] | None = None,
    ) -> None:
        """Take ``loop`` back, reset for the next test (``pending``: its tasks, if known)."""
        self._lent.discard(loop)
        if _reset_for_reuse(loop, self._debug, pending):
            self._idle.setdefault(spec, []).append(loop)
        else:
            close(loop)

    def scoped(self, node: Node, spec: LoopSpec) -> asyncio.AbstractEventLoop:
        loop = self._scoped.get((node, spec))
        if loop is None:
            loop = self._scoped[node, spec] = spec.new_loop(self._debug)
        return loop

    def close_finished(self, nextitem: pytest.Item | None) -> None:
        """Close the loops of scope nodes that the last teardown finished."""
        if not self._scoped:
            return
        active = set(nextitem.listchain()) if nextitem is not None else set()
        for node, spec in [k for k in self._scoped if k[0] not in active]:
            close(self._scoped.pop((node, spec)))

    def close(self) -> None:
        """Close every loop, also those a crashed run never gave back."""
        self.close_finished(None)
        while self._lent:
            close(self._lent.pop())
        for idle in self._idle.values():
            while idle:
                close(idle.pop())


LOOPS = pytest.StashKey[Loops]()


def scope_node(item: pytest.Item, scope: ScopeName) -> Node:
    """The node a loop of ``scope`` belongs to, as pytest would pick it for a fixture."""
    node: Node | None = None
    if scope == "class":
        node = item.getparent(pytest.Class) or item
    elif scope == "module":
        node = item.getparent(pytest.Module)
    elif scope == "package":
        node = item.getparent(pytest.Package)
    elif scope == "function":
        node = item
    return node or item.session


def prepare(item: pytest.Item) -> asyncio.AbstractEventLoop | None:
    """At the start of a test's setup: take its loop now, so sync fixtures see it as current;
    return it (``None``: it can only be had later).

    A loop that comes from an overridden legacy fixture can only be had once pytest sets up
    fixtures; ``event_loop`` is then moved first in line, as pytest-asyncio 0.21 did.
    """
    if scopes.overridden(item, "event_loop"):
        names = getattr(item, "fixturenames", [])
        item.fixturenames = ["event_loop", *(n for n in names if n != "event_loop")]  # type: ignore[attr-defined]
        return None
    if scopes.overridden(item, "event_loop_policy"):
        return None
    lease = item.stash.get(_LEASE, None) or _lease(item, legacy=False)
    if lease.leaks is None and lease.options.leaks != "off":
        # A loop shared with other tests (a batch's, a wider scope's), checked from here:
        # the check marks the test's context, here its own.
        lease.leaks = diagnostics.LeakCheck(lease.loop, alone=False)
    return lease.loop


def of_test(item: pytest.Item) -> asyncio.AbstractEventLoop:
    """The loop ``item`` runs on, taken on first use and current for its synchronous code."""
    lease = item.stash.get(_LEASE, None)
    return (lease or _lease(item)).loop


def _lease(item: pytest.Item, legacy: bool = True) -> Lease:
    """Take the test's loop; ``legacy``: unless overridden legacy fixtures are ruled out."""
    options = items.options(item)
    if legacy and scopes.overridden(item, "event_loop"):
        loop: asyncio.AbstractEventLoop = internals.fixture_value(item, "event_loop")
        lease = Lease(loop, None, False, options)
    else:
        scope = scopes.test_loop_scope(item)
        spec = spec_of(item, legacy)
        loops = item.config.stash[LOOPS]
        if scope == "function":
            lease = Lease(loops.take(spec), spec, True, options)
            if options.leaks != "off":
                after, lowest_free_fd = item.config.stash.get(_FD_PROBE, (None, None))
                known = lowest_free_fd if after is item else None  # saves two system calls
                lease.leaks = diagnostics.LeakCheck(lease.loop, lowest_free_fd=known)
        else:
            lease = Lease(loops.scoped(scope_node(item, scope), spec), None, True, options)
        _watch_blocking(item, lease)
    item.stash[_LEASE] = lease
    set_current(lease.loop)
    if options.seed is not None:
        explore.perturb(lease.loop, options.seed)
    return lease


def _watch_blocking(item: pytest.Item, lease: Lease) -> None:
    """Have the blocking watchdog note stalls of the test's loop against it."""
    if lease.options.blocking == "off":
        return
    blocked = lease.blocked
    _blocking_watchdog(item.config).watch(lease.loop, lambda report, _: blocked.append(report))


def _blocking_watchdog(config: pytest.Config) -> diagnostics.BlockingWatchdog:
    watchdog = config.stash.get(BLOCKING, None)
    if watchdog is None:
        threshold = items.settings_of(config).blocking_threshold
        watchdog = config.stash[BLOCKING] = diagnostics.BlockingWatchdog(threshold)
    return watchdog


def loop_if_taken(item: pytest.Item) -> asyncio.AbstractEventLoop | None:
    lease = item.stash.get(_LEASE, None)
    return lease.loop if lease is not None else None


def virtual_clock_of(item: pytest.Item, take: bool = False) -> clock.VirtualClock | None:
    """The virtual clock of the test's loop, if the loop is taken (or ``take``) and has one."""
    loop = of_test(item) if take else loop_if_taken(item)
    return clock.of(loop) if loop is not None else None


def of_fixture(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> asyncio.AbstractEventLoop:
    """The loop an async fixture runs on: its test's, or the one of its (wider) loop scope."""
    item = internals.requesting_item(request)
    if scopes.overridden(item, "event_loop"):
        loop: asyncio.AbstractEventLoop = request.getfixturevalue("event_loop")
        internals.finish_before(request, "event_loop", fixturedef)
        return loop
    if fixturedef.scope == "function":
        return of_test(item)
    node = scope_node(item, scopes.fixture_loop_scope(fixturedef, item))
    return item.config.stash[LOOPS].scoped(node, spec_of(item))


def spec_of(item: pytest.Item, legacy: bool = True) -> LoopSpec:
    """What the test's loop is made of; ``legacy``: unless an overridden policy is ruled out."""
    policy = (
        internals.fixture_value(item, "event_loop_policy")
        if legacy and scopes.overridden(item, "event_loop_policy")
        else None
    )
    callspec = getattr(item, "callspec", None)
    factory = callspec.params.get(FACTORY_FIXTURE) if callspec is not None else None
    return LoopSpec(policy, factory, items.options(item).virtual_clock)


def _blocked(item: pytest.Item, lease: Lease) -> list[str]:
    """The stalls the watchdog noted against the test, reported (``warn``) and returned."""
    blocked = list(lease.blocked)  # the watchdog's thread may still add to it
    for report in blocked:
        reporting.finding(item.config, "blocking", item.nodeid, report)
    if blocked:
        item.add_report_section("call", "aiotempo blocking", "\n".join(blocked))
    return blocked


def _leaks(
    item: pytest.Item,
    check: diagnostics.LeakCheck,
    allow: Sequence[str],
    nextitem: pytest.Item | None,
) -> list[str]:
    """What the test left behind, reported (``warn``) and returned (``error`` fails it)."""
    found = [finding for finding in check.findings() if not diagnostics.allowed(finding, allow)]
    # Nothing opens descriptors between this check and the next test's: it starts from here.
    item.config.stash[_FD_PROBE] = (nextitem, check.lowest_free_fd_after)
    if found:
        item.add_report_section("teardown", "aiotempo leaks", "\n".join(found))
        for finding in found:
            reporting.finding(item.config, "leaks", item.nodeid, finding)
    return found


def _swept(item: pytest.Item, force: bool) -> None:
    """Report what collections of older objects found (periodic full ones, ``force``d after the
    last test and a closed loop, and Python's own): in the summary only, as an earlier test may
    have left it."""
    sweeper = item.config.stash.get(_SWEEPER, None)
    if sweeper is None:
        sweeper = item.config.stash[_SWEEPER] = diagnostics.Sweeper()
    for text in sweeper.sweep(force):
        reporting.finding(
            item.config,
            "leaks",
            item.nodeid,
            f"{text} (freed by a garbage collection of older objects during or after this "
            "test: left by it or by an earlier one)",
        )


def take_for_batch(batch: Sequence[pytest.Item]) -> asyncio.AbstractEventLoop:
    """The one loop a batch of concurrent tests runs on, made each test's loop."""
    first = batch[0]
    scope = scopes.test_loop_scope(first)
    loops = first.config.stash[LOOPS]
    spec = spec_of(first)
    node = scope_node(first, scope)
    loop = loops.take(spec) if scope == "function" else loops.scoped(node, spec)
    for item in batch:
        item.stash[_LEASE] = Lease(loop, None, True, items.options(item))
    set_current(loop)
    seed = items.settings(first).seed
    if seed is not None:  # the whole batch's interleaving, reproducible
        explore.perturb(loop, seed)
    if items.options(first).blocking != "off":
        _blocking_watchdog(first.config).watch(loop, _blocked_in_batch)
    return loop


def _blocked_in_batch(report: str, context: Any) -> None:
    """A stall during a batch goes to the test whose callback was running."""
    item = context.get(runner.current_item) if context is not None else None
    lease = item.stash.get(_LEASE, None) if item is not None else None
    if lease is not None and lease.options.blocking != "off":
        lease.blocked.append(report)


def give_back_batch(
    batch: Sequence[pytest.Item], loop: asyncio.AbstractEventLoop, after: pytest.Item | None
) -> None:
    """After a batch: give its loop back (or keep its scope's) and close finished scopes."""
    loops = batch[0].config.stash[LOOPS]
    set_current(None)
    explore.restore(loop)
    if scopes.test_loop_scope(batch[0]) == "function":
        loops.give_back(spec_of(batch[0]), loop)
    loops.close_finished(after)


def release(item: pytest.Item, nextitem: pytest.Item | None, *, in_batch: bool = False) -> None:
    """After a test's teardown: return its loop, close loops of finished scopes.

    A test of a concurrent batch leaves both to the batch. Raises if the test closed its
    loop, so that the test that did it is the one reported.
    """
    lease = item.stash.get(_LEASE, None)
    loops = item.config.stash[LOOPS]
    try:
        if lease is not None:
            del item.stash[_LEASE]
            set_current(None)
            loop = lease.loop
            if not in_batch:  # a batch's perturbation lasts until the batch ends
                explore.restore(loop)
            closed_by_test = lease.owned and loop.is_closed()
            check = lease.leaks
            leaks = (
                _leaks(item, check, lease.options.allow_leaks, nextitem)
                if check and not closed_by_test
                else []
            )
            blocked = _blocked(item, lease)
            if lease.spec is not None:
                loops.give_back(lease.spec, loop, check.pending if check else None)
            if check is not None:  # a loop closed (not reusable) frees what it held: sweep then
                _swept(item, force=(nextitem is None and not in_batch) or loop.is_closed())
            if blocked and lease.options.blocking == "error":
                pytest.fail(f"{item.nodeid}: " + "\n".join(blocked), pytrace=False)
            if leaks and lease.options.leaks == "error":
                pytest.fail(
                    f"{item.nodeid} left behind (--asyncio-leaks=error):\n  " + "\n  ".join(leaks),
                    pytrace=False,
                )
            if closed_by_test:
                raise runner.AsyncioMisuse(
                    f"{item.nodeid}: closed its event loop; aiotempo owns that loop, so leave it "
                    "open (use asyncio.new_event_loop() for a private one)"
                )
    finally:
        if not in_batch:
            loops.close_finished(nextitem)
