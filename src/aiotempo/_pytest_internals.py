"""Every contact aiotempo has with pytest's private structures, in one place.

pytest has no public API for running a fixture's function differently or for asking which
fixture definition a node sees. Each function below names the private attribute it relies on;
``tests/test_pytest_internals.py`` checks each assumption against the installed pytest, so a
new pytest release breaks here, loudly, and nowhere else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from _pytest.fixtures import resolve_fixture_function as _resolve_fixture_function


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
