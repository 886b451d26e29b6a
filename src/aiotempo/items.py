"""Which collected tests aiotempo runs, and running their bodies on the test's loop."""

from __future__ import annotations

import asyncio
import functools
import inspect
import unittest
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import pytest

from . import _pytest_internals as internals
from . import config, runner

SETTINGS = pytest.StashKey[config.Settings]()
#: Present once collection is finished: answers about an item are cached only from then on,
#: because conftests may still add markers during collection (pytest-asyncio's recipes do).
COLLECTED = pytest.StashKey[None]()

#: Markers and fixtures by which other async frameworks' plugins claim a test.
_OTHER_FRAMEWORK_MARKERS = frozenset({"anyio", "trio"})
_OTHER_FRAMEWORK_FIXTURES = frozenset({"anyio_backend"})
_WATCHED_MARKERS = frozenset({"asyncio", "aiotempo", *_OTHER_FRAMEWORK_MARKERS})

T = TypeVar("T")
ItemT = TypeVar("ItemT", bound=pytest.Item)


def cached(compute: Callable[[ItemT], T]) -> Callable[[ItemT], T]:
    """``compute(item)``, remembered for the item once collection is finished.

    The hooks of one test ask the same questions many times: a hit is two stash lookups.
    """
    key = pytest.StashKey[T]()

    def answer(item: ItemT) -> T:
        if key in item.stash:  # not a KeyError: raising one costs more than two lookups
            return item.stash[key]
        value = compute(item)
        if COLLECTED in item.config.stash:
            item.stash[key] = value
        return value

    return functools.update_wrapper(answer, compute)


def settings(item: pytest.Item) -> config.Settings:
    return item.config.stash[SETTINGS]


def settings_of(pytest_config: pytest.Config) -> config.Settings:
    return pytest_config.stash[SETTINGS]


@cached
def marks(item: pytest.Item) -> dict[str, pytest.Mark]:
    """The closest mark of each name aiotempo looks at, found in one pass."""
    found: dict[str, pytest.Mark] = {}
    for mark in item.iter_markers():
        if mark.name in _WATCHED_MARKERS:
            found.setdefault(mark.name, mark)
    return found


def claimed_by_other_framework(item: pytest.Item) -> bool:
    return not (
        _OTHER_FRAMEWORK_MARKERS.isdisjoint(marks(item))
        and _OTHER_FRAMEWORK_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))
    )


def is_unittest(item: pytest.Item) -> bool:
    return isinstance(item, internals.TestCaseFunction)


@cached
def is_async_test(item: pytest.Item) -> bool:
    """Whether aiotempo runs ``item`` as an asyncio test (``pytest_asyncio.is_async_test`` too)."""
    if SETTINGS not in item.config.stash:
        return False  # aiotempo is not active in this run
    if not isinstance(item, pytest.Function) or is_unittest(item) or _async_target(item) is None:
        return False
    if "asyncio" in marks(item):
        return True
    return settings(item).mode is config.Mode.AUTO and not claimed_by_other_framework(item)


@cached
def _async_target(item: pytest.Function) -> tuple[Any, str, bool] | None:
    """The object and attribute holding the async function that the test calls, and whether
    that function is an async generator (which no test may be).

    Usually the test function itself; for hypothesis ``@given`` tests, the inner test that
    hypothesis calls once per example.
    """
    func = item.obj
    if inspect.iscoroutinefunction(func):
        return item, "obj", False
    if inspect.isasyncgenfunction(func):
        return item, "obj", True
    inner = getattr(getattr(func, "hypothesis", None), "inner_test", None)
    if getattr(func, "is_hypothesis_test", False) and inspect.iscoroutinefunction(inner):
        return func.hypothesis, "inner_test", False
    return None


def asyncio_marker(item: pytest.Item) -> config.AsyncioMarker | None:
    """The test's validated ``asyncio`` marker; raises ``config.MarkerError`` if misused."""
    return _parsed_asyncio_marker(item)[0]


@cached
def _parsed_asyncio_marker(item: pytest.Item) -> tuple[config.AsyncioMarker | None, bool]:
    """The ``asyncio`` marker, parsed, and whether it used the deprecated ``scope=``."""
    mark = marks(item).get("asyncio")
    if mark is None:
        return None, False
    return config.parse_asyncio_marker(mark, item.nodeid)


