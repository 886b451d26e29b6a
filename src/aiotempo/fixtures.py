"""Async fixtures: declaring them, and letting pytest's synchronous fixture machinery run them.

pytest calls fixture functions synchronously and caches their values per scope. For an async
fixture aiotempo hands pytest a synchronous stand-in for one setup: it runs the coroutine (or
the async generator up to its ``yield``) on the fixture's loop, and registers the rest of the
generator as the fixture's finalizer. Everything else (caching, scopes, parametrization,
ordering, errors) stays pytest's own.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, overload

import pytest

from . import _pytest_internals as internals
from . import loops, runner, scopes
from .config import ScopeName

F = TypeVar("F", bound=Callable[..., Any])


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
    scopes.mark_asyncio_fixture(fixture_function, loop_scope)
    return pytest.fixture(fixture_function, **kwargs)


@contextmanager
def run_async_fixture(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Iterator[None]:
    """Around pytest's setup of a fixture: if it is an async one of ours, run it on its loop."""
    if not scopes.handles(fixturedef, internals.requesting_item(request)):
        with runner.explained_nested_loop(f"fixture {fixturedef.argname!r}"):
            yield
        return
    loop = loops.of_fixture(fixturedef, request)
    func = internals.fixture_function(fixturedef, request)
    label = f"fixture {fixturedef.argname!r}"
    wrap = _asyncgen_fixture if inspect.isasyncgenfunction(scopes.original(func)) else _coro_fixture
    synchronous = wrap(func, loop, request, label)
    setattr(synchronous, scopes.ORIGINAL_ATTR, fixturedef.func)
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
        self._task = asyncio.get_running_loop().create_task(self._drive(), name=self._label)
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
