"""The pytest plugin: wires pytest's hooks and fixtures to the modules that do the work."""

from __future__ import annotations

import asyncio
import functools
import socket
from collections.abc import Callable, Generator
from typing import Any, TypeVar

import pytest

from . import (
    __version__,
    blockbuster_layer,
    coexist,
    concurrency,
    diagnostics,
    explore,
    fixtures,
    items,
    loops,
    ports,
    reporting,
    savings,
    scopes,
    workers,
)
from . import _pytest_internals as internals
from .clock import VirtualClock, VirtualClockError, patch_time
from .clock import of as clock_of
from .config import MarkerError, add_options, read_settings
from .doubles import (  # noqa: F401  (fixtures)
    http_server,
    make_http_server,
    make_sqlite_db,
    make_tcp_server,
    sqlite_db,
    tcp_server,
)
from .items import check_unittest_method
from .runner import TEST_TASKS, TestTasks, current_test
from .timeouts import Watchdog

F = TypeVar("F", bound=Callable[..., Any])
_UNDO_PATCH = pytest.StashKey[Callable[[], None]]()
_UNDO_TIME = pytest.StashKey[Callable[[], None]]()
_WATCHDOG = pytest.StashKey[Watchdog]()
_STOP_TIMEOUT = pytest.StashKey[Callable[[], None]]()
_UNFREEZE_HEAP = pytest.StashKey[Callable[[], None]]()
#: pytest-timeout's limit for a test of a batch: from the start of its setup, or (func_only)
#: the deadline started with its function.
_PYTEST_TIMEOUT = pytest.StashKey[float]()
_STOP_PYTEST_TIMEOUT = pytest.StashKey[Callable[[], None]]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    caller = getattr(pluginmanager.hook, "pytest_asyncio_loop_factories", None)
    if caller is None or caller.spec is None:  # pytest-asyncio may have added it already
        pluginmanager.add_hookspecs(loops.LoopFactorySpec)


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    already_registered = coexist.take_over(pluginmanager)
    add_options(parser, shared=not already_registered)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before conftests import it: pytest-asyncio's recipes bind is_async_test at import.
    early_config.stash[_UNDO_PATCH] = coexist.patch_is_async_test(items.is_async_test)


def pytest_configure(config: pytest.Config) -> None:
    settings = config.stash[items.SETTINGS] = read_settings(config)
    config.stash[loops.LOOPS] = loops.Loops(settings.debug)
    config.stash[_WATCHDOG] = Watchdog()
    config.stash[savings.RECORDER] = savings.Recorder()
    if settings.seed is not None or settings.explore:
        config.pluginmanager.register(_ReplayNotice(), "aiotempo-replay")
    if settings.blockbuster:
        blockbuster_layer.register(config)
    if settings.report is not None:
        from . import timeline  # loaded only when a report is written

        timeline.register(config, settings.report)
    # Registered before pytest's own clean-ups (which run last in, first out): its final
    # collections, run to report unraisable exceptions, need not traverse the collected
    # session either.
    config.add_cleanup(lambda: config.stash.get(_UNFREEZE_HEAP, lambda: None)())
    config.addinivalue_line(
        "markers", "asyncio(loop_scope=..., loop_factories=...): run the test on an asyncio loop"
    )
    config.addinivalue_line("markers", "aiotempo(...): aiotempo's per-test settings")


def pytest_unconfigure(config: pytest.Config) -> None:
    if loops.LOOPS in config.stash:
        config.stash[loops.LOOPS].close()
        config.stash[_WATCHDOG].close()
    config.stash.get(_UNDO_PATCH, lambda: None)()


