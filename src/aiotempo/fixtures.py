"""Async fixtures: which ones aiotempo runs, on which loop, and how pytest gets to call them.

The loop rule: a test runs on a loop that every async fixture it uses shares. Function-scoped
async fixtures run on their test's loop; a wider fixture runs on the loop of its own loop scope
(its ``loop_scope`` argument, else ``asyncio_default_fixture_loop_scope``, else its caching
scope, widened to cover its async dependencies); and a test without an explicit ``loop_scope``
runs on the widest loop its async fixtures need. Only two explicit, contradicting requests (a
test's ``loop_scope`` narrower than a fixture's ``loop_scope``) are an error.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar, overload

import pytest

from . import _pytest_internals as internals
from . import config, items, loops, reporting, runner
from .config import ScopeName

F = TypeVar("F", bound=Callable[..., Any])

# The attributes pytest_asyncio.fixture sets; sharing them lets each plugin honour the other's.
_FORCE_ATTR = "_force_asyncio_fixture"
_LOOP_SCOPE_ATTR = "_loop_scope"
_ORIGINAL_ATTR = "_aiotempo_original"

_TEST_LOOP_SCOPE = pytest.StashKey[ScopeName]()
_USES_LOOP = pytest.StashKey[bool]()
_LEGACY_EVENT_LOOP = pytest.StashKey[bool]()


@overload
def fixture(
    fixture_function: F,
    *,
    scope: Any = ...,
    loop_scope: ScopeName | None = ...,
    params: Iterable[object] | None = ...,
    autouse: bool = ...,
    ids: Any = ...,
    name: str | None = ...,
) -> F: ...


@overload
def fixture(
    fixture_function: None = ...,
    *,
    scope: Any = ...,
    loop_scope: ScopeName | None = ...,
    params: Iterable[object] | None = ...,
    autouse: bool = ...,
    ids: Any = ...,
    name: str | None = ...,
) -> Callable[[F], F]: ...


def fixture(
    fixture_function: F | None = None,
    *,
    loop_scope: ScopeName | None = None,
    **kwargs: Any,
) -> F | Callable[[F], F]:
    """Declare an asyncio fixture; the signature of ``pytest_asyncio.fixture``.

    ``loop_scope`` picks the loop the fixture runs on; the other arguments are
    ``pytest.fixture``'s.
    """
    if fixture_function is None:
        return functools.partial(fixture, loop_scope=loop_scope, **kwargs)
    target = getattr(fixture_function, "__func__", fixture_function)
    setattr(target, _FORCE_ATTR, True)
    setattr(target, _LOOP_SCOPE_ATTR, loop_scope)
    return pytest.fixture(fixture_function, **kwargs)


def _original(func: Any) -> Any:
    func = getattr(func, _ORIGINAL_ATTR, func)
    return getattr(func, "__func__", func)


def is_async_fixture(fixturedef: pytest.FixtureDef[Any]) -> bool:
    func = _original(fixturedef.func)
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def handles(fixturedef: pytest.FixtureDef[Any], item: pytest.Item) -> bool:
    """Whether aiotempo runs this fixture for ``item``.

    Unlike pytest-asyncio, strict mode also runs a plain ``@pytest.fixture`` async fixture
    when an asyncio test requests it: that is what most guides show.
    """
    if not is_async_fixture(fixturedef):
        return False
    if getattr(_original(fixturedef.func), _FORCE_ATTR, False):
        return True
    if items.claimed_by_other_framework(item):
        return False
    return items.settings(item).mode is config.Mode.AUTO or items.is_async_test(item)


def _loop_scope(
    fixturedef: pytest.FixtureDef[Any], item: pytest.Item, closure: dict[str, Any]
) -> tuple[ScopeName, bool]:
    """The fixture's loop scope and whether its decorator asked for it explicitly."""
    declared = getattr(_original(fixturedef.func), _LOOP_SCOPE_ATTR, None)
    own: ScopeName = fixturedef.scope
    default = items.settings(item).default_fixture_loop_scope or own
    scopes = [own, declared or default]
    for dependency in _dependencies(fixturedef, closure):
        if dependency.scope != "function" and handles(dependency, item):
            scopes.append(_loop_scope(dependency, item, closure)[0])
    return config.widest(scopes), declared is not None