@cached
def aiotempo_marker(item: pytest.Item) -> config.AiotempoMarker:
    """The test's validated ``aiotempo`` marker (empty if none): all its ``aiotempo`` marks,
    module to function, merged; the closest wins."""
    if "aiotempo" not in marks(item):
        return config.AiotempoMarker()
    found = list(item.iter_markers("aiotempo"))  # closest first
    merged = functools.reduce(lambda far, near: far.combined_with(near), reversed(found))
    return config.parse_aiotempo_marker(merged, item.nodeid)


class Options(NamedTuple):
    """The options one test runs with: its ``aiotempo`` marker's where it sets them, else the
    run's. Resolved once: the hooks of one test ask for them many times."""

    virtual_clock: bool
    patch_time: bool
    #: Seconds, or ``None`` for no limit.
    timeout: float | None
    #: The leak check's level: off, warn or error.
    leaks: str
    #: Texts of findings to ignore.
    allow_leaks: tuple[str, ...]
    #: The blocking check's level: off, warn or error.
    blocking: str
    #: The seed perturbing the test's interleaving, if any.
    seed: int | None


@cached
def options(item: pytest.Item) -> Options:
    """The test's options; raises ``config.MarkerError`` if its ``aiotempo`` marker is misused."""
    marker, run = aiotempo_marker(item), settings(item)
    return Options(
        virtual_clock=(marker.clock or run.clock) == "virtual",
        patch_time=run.patch_time if marker.patch_time is None else marker.patch_time,
        timeout=run.timeout if marker.timeout is None else (marker.timeout or None),
        leaks=marker.leaks or run.leaks,
        allow_leaks=marker.allow_leaks,
        blocking=marker.blocking or run.blocking,
        seed=seed(item),
    )


def seed(item: pytest.Item) -> int | None:
    """The seed that perturbs the test's interleaving (``--asyncio-explore``/``-seed``)."""
    run = settings(item)
    if run.seed is None and not run.explore:
        return None  # the usual run: no seed anywhere
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "_aiotempo_seed" in callspec.params:
        explored: int = callspec.params["_aiotempo_seed"]
        return explored
    return run.seed if is_async_test(item) else None


def validate_markers(item: pytest.Item) -> bool:
    """Check the test's markers; return whether the deprecated ``scope=`` argument was used."""
    aiotempo_marker(item)
    return _parsed_asyncio_marker(item)[1]


def check_unittest_method(item: pytest.Item) -> None:
    """Make an ``async def`` method of a plain ``unittest.TestCase``, which unittest would never
    run (and so "pass"), fail with the fix instead."""
    if not is_unittest(item):
        return
    cls = getattr(item, "cls", None)
    if issubclass(cls, unittest.IsolatedAsyncioTestCase):  # type: ignore[arg-type]
        return
    if inspect.iscoroutinefunction(getattr(cls, item.name, None)):
        message = (
            f"{item.nodeid} is 'async def' in a plain unittest.TestCase, which would never run "
            "it; derive the class from unittest.IsolatedAsyncioTestCase"
        )
        item.runtest = functools.partial(pytest.fail, message, pytrace=False)  # type: ignore[method-assign]


def warn_if_marked_but_sync(item: pytest.Item) -> None:
    if (
        isinstance(item, pytest.Function)
        and not is_unittest(item)
        and "asyncio" in marks(item)
        and _async_target(item) is None
    ):
        item.warn(
            pytest.PytestWarning(
                f"The test {item} is marked with '@pytest.mark.asyncio' but it is not an async "
                "function. Please remove the asyncio mark. If the test is not marked explicitly, "
                "check for global marks applied via 'pytestmark'."
            )
        )


def body_on_loop(item: pytest.Function, loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Let pytest's own call of the test body run it on ``loop`` instead; return what undoes
    that."""
    owner, attr, is_async_generator = _async_target(item)  # type: ignore[misc]
    if is_async_generator:
        pytest.fail(
            f"{item.nodeid} is an async generator (its body contains 'yield'); a test must "
            "not yield: move the yield into a fixture",
            pytrace=False,
        )
    func = getattr(owner, attr)
    synchronized = _synchronized(func, loop, item.nodeid)
    if attr != "obj":  # hypothesis names the inner test in its reports
        synchronized = functools.wraps(func)(synchronized)
    setattr(owner, attr, synchronized)
    return functools.partial(setattr, owner, attr, func)


def _synchronized(
    func: Callable[..., Any], loop: asyncio.AbstractEventLoop, label: str
) -> Callable[..., None]:
    def run_on_loop(*args: Any, **kwargs: Any) -> None:
        __tracebackhide__ = True
        runner.run(loop, func(*args, **kwargs), label)

    return run_on_loop
