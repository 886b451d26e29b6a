"""Event loops: creating them, reusing function-scoped ones safely, and closing them.

A new selector loop (and its socketpair) per test is most of pytest-asyncio's per-test cost.
aiotempo keeps one function-scoped loop per (policy, factory) and, between tests, puts it back
in the state of a fresh loop: what the test left behind is cancelled and finalized, and the
loop's exception handler, task factory and debug flag are reset. A loop that cannot be proven
clean (closed, still running, file descriptors still registered, not a stdlib loop) is closed
and replaced instead, so reuse never weakens isolation.

Reuse reads a few private attributes of ``asyncio.BaseEventLoop`` (``_scheduled``, ``_ready``,
``_asyncgens``, ``_asyncgens_shutdown_called``, ``_selector``, ``_ssock``), stable from Python
3.10 to 3.13; ``tests/test_loops.py`` checks them.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pluggy
import pytest

LoopFactory = Callable[[], asyncio.AbstractEventLoop]

#: pytest's name for the fixture carrying the loop factory chosen by parametrization.
FACTORY_FIXTURE = "_aiotempo_loop_factory"


def scoped_loop_fixture_name(scope: str) -> str:
    return f"_aiotempo_{scope}_loop"


def new_loop(policy: Any, factory: LoopFactory | None, debug: bool) -> asyncio.AbstractEventLoop:
    loop = factory() if factory is not None else policy.new_event_loop()
    loop.set_debug(debug)
    return loop


def set_current(loop: asyncio.AbstractEventLoop | None) -> None:
    """Make ``loop`` what ``asyncio.get_event_loop()`` returns to synchronous code."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop(loop)


def current_policy() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return asyncio.get_event_loop_policy()


def drain(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks left on ``loop`` and finalize its async generators.

    This is what ``asyncio.Runner.close()`` does before it closes the loop.
    """
    if loop.is_closed() or loop.is_running():
        return
    leftovers = asyncio.all_tasks(loop)
    if leftovers:
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        for task in leftovers:
            if not task.cancelled() and task.exception() is not None:
                loop.call_exception_handler(
                    {
                        "message": "unhandled exception during test loop cleanup",
                        "exception": task.exception(),
                        "task": task,
                    }
                )
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


def _reset_for_reuse(loop: asyncio.AbstractEventLoop, debug: bool) -> bool:
    """Return ``loop`` to the state of a new loop, or say that it cannot be."""
    if type(loop) not in _REUSABLE or loop.is_closed() or loop.is_running():
        return False
    drain(loop)
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
    return True


class LoopPool:
    """Function-scoped loops, reused between tests (see the module docstring)."""

    def __init__(self) -> None:
        self._idle: dict[Hashable, list[asyncio.AbstractEventLoop]] = {}

    @contextmanager
    def lease(
        self, policy: Any, factory: LoopFactory | None, debug: bool
    ) -> Iterator[asyncio.AbstractEventLoop]:
        key = (id(policy), factory)
        idle = self._idle.setdefault(key, [])
        loop = idle.pop() if idle else new_loop(policy, factory, debug)
        try:
            yield loop
        finally:
            if _reset_for_reuse(loop, debug):
                idle.append(loop)
            else:
                close(loop)

    def close(self) -> None:
        for idle in self._idle.values():
            while idle:
                close(idle.pop())


POOL = pytest.StashKey[LoopPool]()


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