def pytest_report_header(config: pytest.Config) -> str:
    settings = config.stash[items.SETTINGS]
    replacing = coexist.installed_version()
    takeover = (
        f" (replacing pytest-asyncio {replacing}; -p no:aiotempo restores it)" if replacing else ""
    )
    return (
        f"aiotempo {__version__}{takeover}: mode={settings.mode.value}, debug={settings.debug}, "
        f"default loop scopes: fixtures={settings.default_fixture_loop_scope or 'own scope'}, "
        f"tests={settings.default_test_loop_scope}"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    definition = metafunc.definition
    runs = items.settings_of(metafunc.config).explore
    if runs and items.is_async_test(definition):
        explore.parametrize(metafunc, runs, items.settings_of(metafunc.config).seed or 0)
    if not metafunc.config.hook.pytest_asyncio_loop_factories.get_hookimpls():
        return
    if not items.is_async_test(definition):
        return
    factories = loops.hook_factories(metafunc.config, definition)
    try:
        marker = items.asyncio_marker(definition)
    except MarkerError:
        return  # reported against the test at setup
    selected = marker.loop_factories if marker else None
    if factories is None:
        return
    scope = (marker.loop_scope if marker else None) or items.settings(
        definition
    ).default_test_loop_scope
    loops.parametrize_factories(metafunc, factories, selected, scope)


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[items.COLLECTED] = None
    session.config.stash[_UNFREEZE_HEAP] = diagnostics.freeze_heap()


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """Run batches of independent async tests concurrently (``--asyncio-concurrency``)."""
    if not concurrency.wanted(session) or session.config.option.collectonly:
        return None
    session.config.pluginmanager.register(_PytestTimeoutInBatches())
    if workers.is_controller(session.config):
        return None  # pytest-xdist's controller: its workers run the tests
    reason = concurrency.forced_sequential(session.config)
    if reason is not None:
        reporting.notice(session.config, "tests ran one at a time", reason)
        return None
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        raise session.Interrupted(f"{session.testsfailed} errors during collection")
    worker = workers.interactor(session.config)
    if worker is not None:
        return workers.run(session, worker)
    if session.items:
        concurrency.run_items(session.items, None)
    if session.shouldfail:
        raise session.Failed(session.shouldfail)
    if session.shouldstop:
        raise session.Interrupted(session.shouldstop)
    return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    savings.start(item)
    if concurrency.in_batch(item):
        internals.privatize_function_fixtures(item)
    try:
        if items.validate_markers(item):
            reporting.notice(
                item.config,
                "@pytest.mark.asyncio(scope=...) is deprecated; write loop_scope=...",
                item.nodeid,
            )
        if scopes.uses_loop(item):
            _prepare_loop(item)
        _start_timeout(item)
    except MarkerError as error:
        pytest.fail(str(error), pytrace=False)
    except VirtualClockError as error:
        pytest.fail(f"{item.nodeid}: {error}", pytrace=False)


def _prepare_loop(item: pytest.Item) -> None:
    """Resolve the test's loop before its fixtures run, and make its clock the test's time."""
    marker = items.asyncio_marker(item)
    loops.check_factories_offered(item, marker.loop_factories if marker else None)
    scopes.test_loop_scope(item)
    loop = loops.prepare(item)
    virtual_clock = clock_of(loop) if loop is not None else None
    if virtual_clock is not None and items.options(item).patch_time:
        item.stash[_UNDO_TIME] = patch_time(virtual_clock)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    try:
        return (yield)
    finally:
        savings.stop(item)
        _call_once(item, _STOP_TIMEOUT)
        _call_once(item, _UNDO_TIME)
        loops.release(item, nextitem, in_batch=concurrency.in_batch(item))


def _call_once(item: pytest.Item, key: pytest.StashKey[Callable[[], None]]) -> None:
    """Call what the test stashed under ``key``, if anything, and drop it: it holds the test's
    context, which the item would otherwise keep alive to the end of the session."""
    action = item.stash.get(key, None)
    if action is not None:
        del item.stash[key]
        action()


def _start_timeout(item: pytest.Item) -> None:
    """Track the test's tasks (to interrupt them), watching its deadlines if it has any."""
    seconds = items.options(item).timeout
    if seconds is None and not concurrency.in_batch(item):
        return  # nothing can interrupt it
    test = item.stash[TEST_TASKS] = TestTasks()
    token = current_test.set(test)
    limits = {"--asyncio-timeout": seconds, "pytest-timeout": item.stash.get(_PYTEST_TIMEOUT, None)}
    stops = [_watch(item, limit, source) for source, limit in limits.items() if limit is not None]

    def stop() -> None:
        for stop_watching in stops:
            stop_watching()
        current_test.reset(token)
        # Its tasks must not outlive the test: each holds it in its context, a reference
        # cycle that would keep every task alive (and in asyncio.all_tasks()) until a full gc.
        test.tasks.clear()
        del item.stash[TEST_TASKS]

    item.stash[_STOP_TIMEOUT] = stop


def _watch(item: pytest.Item, seconds: float, source: str) -> Callable[[], None]:
    """Start a deadline for the test, whose tasks are tracked; return what stops it."""
    watchdog = item.config.stash[_WATCHDOG]
    loop = loops.loop_if_taken(item)
    deadline = watchdog.start(seconds, item, source, loop, item.stash[TEST_TASKS])
    return functools.partial(watchdog.stop, deadline)


class _PytestTimeoutInBatches:
    """pytest-timeout's alarm is one per process and cannot tell the tests of a batch apart:
    aiotempo's watchdog enforces their limits instead, so a test that overruns fails alone.
    (Registered only when tests may run concurrently: a hook costs every test.)"""

    @pytest.hookimpl(optionalhook=True)
    def pytest_timeout_set_timer(self, item: pytest.Item, settings: Any) -> bool | None:
        if not concurrency.in_batch(item):
            return None
        if TEST_TASKS in item.stash:  # func_only: called as the test function starts
            item.stash[_STOP_PYTEST_TIMEOUT] = _watch(item, settings.timeout, "pytest-timeout")
        else:  # called before the setup, where the test's deadlines start
            item.stash[_PYTEST_TIMEOUT] = settings.timeout
        return True

    @pytest.hookimpl(optionalhook=True)
    def pytest_timeout_cancel_timer(self, item: pytest.Item) -> bool | None:
        if not concurrency.in_batch(item):
            return None
        _call_once(item, _STOP_PYTEST_TIMEOUT)
        return True


@pytest.hookimpl(optionalhook=True)
def pytest_handlecrashitem(crashitem: str, report: pytest.TestReport, sched: Any) -> None:
    workers.crashed(sched.config, crashitem, report)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        check_unittest_method(item)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    # What a wider-scoped fixture creates is not the leak of the test it is set up for.
    unattributed = diagnostics.unattributed() if fixturedef.scope != "function" else None
    try:
        with fixtures.run_async_fixture(fixturedef, request):
            return (yield)
    finally:
        if unattributed is not None:
            unattributed.var.reset(unattributed)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    if not items.is_async_test(pyfuncitem):
        items.warn_if_marked_but_sync(pyfuncitem)
        return (yield)
    loop = loops.of_test(pyfuncitem)
    virtual_clock = clock_of(loop)
    if virtual_clock is not None and not concurrency.in_batch(pyfuncitem):
        virtual_clock.ignore_current_threads()  # threads its fixtures started are not its own
    undo = items.body_on_loop(pyfuncitem, loop)
    try:
        return (yield)
    finally:
        undo()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    reporting.write_summary(terminalreporter, config)


# -- fixtures ---------------------------------------------------------------------------------


def _overridable(func: F) -> F:
    """Mark an aiotempo fixture that older suites override, so overrides can be told apart."""
    setattr(func, scopes.BUILTIN_ATTR, True)
    return func


@pytest.fixture(scope="session")
@_overridable
def event_loop_policy() -> Any:
    """The policy that creates the test loops (deprecated: prefer loop factories)."""
    return loops.current_policy()


@pytest.fixture(scope="session")
def _aiotempo_loop_factory(request: pytest.FixtureRequest) -> loops.LoopFactory | None:
    """The loop factory a test is parametrized with (see ``pytest_asyncio_loop_factories``)."""
    return getattr(request, "param", None)


@pytest.fixture
def _aiotempo_seed(request: pytest.FixtureRequest) -> int:
    """The seed of one explored run of a test (see ``--asyncio-explore``)."""
    seed: int = request.param
    return seed


class _ReplayNotice:
    """Names how to replay a failed test whose interleaving was perturbed (registered only
    when seeds are in use: a report hook costs every test)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        seed = items.seed(item) if report.failed and call.when == "call" else None
        if seed is not None:
            reporting.notice(
                item.config,
                "a run with a perturbed interleaving failed (a race?); replay it with",
                explore.replay_run(item.config.invocation_params.args, seed)
                if concurrency.in_batch(item)  # it interleaved with the other tests in flight
                else explore.replay_line(item.nodeid, seed),
            )
        return report


@pytest.fixture
@_overridable
def event_loop(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoop:
    """pytest-asyncio 0.21's fixture (removed in 1.0): the loop the test runs on."""
    reporting.notice(
        request.config,
        "the event_loop fixture is deprecated (pytest-asyncio removed it in 1.0); use "
        "asyncio.get_running_loop() in async code",
        request.node.nodeid,
    )
    return loops.of_test(request.node)


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> VirtualClock:
    """The virtual clock of the test's loop: ``time``, ``advance(s)``, ``run_until_idle()``."""
    virtual_clock = loops.virtual_clock_of(request.node, take=True)
    if virtual_clock is None:
        pytest.fail(
            f"{request.node.nodeid}: the clock fixture needs the virtual clock; run with "
            "--asyncio-clock=virtual or mark the test @pytest.mark.aiotempo(clock='virtual')",
            pytrace=False,
        )
    return virtual_clock


@pytest.fixture
def unused_tcp_port() -> int:
    return ports.unused_port(socket.SOCK_STREAM)


@pytest.fixture
def unused_udp_port() -> int:
    return ports.unused_port(socket.SOCK_DGRAM)


@pytest.fixture(scope="session")
def unused_tcp_port_factory() -> Callable[[], int]:
    """A factory of unused TCP ports, never the same one twice in a session."""
    return ports.PortFactory(socket.SOCK_STREAM)


@pytest.fixture(scope="session")
def unused_udp_port_factory() -> Callable[[], int]:
    """A factory of unused UDP ports, never the same one twice in a session."""
    return ports.PortFactory(socket.SOCK_DGRAM)