def _dependencies(
    fixturedef: pytest.FixtureDef[Any], closure: dict[str, Sequence[pytest.FixtureDef[Any]]]
) -> Iterator[pytest.FixtureDef[Any]]:
    for argname in fixturedef.argnames:
        defs = list(closure.get(argname, ()))
        if argname == fixturedef.argname:  # an override requesting the fixture it overrides
            position = defs.index(fixturedef) if fixturedef in defs else 0
            defs = defs[:position]
        if defs:
            yield defs[-1]


def _async_fixtures(item: pytest.Item) -> Iterator[tuple[str, pytest.FixtureDef[Any]]]:
    closure = internals.closure_fixturedefs(item)
    for name in getattr(item, "fixturenames", ()):
        defs = closure.get(name)
        if defs and handles(defs[-1], item):
            yield name, defs[-1]


def uses_loop(item: pytest.Item) -> bool:
    """Whether ``item`` runs on an aiotempo loop: an async test, or one using async fixtures."""
    if _USES_LOOP not in item.stash:
        item.stash[_USES_LOOP] = items.is_async_test(item) or any(_async_fixtures(item))
    return item.stash[_USES_LOOP]


def test_loop_scope(item: pytest.Item) -> ScopeName:
    """The loop scope ``item`` runs on (see the module docstring); raises ``MarkerError``."""
    if _TEST_LOOP_SCOPE not in item.stash:
        item.stash[_TEST_LOOP_SCOPE] = _resolve_test_loop_scope(item)
    return item.stash[_TEST_LOOP_SCOPE]


def _resolve_test_loop_scope(item: pytest.Item) -> ScopeName:
    marker = items.asyncio_marker(item)
    requested = marker.loop_scope if marker is not None else None
    closure = internals.closure_fixturedefs(item)
    needed: list[ScopeName] = [items.settings(item).default_test_loop_scope]
    for name, fixturedef in _async_fixtures(item):
        scope, explicit = _loop_scope(fixturedef, item, closure)
        if requested is not None and explicit and config.is_wider(scope, requested):
            raise config.MarkerError(
                f"{item.nodeid}: @pytest.mark.asyncio(loop_scope={requested!r}) contradicts "
                f"fixture {name!r}, declared with loop_scope={scope!r}; a test and its async "
                f"fixtures must share one loop: mark the test loop_scope={scope!r} or remove "
                "one of the two loop_scope arguments"
            )
        if fixturedef.scope != "function" or explicit:
            needed.append(scope)
    return requested or config.widest(needed)


def legacy_event_loop(item: pytest.Item) -> bool:
    """Whether the suite overrides pytest-asyncio 0.21's ``event_loop`` fixture for ``item``."""
    if _LEGACY_EVENT_LOOP not in item.stash:
        defs = internals.visible_fixturedefs(item, "event_loop")
        overridden = bool(defs) and not getattr(defs[-1].func, "_aiotempo_builtin", False)
        if overridden:
            func = _original(defs[-1].func)
            reporting.notice(
                item.config,
                "the event_loop fixture is overridden; aiotempo runs async tests and fixtures on "
                "its loop, but it is deprecated (pytest-asyncio removed it in 1.0): use "
                "loop_scope markers instead",
                f"{func.__module__}.{func.__qualname__}",
            )
        item.stash[_LEGACY_EVENT_LOOP] = overridden
    return item.stash[_LEGACY_EVENT_LOOP]


def _loop_fixture_for(fixturedef: pytest.FixtureDef[Any], item: pytest.Item) -> str:
    if legacy_event_loop(item):
        return "event_loop"
    if fixturedef.scope == "function":
        return items.LOOP_FIXTURE
    closure = internals.closure_fixturedefs(item)
    return loops.scoped_loop_fixture_name(_loop_scope(fixturedef, item, closure)[0])


@contextmanager
def test_loop(
    request: pytest.FixtureRequest, policy: Any, factory: loops.LoopFactory | None
) -> Iterator[asyncio.AbstractEventLoop]:
    """The loop the requesting test runs on; current for its synchronous code."""
    item = request.node
    lease: AbstractContextManager[asyncio.AbstractEventLoop]
    if legacy_event_loop(item):
        lease = nullcontext(request.getfixturevalue("event_loop"))
    elif (scope := test_loop_scope(item)) == "function":
        lease = item.config.stash[loops.POOL].lease(policy, factory, items.settings(item).debug)
    else:
        lease = nullcontext(request.getfixturevalue(loops.scoped_loop_fixture_name(scope)))
    with lease as loop:
        loops.set_current(loop)
        try:
            yield loop
        finally:
            loops.set_current(None)
        if loop.is_closed():
            raise runner.AsyncioMisuse(
                f"{item.nodeid}: closed its event loop; aiotempo owns that loop, so leave it "
                "open (use asyncio.new_event_loop() for a private one)"
            )


