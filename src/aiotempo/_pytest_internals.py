"""Every contact aiotempo has with pytest's private structures, in one place.

pytest has no public API for running a fixture's function differently or for asking which
fixture definition a node sees. Each function below names the private attribute it relies on;
``tests/test_pytest_internals.py`` checks each assumption against the installed pytest, so a
new pytest release breaks here, loudly, and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager
from typing import Any

import _pytest.fixtures as _fixtures
import _pytest.logging as _logging
import _pytest.runner as _runner
import _pytest.unraisableexception as _unraisable
import _pytest.warnings as _warnings
import pytest
from _pytest.fixtures import resolve_fixture_function as _resolve_fixture_function
from _pytest.outcomes import OutcomeException
from _pytest.scope import Scope as _Scope
from _pytest.unittest import TestCaseFunction as TestCaseFunction

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

#: What pytest catches from setup and teardown code (``_pytest.runner.TEST_OUTCOME``).
_TEST_OUTCOME = (OutcomeException, Exception)


def fixture_function(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    """The fixture's function, bound to the test instance for fixtures defined in a class."""
    return _resolve_fixture_function(fixturedef, request)


@contextlib.contextmanager
def fixture_function_replaced(
    fixturedef: pytest.FixtureDef[Any], replacement: Callable[..., Any]
) -> Iterator[None]:
    """Let pytest call ``replacement`` instead of the fixture's function, for one setup.

    ``FixtureDef.func`` is what pytest's own ``pytest_fixture_setup`` calls.
    """
    original = fixturedef.func
    setattr(fixturedef, "func", replacement)  # noqa: B010 (a Final attribute for type checkers)
    try:
        yield
    finally:
        setattr(fixturedef, "func", original)  # noqa: B010


def finish_before(request: Any, argname: str, fixturedef: pytest.FixtureDef[Any]) -> None:
    """Make pytest tear ``fixturedef`` down before the active fixture ``argname``.

    pytest orders teardown this way only for declared arguments; aiotempo requests the loop
    fixture dynamically, and an async fixture's teardown must run before its loop closes.
    """
    dependency = request._get_active_fixturedef(argname)
    dependency.addfinalizer(lambda: fixturedef.finish(request=request))


def requesting_item(request: pytest.FixtureRequest) -> pytest.Item:
    """The test item on whose behalf a fixture is being set up (also for wider scopes)."""
    item: pytest.Item = request._pyfuncitem
    return item


def fixture_value(item: pytest.Item, argname: str) -> Any:
    """``request.getfixturevalue`` for the item's own request, outside of any fixture."""
    return item._request.getfixturevalue(argname)  # type: ignore[attr-defined]


def visible_fixturedefs(node: pytest.Item, argname: str) -> Sequence[pytest.FixtureDef[Any]]:
    """The definitions of ``argname`` that ``node`` sees, closest (the one used) last."""
    return node.session._fixturemanager.getfixturedefs(argname, node) or ()


def closure_fixturedefs(item: pytest.Item) -> dict[str, Sequence[pytest.FixtureDef[Any]]]:
    """Fixture definitions of every name in the item's fixture closure."""
    info = getattr(item, "_fixtureinfo", None)
    return dict(info.name2fixturedefs) if info is not None else {}


# -- concurrency: making pytest's per-test state per test while tests overlap ------------------


def skip_test(reason: str) -> BaseException:
    """The exception that reports a test as skipped at the test's own location."""
    return pytest.skip.Exception(reason, _use_item_location=True)


def setup_stack(session: pytest.Session) -> dict[Any, Any]:
    """The active nodes of pytest's ``SetupState`` (a dict in setup order)."""
    stack: dict[Any, Any] = session._setupstate.stack
    return stack


def run_test_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> list[pytest.TestReport]:
    """pytest's protocol for one test, without logging its reports (the caller logs them)."""
    return _runner.runtestprotocol(item, log=False, nextitem=nextitem)


def privatize_function_fixtures(item: pytest.Item) -> None:
    """Give a test its own copies of function-scoped fixture definitions.

    A ``FixtureDef`` caches one value and one finalizer list: two tests in flight would share
    them. The test's request (``TopRequest._arg2fixturedefs``, passed on to every sub-request)
    is pointed at private copies; wider-scoped definitions stay shared.
    """
    request = item._request  # type: ignore[attr-defined]
    request._arg2fixturedefs = _PrivateFixtureDefs(item, request._arg2fixturedefs)


