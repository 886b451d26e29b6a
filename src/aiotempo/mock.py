"""Test doubles for asyncio code, for the shapes ``unittest.mock.AsyncMock`` handles poorly.

``AsyncMock`` covers ``await obj.method()``. It is awkward for what else asyncio code does with
its collaborators: ``async for`` over a stream (a ``MagicMock`` yields nothing, and configuring
it is ``m.return_value.__aiter__.return_value = [...]``), ``async with`` on what a call returns
(the call gives a fresh mock whose ``__aenter__`` nobody configured), slow, flaky and hanging
calls, and the order in which concurrent awaits start and finish. This module adds:

- ``AsyncIterMock``: ``async for`` yields given items, with an optional delay before each and an
  optional exception after them;
- ``AsyncContextMock``: ``async with`` returns a given value or raises, and records each exit;
- ``delayed``, ``flaky`` and ``hang``: side effects for ``AsyncMock`` that answer late, fail the
  first N times, or never answer;
- ``AwaitRecorder``: when the awaits of several mocks started and finished, to assert their order;
- ``create_autospec``: ``unittest.mock.create_autospec`` that also gives async generator methods,
  ``@asynccontextmanager`` methods, and methods annotated to return an async iterator or an async
  context manager the two mocks above, with the signature checks of the original.

They are ``unittest.mock`` objects: they record calls, take the usual constructor arguments
(``name``, ``spec``, ``return_value``...) and work as ``new=`` or ``new_callable=`` in ``patch``
and pytest-mock's ``mocker.patch``. Delays are ``asyncio.sleep`` calls, so a virtual clock makes
them instant. Bad arguments raise at construction, naming the argument and the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import math
import types
import typing
import unittest.mock
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any, ClassVar, NoReturn, TypeVar
from unittest.mock import DEFAULT, MagicMock

__all__ = [
    "AsyncContextMock",
    "AsyncIterMock",
    "AwaitRecorder",
    "create_autospec",
    "delayed",
    "flaky",
    "hang",
]

Exc = BaseException | type[BaseException]
SideEffect = Callable[..., Coroutine[Any, Any, Any]]
T = TypeVar("T")
M = TypeVar("M")
_Base = TypeVar("_Base", bound="_AsyncShapeMock")

_ASYNC_MAGICS = frozenset({"__aenter__", "__aexit__", "__anext__"})
_END = object()


# -- argument checks: each names the argument, what was wrong, and the fix --------------------


def _seconds(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} must be a number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{where} cannot be negative (got {value!r}); pass 0 for no delay")
    if not math.isfinite(value):
        raise ValueError(
            f"{where} must be finite (got {value!r}); "
            "for an await that never completes, use aiotempo.mock.hang()"
        )
    return float(value)


def _exception(value: object, where: str) -> Exc:
    if isinstance(value, BaseException) or (
        isinstance(value, type) and issubclass(value, BaseException)
    ):
        return value
    raise TypeError(
        f"{where} must be an exception class or instance, such as ConnectionError or "
        f"ConnectionError('reset'), got {value!r}"
    )


def _optional_exception(value: object, where: str) -> Exc | None:
    return None if value is None else _exception(value, where)


def _items(value: object) -> list[Any]:
    where = "AsyncIterMock: items"
    if isinstance(value, str | bytes | bytearray):
        raise TypeError(
            f"{where} is a {type(value).__name__}, which would yield it piece by piece; "
            f"pass a list of the items to yield, such as [{value!r}]"
        )
    try:
        iterator = iter(value)  # type: ignore[call-overload]
    except TypeError:
        hint = (
            "an async iterable cannot be copied up front; pass a list of its items"
            if hasattr(value, "__aiter__")
            else f"to yield a single item, wrap it in a list: [{value!r}]"
        )
        raise TypeError(
            f"{where} must be an iterable such as a list, got {type(value).__name__} "
            f"{value!r}; {hint}"
        ) from None
    return list(iterator)


# -- the two mocks -----------------------------------------------------------------------------


class _AsyncShapeMock(MagicMock):
    """What AsyncIterMock and AsyncContextMock share as ``MagicMock`` subclasses."""

    #: Settings that stay settable after construction, even on a ``spec_set`` mock.
    _settings: ClassVar[frozenset[str]] = frozenset()

    def __new__(cls: type[_Base], *args: Any, **kwargs: Any) -> _Base:
        # NonCallableMock.__new__ takes a first positional argument for a spec (and would make
        # the mock awaitable if it looked async); our first argument is never a spec.
        instance: _Base = super().__new__(cls, **kwargs)
        type(instance).__module__ = cls.__module__  # not unittest.mock's, where it was made
        return instance

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._settings:
            object.__setattr__(self, name, value)  # the validating property
        else:
            super().__setattr__(name, value)

    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        signature: inspect.Signature | None = self.__dict__.get("_aiotempo_signature")
        if signature is not None:
            signature.bind(*args, **kwargs)  # TypeError, as from an autospec'd method
        return super().__call__(*args, **kwargs)

    def _get_child_mock(self, /, **kw: Any) -> Any:
        # A Mock subclass's attributes are made of its own class by default: an AsyncIterMock's
        # attributes would be AsyncIterMocks. Make them what a MagicMock's would be.
        name = kw.get("_new_name")
        if (
            self._mock_sealed
            or name in _ASYNC_MAGICS
            or name in self.__dict__.get("_spec_asyncs", ())
        ):
            return super()._get_child_mock(**kw)
        return MagicMock(**kw)


class _AsyncItems:
    """One pass over an AsyncIterMock's items: what ``async for`` drives."""

    def __init__(self, items: list[Any], delay: float, raises: Exc | None) -> None:
        self._items: Iterator[Any] = iter(list(items))
        self._delay = delay
        self._raises = raises

    def __aiter__(self) -> _AsyncItems:
        return self

    async def __anext__(self) -> Any:
        item = next(self._items, _END)
        error = self._raises if item is _END else None
        if item is _END and error is None:
            raise StopAsyncIteration
        if self._delay:
            await asyncio.sleep(self._delay)
        if error is not None:
            self._raises = None  # raised once; the pass is over
            raise error
        return item

    async def aclose(self) -> None:
        """Stop early, as ``aclose()`` on an async generator does."""
        self._items, self._raises = iter(()), None


