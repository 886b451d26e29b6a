"""Which loop scope each test and each async fixture runs on.

The rule: a test runs on a loop that every async fixture it uses shares. Function-scoped async
fixtures run on their test's loop; a wider fixture runs on the loop of its own loop scope (its
``loop_scope`` argument, else ``asyncio_default_fixture_loop_scope``, else its caching scope,
widened to cover its async dependencies); and a test without an explicit ``loop_scope`` runs on
the widest loop its async fixtures need. Only two explicit, contradicting requests (a test's
``loop_scope`` narrower than a fixture's ``loop_scope``) are an error.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from . import _pytest_internals as internals
from . import config, items, reporting
from .config import ScopeName

# The attributes pytest_asyncio.fixture sets; sharing them lets each plugin honour the other's.
_FORCE_ATTR = "_force_asyncio_fixture"
_LOOP_SCOPE_ATTR = "_loop_scope"
#: Set on the synchronous stand-in aiotempo gives pytest, pointing at the fixture's function.
ORIGINAL_ATTR = "_aiotempo_original"
#: Set on aiotempo's own fixtures that a suite may override (``event_loop``, the policy).
BUILTIN_ATTR = "_aiotempo_builtin"

_OVERRIDDEN = pytest.StashKey[dict[tuple[Any, str], bool]]()


def mark_asyncio_fixture(func: Callable[..., Any], loop_scope: ScopeName | None) -> None:
    target = getattr(func, "__func__", func)
    setattr(target, _FORCE_ATTR, True)
    setattr(target, _LOOP_SCOPE_ATTR, loop_scope)


def original(func: Any) -> Any:
    """The user's fixture function behind aiotempo's stand-in or a bound method."""
    func = getattr(func, ORIGINAL_ATTR, func)
    return getattr(func, "__func__", func)


def is_async_fixture(fixturedef: pytest.FixtureDef[Any]) -> bool:
    func = original(fixturedef.func)
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def handles(fixturedef: pytest.FixtureDef[Any], item: pytest.Item) -> bool:
    """Whether aiotempo runs this fixture for ``item``.

    Unlike pytest-asyncio, strict mode also runs a plain ``@pytest.fixture`` async fixture
    when an asyncio test requests it: that is what most guides show.
    """
    if not is_async_fixture(fixturedef):
        return False
    if getattr(original(fixturedef.func), _FORCE_ATTR, False):
        return True
    if items.claimed_by_other_framework(item):
        return False
    return items.settings(item).mode is config.Mode.AUTO or items.is_async_test(item)


def fixture_loop_scope(fixturedef: pytest.FixtureDef[Any], item: pytest.Item) -> ScopeName:
    return _loop_scope(fixturedef, item, internals.closure_fixturedefs(item))[0]


def _loop_scope(
    fixturedef: pytest.FixtureDef[Any],
    item: pytest.Item,
    closure: dict[str, Sequence[pytest.FixtureDef[Any]]],
) -> tuple[ScopeName, bool]:
    """The fixture's loop scope and whether its decorator asked for it explicitly."""
    declared = getattr(original(fixturedef.func), _LOOP_SCOPE_ATTR, None)
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
            defs = defs[: defs.index(fixturedef)] if fixturedef in defs else []
        if defs:
            yield defs[-1]


def _async_fixtures(
    item: pytest.Item, closure: dict[str, Sequence[pytest.FixtureDef[Any]]]
) -> Iterator[tuple[str, pytest.FixtureDef[Any]]]:
    for name in getattr(item, "fixturenames", ()):
        defs = closure.get(name)
        if defs and handles(defs[-1], item):
            yield name, defs[-1]


def async_fixtures(item: pytest.Item) -> Iterator[tuple[str, pytest.FixtureDef[Any]]]:
    """The async fixtures aiotempo runs for ``item``, by name."""
    return _async_fixtures(item, internals.closure_fixturedefs(item))


def uses_loop(item: pytest.Item) -> bool:
    """Whether ``item`` runs on an aiotempo loop: an async test, or one using async fixtures
    (asked once per test: not cached)."""
    return items.is_async_test(item) or any(async_fixtures(item))


@items.cached
def test_loop_scope(item: pytest.Item) -> ScopeName:
    """The loop scope ``item`` runs on (see the module docstring); raises ``MarkerError``."""
    marker = items.asyncio_marker(item)
    requested = marker.loop_scope if marker is not None else None
    closure = internals.closure_fixturedefs(item)
    needed: list[ScopeName] = [items.settings(item).default_test_loop_scope]
    for name, fixturedef in _async_fixtures(item, closure):
        scope, explicit = _loop_scope(fixturedef, item, closure)
        if requested is not None and explicit and config.is_wider(scope, requested):
            raise config.MarkerError(
                f"{item.nodeid}: @pytest.mark.asyncio(loop_scope={requested!r}) contradicts "
                f"fixture {name!r}, which declares its loop_scope and runs on the {scope} loop; "
                f"a test and its async fixtures must share one loop: mark the test "
                f"loop_scope={scope!r} or remove one of the two loop_scope arguments"
            )
        if fixturedef.scope != "function" or explicit:
            needed.append(scope)
    return requested or config.widest(needed)


def overridden(item: pytest.Item, name: str) -> bool:
    """Whether the suite overrides aiotempo's ``event_loop`` or ``event_loop_policy`` fixture.

    Both belong to older pytest-asyncio versions; each override is listed in the summary.
    Tests of one parent (module or class) see the same definitions, so the answer is kept
    per parent.
    """
    cache = item.config.stash.setdefault(_OVERRIDDEN, {})
    key = (item.parent, name)
    if key not in cache:
        defs = internals.visible_fixturedefs(item, name)
        cache[key] = bool(defs) and not _builtin(defs[-1])
        if cache[key]:
            func = original(defs[-1].func)
            reporting.notice(
                item.config,
                f"the {name} fixture is overridden; aiotempo honours it, but it is deprecated "
                "(pytest-asyncio 1.x): use loop_scope markers and the "
                "pytest_asyncio_loop_factories hook instead",
                f"{func.__module__}.{func.__qualname__}",
            )
    return cache[key]


def _builtin(fixturedef: pytest.FixtureDef[Any]) -> bool:
    return getattr(fixturedef.func, BUILTIN_ATTR, False)