class _PrivateFixtureDefs(dict[str, Sequence[pytest.FixtureDef[Any]]]):
    """A test's fixture definitions by name, function-scoped ones private, also for fixtures
    it asks for by name at run time (``request.getfixturevalue``): pytest looks those up with
    ``_arg2fixturedefs.get`` and falls back to the shared definitions."""

    def __init__(self, item: pytest.Item, declared: dict[str, Any]) -> None:
        super().__init__((name, _privatized(defs)) for name, defs in declared.items())
        self._item = item

    def get(self, argname: str, default: Any = None) -> Any:
        found = super().get(argname)
        if found is None:
            manager = self._item.session._fixturemanager
            shared = manager.getfixturedefs(argname, self._item)
            if shared is None:
                return default
            found = self[argname] = _privatized(shared)
        return found


def _privatized(defs: Sequence[pytest.FixtureDef[Any]]) -> list[pytest.FixtureDef[Any]]:
    return [_private_copy(d) if d.scope == "function" else d for d in defs]


def _private_copy(fixturedef: pytest.FixtureDef[Any]) -> pytest.FixtureDef[Any]:
    private = copy.copy(fixturedef)
    private.cached_result = None
    private._finalizers = []  # type: ignore[misc]
    return private


def wider_scoped_params(item: pytest.Item) -> Iterator[tuple[str, int]]:
    """(name, index) of each parameter the test gets from a wider-scoped parametrization."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return
    for name, scope in callspec._arg2scope.items():
        if scope is not _Scope.Function and name in callspec.indices:
            yield name, callspec.indices[name]


class ConcurrentSetupState:
    """pytest's ``SetupState`` for tests in flight at the same time.

    pytest's keeps a single chain of active nodes, asserting that each test descends from all
    of them. This one keeps the collectors the tests in flight share, plus one leaf per test;
    a collector is torn down once the last test of the batch under it is done and the test
    after the batch does not need it. It works on pytest's own stack, so that the state after
    the batch is the one pytest expects.
    """

    def __init__(
        self,
        stack: dict[Any, Any],
        batch: Sequence[pytest.Item],
        after: pytest.Item | None,
        current_item: Callable[[], pytest.Item | None],
    ) -> None:
        self.stack = stack
        self._current_item = current_item
        self._kept = set(after.listchain()) if after is not None else set()
        self._remaining: Counter[Any] = Counter(
            node for item in batch for node in item.listchain()[:-1]
        )

    def is_node_active(self, node: Any) -> bool:
        return node in self.stack

    def setup(self, item: pytest.Item) -> None:
        for node in item.listchain():
            if node in self.stack:
                exc = self.stack[node][1]
                if exc:
                    raise exc[0].with_traceback(exc[1])
                continue
            self.stack[node] = ([node.teardown], None)
            try:
                node.setup()
            except _TEST_OUTCOME as exc:
                self.stack[node] = (self.stack[node][0], (exc, exc.__traceback__))
                raise

    def addfinalizer(self, finalizer: Callable[[], object], node: Any) -> None:
        assert node in self.stack, (node, self.stack)
        self.stack[node][0].append(finalizer)

    def teardown_exact(self, nextitem: pytest.Item | None) -> None:
        item = self._current_item()
        assert item is not None, "teardown outside of a test in flight"
        done: list[Any] = [item]
        for node in reversed(item.listchain()[:-1]):
            self._remaining[node] -= 1
            if self._remaining[node] == 0 and node not in self._kept:
                done.append(node)
        errors: list[BaseException] = []
        for node in done:
            finalizers, _ = self.stack.pop(node, ([], None))
            while finalizers:
                try:
                    finalizers.pop()()
                except _TEST_OUTCOME as error:
                    errors.append(error)
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise BaseExceptionGroup(f"errors while tearing down {item!r}", errors[::-1])


@contextlib.contextmanager
def concurrent_session(
    session: pytest.Session, state: ConcurrentSetupState, wait_for: Callable[[Any], None]
) -> Iterator[None]:
    """While a batch runs: its setup state, one setup per shared fixture, a tolerant env var.

    ``wait_for(future)`` suspends the calling test until ``future`` is done.
    """
    original_state = session._setupstate
    original_execute = _fixtures.FixtureDef.execute
    original_update = _runner._update_current_test_var
    in_setup: dict[Any, Any] = {}

    def execute(fixturedef: Any, request: Any) -> Any:
        if fixturedef.scope == "function":
            return original_execute(fixturedef, request)
        while fixturedef in in_setup:  # another test is setting it up: wait, then use it
            wait_for(in_setup[fixturedef])
        # Even a cached value may be torn down and set up anew (another parameter), so the
        # definition is held while pytest executes it; a cache hit never waits.
        done = asyncio.get_running_loop().create_future()
        in_setup[fixturedef] = done
        try:
            return original_execute(fixturedef, request)
        finally:
            del in_setup[fixturedef]
            done.set_result(None)

    def update_current_test_var(item: pytest.Item, when: str | None) -> None:
        if when is not None or "PYTEST_CURRENT_TEST" in os.environ:
            original_update(item, when)  # type: ignore[arg-type]

    session._setupstate = state  # type: ignore[assignment]
    _fixtures.FixtureDef.execute = execute  # type: ignore[method-assign,assignment]
    _runner._update_current_test_var = update_current_test_var
    try:
        yield
    finally:
        session._setupstate = original_state
        _fixtures.FixtureDef.execute = original_execute  # type: ignore[method-assign]
        _runner._update_current_test_var = original_update


@contextlib.contextmanager
def per_test_reporting(
    config: pytest.Config,
    item_capture: Callable[[str, pytest.Item], ContextManager[None]],
    item_logging: Callable[[Any, pytest.Item, str], ContextManager[None]],
    item_warnings: Callable[..., ContextManager[None]],
) -> Iterator[None]:
    """Replace pytest's per-phase capture, log capture and warning capture for a batch.

    Each of them swaps process-wide state per test phase (``CaptureManager.item_capture``,
    ``LoggingPlugin._runtest_for``, ``_pytest.warnings.catch_warnings_for_item``); the
    replacements route by the test whose code runs instead.
    """
    capman = config.pluginmanager.getplugin("capturemanager")
    logging_plugin = config.pluginmanager.getplugin("logging-plugin")
    original_warnings = _warnings.catch_warnings_for_item
    if capman is not None:
        capman.item_capture = item_capture
    if logging_plugin is not None:
        logging_plugin._runtest_for = lambda item, when: item_logging(logging_plugin, item, when)
    _warnings.catch_warnings_for_item = item_warnings  # type: ignore[assignment]
    try:
        yield
    finally:
        if capman is not None:
            del capman.item_capture
        if logging_plugin is not None:
            del logging_plugin._runtest_for
        _warnings.catch_warnings_for_item = original_warnings


def original_catch_warnings_for_item() -> Callable[..., ContextManager[None]]:
    return _warnings.catch_warnings_for_item


#: pytest's log capture pieces, for the per-test replacement of ``_runtest_for``.
LogCaptureHandler = _logging.LogCaptureHandler
catching_logs = _logging.catching_logs
caplog_records_key = _logging.caplog_records_key
caplog_handler_key = _logging.caplog_handler_key


def unraisable_queue(config: pytest.Config) -> Any:
    """pytest's queue of unraisable exceptions that no test phase has collected yet (a
    ``deque``), or ``None`` when its ``unraisableexception`` plugin is disabled."""
    return config.stash.get(_unraisable.unraisable_exceptions, None)


@contextlib.contextmanager
def unraisable_queue_replaced(config: pytest.Config, queue: Any) -> Iterator[None]:
    """Let ``queue`` stand for pytest's queue of unraisable exceptions.

    pytest's ``sys.unraisablehook`` appends to the queue (``unraisable_hook`` with ``append``)
    and each test phase ends by popping it empty and warning about each entry
    (``collect_unraisable``, which reads the queue from ``config.stash``).
    """
    key = _unraisable.unraisable_exceptions
    original, hook = config.stash[key], sys.unraisablehook
    config.stash[key] = queue
    sys.unraisablehook = functools.partial(_unraisable.unraisable_hook, append=queue.append)
    try:
        yield
    finally:
        sys.unraisablehook = hook
        config.stash[key] = original