class AsyncIterMock(_AsyncShapeMock):
    """A mock to ``async for`` over: it yields ``items``, then raises ``raises`` if given.

    ``delay`` seconds pass before each item (and before the exception). ``async for x in mock``
    and ``async for x in mock(...)`` both work and each starts from the first item, so it stands
    in for an async generator method as well as for an async iterable attribute; calls are
    recorded as on any mock. ``items``, ``delay`` and ``raises`` can be changed later.
    """

    _settings = frozenset({"items", "delay", "raises"})

    def __init__(
        self,
        items: Iterable[Any] = (),
        *,
        delay: float = 0,
        raises: Exc | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.items = items
        self.delay = delay
        self.raises = raises
        if "side_effect" not in kwargs:
            self.side_effect = self._iterate
        self.__aiter__.side_effect = self._iterate

    @property
    def items(self) -> list[Any]:
        """What each pass yields (a copy of the iterable given)."""
        items: list[Any] = self.__dict__["_aiotempo_items"]
        return items

    @items.setter
    def items(self, value: Iterable[Any]) -> None:
        self.__dict__["_aiotempo_items"] = _items(value)

    @property
    def delay(self) -> float:
        """Seconds to wait before each item."""
        delay: float = self.__dict__["_aiotempo_delay"]
        return delay

    @delay.setter
    def delay(self, value: float) -> None:
        self.__dict__["_aiotempo_delay"] = _seconds(value, "AsyncIterMock: delay")

    @property
    def raises(self) -> Exc | None:
        """The exception raised after the items, or None to just stop."""
        raises: Exc | None = self.__dict__["_aiotempo_raises"]
        return raises

    @raises.setter
    def raises(self, value: Exc | None) -> None:
        self.__dict__["_aiotempo_raises"] = _optional_exception(value, "AsyncIterMock: raises")

    def _iterate(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        return _AsyncItems(self.items, self.delay, self.raises)


class AsyncContextMock(_AsyncShapeMock):
    """A mock to ``async with``: entering gives ``enter_result`` or raises ``raises``.

    Calling the mock returns the mock itself, so it stands in for a method such as
    ``session.get(url)`` as well as for the context manager. ``__aenter__`` and ``__aexit__``
    are ``AsyncMock``s as on any ``MagicMock``; ``enter_count``, ``exit_count`` and
    ``exit_args`` read what they recorded. Without ``enter_result``, entering gives a child
    mock, as ``MagicMock`` does. ``enter_result`` and ``raises`` can be changed later.
    """

    _settings = frozenset({"enter_result", "raises"})

    def __init__(
        self, enter_result: Any = DEFAULT, *, raises: Exc | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if "return_value" not in kwargs:
            self.return_value = self
        self.enter_result = enter_result
        self.raises = raises

    @property
    def enter_result(self) -> Any:
        """What ``async with mock as value`` binds to ``value``."""
        return self.__aenter__.return_value

    @enter_result.setter
    def enter_result(self, value: Any) -> None:
        self.__aenter__.return_value = value

    @property
    def raises(self) -> Exc | None:
        """The exception entering raises, or None."""
        raises: Exc | None = self.__aenter__.side_effect
        return raises

    @raises.setter
    def raises(self, value: Exc | None) -> None:
        self.__aenter__.side_effect = _optional_exception(value, "AsyncContextMock: raises")

    @property
    def enter_count(self) -> int:
        """How many times it was entered (an enter that raised counts)."""
        count: int = self.__aenter__.await_count
        return count

    @property
    def exit_count(self) -> int:
        """How many times it was exited."""
        count: int = self.__aexit__.await_count
        return count

    @property
    def exit_args(self) -> list[tuple[Any, Any, Any]]:
        """``(exc_type, exc, traceback)`` of each exit, all None for an exit without error."""
        return [tuple(awaited.args) for awaited in self.__aexit__.await_args_list]


# -- side effects for AsyncMock ----------------------------------------------------------------


def delayed(
    seconds: float, return_value: Any = DEFAULT, *, raises: Exc | None = None
) -> SideEffect:
    """A side effect that returns ``return_value`` (or raises ``raises``) after ``seconds``.

    For ``AsyncMock(side_effect=...)``. Left at ``DEFAULT``, ``return_value`` leaves the answer
    to the mock's own ``return_value``, as any side effect returning ``DEFAULT`` does.
    """
    delay = _seconds(seconds, "delayed(): seconds")
    error = _optional_exception(raises, "delayed(): raises")
    if error is not None and return_value is not DEFAULT:
        raise TypeError("delayed(): pass return_value or raises, not both")

    async def answer_late(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(delay)
        if error is not None:
            raise error
        return return_value

    return answer_late


def flaky(failures: int, exception: Exc, return_value: Any = DEFAULT) -> SideEffect:
    """A side effect that raises ``exception`` on its first ``failures`` calls, then succeeds.

    For ``AsyncMock(side_effect=...)``, to test retries. Unlike a ``side_effect`` list it keeps
    succeeding, with ``return_value`` (left at ``DEFAULT``: the mock's own ``return_value``).
    """
    if isinstance(failures, bool) or not isinstance(failures, int):
        raise TypeError(f"flaky(): failures must be a whole number of calls, got {failures!r}")
    if failures < 0:
        raise ValueError(
            f"flaky(): failures cannot be negative (got {failures!r}); "
            "pass 0 for a side effect that never fails"
        )
    error = _exception(exception, "flaky(): exception")
    remaining = failures

    async def fail_then_succeed(*args: Any, **kwargs: Any) -> Any:
        nonlocal remaining
        if remaining > 0:
            remaining -= 1
            raise error
        return return_value

    return fail_then_succeed


def hang() -> SideEffect:
    """A side effect that never completes: awaiting it waits until it is cancelled.

    For ``AsyncMock(side_effect=hang())``, to test timeouts and cancellation.
    """

    async def wait_forever(*args: Any, **kwargs: Any) -> NoReturn:
        await asyncio.get_running_loop().create_future()  # nothing ever resolves it
        raise AssertionError("unreachable")

    return wait_forever


# -- await order -------------------------------------------------------------------------------


class AwaitRecorder:
    """Records when the awaits of the ``AsyncMock``s it tracks start and finish.

    ``started``, ``completed`` and ``cancelled`` list the awaits as ``call.NAME(args...)``, in
    the order they started, completed (returned or raised) or were cancelled; the assertions
    compare those orders across mocks, which ``await_args_list`` (one mock, start order only)
    cannot.
    """

    def __init__(self) -> None:
        self.started: list[unittest.mock._Call] = []
        self.completed: list[unittest.mock._Call] = []
        self.cancelled: list[unittest.mock._Call] = []

    def track(self, mock: M, name: str) -> M:
        """Record the awaits of ``mock`` (an ``AsyncMock``) under ``name``; return ``mock``."""
        if not isinstance(name, str) or not name:
            raise TypeError(f"AwaitRecorder.track(): name must be a non-empty str, got {name!r}")
        # create_autospec(async_function) gives a function wrapping the mock as its .mock
        inner = getattr(mock, "mock", mock) if isinstance(mock, types.FunctionType) else mock
        if not isinstance(inner, unittest.mock.AsyncMockMixin):
            raise TypeError(
                f"AwaitRecorder.track(): {name!r} must be an AsyncMock (or a mock with an async "
                f"spec), got {type(mock).__name__}; create it with AsyncMock(...)"
            )
        # Each mock has a class of its own, so this changes how this one mock is called.
        mock_class = type(inner)
        call_mock = mock_class.__call__
        record_call = getattr(unittest.mock.call, name)

        def recorded_call(tracked: Any, /, *args: Any, **kwargs: Any) -> Any:
            awaitable = call_mock(tracked, *args, **kwargs)  # checks the signature, records
            return self._watch(record_call(*args, **kwargs), awaitable)

        mock_class.__call__ = recorded_call  # type: ignore[method-assign]
        return mock

    async def _watch(self, record: unittest.mock._Call, awaitable: Awaitable[T]) -> T:
        self.started.append(record)
        try:
            result = await awaitable
        except asyncio.CancelledError:
            self.cancelled.append(record)
            raise
        except BaseException:
            self.completed.append(record)
            raise
        self.completed.append(record)
        return result

    def assert_awaited_in_order(self, *expected: str | unittest.mock._Call) -> None:
        """Assert that exactly these awaits started, in this order.

        Each is a name (any arguments) or a call such as ``call.fetch(1)``.
        """
        __tracebackhide__ = True
        _assert_order("started", self.started, expected)

    def assert_completed_in_order(self, *expected: str | unittest.mock._Call) -> None:
        """Assert that exactly these awaits completed (returned or raised), in this order."""
        __tracebackhide__ = True
        _assert_order("completed", self.completed, expected)


def _assert_order(
    what: str, actual: list[unittest.mock._Call], expected: tuple[str | unittest.mock._Call, ...]
) -> None:
    __tracebackhide__ = True
    for item in expected:
        if not isinstance(item, str | tuple):
            raise TypeError(
                f"expected awaits are names or calls such as call.fetch(1), got {item!r}"
            )

    def matches(want: str | unittest.mock._Call, got: unittest.mock._Call) -> bool:
        return got[0] == want if isinstance(want, str) else bool(want == got)

    if len(actual) == len(expected) and all(map(matches, expected, actual)):
        return
    shown = ", ".join(item if isinstance(item, str) else repr(item) for item in expected)
    raise AssertionError(
        f"awaits {what} in another order than expected\n"
        f"Expected: {shown or '(none)'}\n"
        f"Actual:   {', '.join(map(repr, actual)) or '(none)'}"
    )


# -- autospec ----------------------------------------------------------------------------------


async def _sample() -> AsyncIterator[None]:
    yield None


_ASYNCCONTEXTMANAGER_CODE = typing.cast(
    types.FunctionType, contextlib.asynccontextmanager(_sample)
).__code__


def create_autospec(
    spec: Any, spec_set: bool = False, instance: bool = False, **kwargs: Any
) -> Any:
    """``unittest.mock.create_autospec``, knowing async iterators and async context managers.

    Async methods are ``AsyncMock``s, as with unittest.mock. In addition these become an
    ``AsyncIterMock``: async generator methods, and methods and properties annotated to return
    an async iterator; these an ``AsyncContextMock``: ``@asynccontextmanager`` methods, and
    methods and properties annotated to return an async context manager. Calls are checked
    against the method's signature. An async method annotated to return either gets one as the
    ``return_value`` of its ``AsyncMock``. ``spec`` may also be such a function itself.
    """
    if isinstance(spec, types.FunctionType):
        shape = _shape_of_function(spec)
        if shape is not None:
            mock = shape(**kwargs)
            _check_calls(mock, _signature(spec, drop_first=False))
            return mock
    mock = unittest.mock.create_autospec(spec, spec_set, instance, **kwargs)
    _upgrade_members(mock, spec)
    if isinstance(spec, type) and not instance and "return_value" not in kwargs:
        _upgrade_members(mock.return_value, spec)
    return mock


def _upgrade_members(mock: Any, spec: Any) -> None:
    """Replace the plain mocks unittest.mock made for async-iterator and async-CM members."""
    for name in dir(spec):
        if name.startswith("__") and name.endswith("__"):
            continue  # magic methods: MagicMock handles them
        try:
            raw = inspect.getattr_static(spec, name)
        except AttributeError:
            continue
        if isinstance(raw, property | functools.cached_property):
            getter = raw.fget if isinstance(raw, property) else raw.func
            shape = _shape_of_return(getter) if getter is not None else None
            if shape is not None:
                mock.attach_mock(shape(), name)
            continue
        function = raw.__func__ if isinstance(raw, staticmethod | classmethod) else raw
        if not isinstance(function, types.FunctionType):
            continue
        if inspect.iscoroutinefunction(function):
            shape = _shape_of_return(function)
            if shape is not None:
                getattr(mock, name).return_value = shape()
            continue
        shape = _shape_of_function(function)
        if shape is None:
            continue
        child = shape()
        # As unittest.mock's autospec: a method looked up on a class or on an instance of it
        # does not take self (cls for a classmethod); a staticmethod or a function stored on
        # the instance itself takes all its parameters.
        on_instance = not isinstance(spec, type) and name in getattr(spec, "__dict__", {})
        drop_first = not on_instance and not isinstance(raw, staticmethod)
        _check_calls(child, _signature(function, drop_first))
        mock.attach_mock(child, name)


def _shape_of_function(function: Callable[..., Any]) -> type[_AsyncShapeMock] | None:
    if _made_by_asynccontextmanager(function):
        return AsyncContextMock
    if inspect.isasyncgenfunction(function):
        return AsyncIterMock
    if inspect.iscoroutinefunction(function):
        return None
    return _shape_of_return(function)


def _made_by_asynccontextmanager(function: Callable[..., Any]) -> bool:
    def made(candidate: Any) -> bool:
        return getattr(candidate, "__code__", None) is _ASYNCCONTEXTMANAGER_CODE

    try:
        return made(inspect.unwrap(function, stop=made))
    except ValueError:  # a __wrapped__ cycle
        return False


def _shape_of_return(function: Callable[..., Any]) -> type[_AsyncShapeMock] | None:
    """The mock for what ``function`` is annotated to return, if it is async-shaped."""
    try:
        hint = typing.get_type_hints(function).get("return")
    except Exception:  # an annotation that cannot be resolved here: not ours to judge
        hint = getattr(function, "__annotations__", {}).get("return")
    origin = typing.get_origin(hint) or hint
    if not isinstance(origin, type):
        return None
    if hasattr(origin, "__aenter__"):
        return AsyncContextMock
    if hasattr(origin, "__aiter__"):
        return AsyncIterMock
    return None


def _signature(function: Callable[..., Any], drop_first: bool) -> inspect.Signature | None:
    try:
        signature = inspect.signature(function)  # follows __wrapped__ to the generator
    except (TypeError, ValueError):
        return None
    parameters = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if drop_first and parameters and parameters[0].kind in positional:
        signature = signature.replace(parameters=parameters[1:])
    return signature


def _check_calls(mock: _AsyncShapeMock, signature: inspect.Signature | None) -> None:
    if signature is None:
        return
    mock.__dict__["_aiotempo_signature"] = signature
    type(mock).__signature__ = signature  # what inspect.signature(mock) reports, as in autospec