@contextmanager
def run_async_fixture(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Iterator[None]:
    """Around pytest's setup of a fixture: if it is an async one of ours, run it on its loop."""
    item = internals.requesting_item(request)
    if not handles(fixturedef, item):
        yield
        return
    loop_fixture = _loop_fixture_for(fixturedef, item)
    loop = request.getfixturevalue(loop_fixture)
    internals.finish_before(request, loop_fixture, fixturedef)
    func = internals.fixture_function(fixturedef, request)
    label = f"fixture {fixturedef.argname!r}"
    wrap = _asyncgen_fixture if inspect.isasyncgenfunction(_original(func)) else _coro_fixture
    synchronous = wrap(func, loop, request, label)
    setattr(synchronous, _ORIGINAL_ATTR, fixturedef.func)
    with internals.fixture_function_replaced(fixturedef, synchronous):
        yield


def _coro_fixture(
    func: Callable[..., Any], loop: asyncio.AbstractEventLoop, request: Any, label: str
) -> Callable[..., Any]:
    async def setup(**kwargs: Any) -> tuple[Any, contextvars.Context]:
        return await func(**kwargs), contextvars.copy_context()

    def call(**kwargs: Any) -> Any:
        __tracebackhide__ = True
        value, context = runner.run(loop, setup(**kwargs), label)
        request.addfinalizer(_adopt(context))
        return value

    return call


def _asyncgen_fixture(
    func: Callable[..., Any], loop: asyncio.AbstractEventLoop, request: Any, label: str
) -> Callable[..., Any]:
    def call(**kwargs: Any) -> Any:
        __tracebackhide__ = True
        fixture = _AsyncGenFixture(func(**kwargs), loop, label)
        value, context = runner.run(loop, fixture.setup(), label)
        restore = _adopt(context)

        def finalize() -> None:
            __tracebackhide__ = True
            try:
                runner.run(loop, fixture.teardown(), label)
            finally:
                restore()

        request.addfinalizer(finalize)
        return value

    return call


class _AsyncGenFixture:
    """An async generator fixture driven by one task from setup to teardown.

    One task means one context, so a contextvar token set before ``yield`` can be reset after
    it, on every Python version.
    """

    def __init__(self, gen: Any, loop: asyncio.AbstractEventLoop, label: str) -> None:
        self._gen = gen
        self._label = label
        self._started: asyncio.Future[tuple[Any, contextvars.Context]] = loop.create_future()
        self._teardown: asyncio.Future[None] = loop.create_future()
        self._task: asyncio.Task[None] | None = None

    async def setup(self) -> tuple[Any, contextvars.Context]:
        """Run the fixture up to its ``yield``; return the value and the context it ran in."""
        self._task = asyncio.get_running_loop().create_task(self._drive())
        self._task.add_done_callback(self._forward_setup_failure)
        return await self._started

    async def _drive(self) -> None:
        try:
            value = await self._gen.__anext__()
        except StopAsyncIteration:
            raise runner.AsyncioMisuse(
                f"{self._label} returned without yielding; yield the fixture value once"
            ) from None
        self._started.set_result((value, contextvars.copy_context()))
        await self._teardown
        try:
            await self._gen.__anext__()
        except StopAsyncIteration:
            return
        await self._gen.aclose()
        raise runner.AsyncioMisuse(
            f"{self._label} yielded twice; an async generator fixture must yield exactly once"
        )

    def _forward_setup_failure(self, task: asyncio.Task[None]) -> None:
        if self._started.done():
            return
        if task.cancelled():
            self._started.cancel()
        else:
            self._started.set_exception(task.exception() or RuntimeError("fixture ended"))

    async def teardown(self) -> None:
        """Resume the fixture after its ``yield`` and wait for it to end."""
        assert self._task is not None
        self._teardown.set_result(None)
        await self._task


def _adopt(context: contextvars.Context) -> Callable[[], None]:
    """Copy contextvar changes made by a fixture into the current context; return the undo."""
    tokens = []
    for var, value in context.items():
        try:
            if var.get() is value:
                continue
        except LookupError:
            pass
        tokens.append((var, var.set(value)))

    def restore() -> None:
        while tokens:
            var, token = tokens.pop()
            var.reset(token)

    return restore
