"""``--asyncio-blockbuster``: blocking calls fail at the call, by the blockbuster package.

The blocking watchdog (``diagnostics.BlockingWatchdog``) sees a loop that stalled longer than a
threshold; blockbuster sees the call itself, however short: it wraps ``time.sleep``, file,
socket, ``os`` and ``sqlite3`` calls and raises ``BlockingError`` when one is made from a
thread whose event loop is running. The two layers complement each other: the watchdog also
catches CPU hogs and calls blockbuster does not wrap (C extensions), blockbuster also catches
the 1 ms ``os.stat`` that never reaches a threshold.

blockbuster has no report-only mode (it raises, which changes how the test runs), so the layer
needs ``--asyncio-blocking=error``; a test marked ``aiotempo(blocking="warn")`` or ``"off"`` is
left out of it. Only the test's own code (its coroutine, its function-scoped async fixtures, and
the tasks and callbacks they schedule) is checked: blockbuster is activated once for the run,
and a context variable set around the test's call and those fixtures' set-up opens the gate.
Under ``--asyncio-concurrency`` pytest's own code runs inside the running loop too; the gate
keeps it out. The layer is a plugin of its own, registered only when the option is on: a run
without it pays nothing per test.

The error is reported as the test's finding when blockbuster makes it, so a test that catches
it is reported too. That relies on blockbuster's wrapper looking ``BlockingError`` up in its
module when it raises (aiotempo puts a reporting subclass there for the run);
``tests/test_blockbuster.py`` checks it.
"""

from __future__ import annotations

import contextvars
import sys
from collections.abc import Generator
from types import FrameType
from typing import Any

import pytest

from . import _pytest_internals as internals
from . import diagnostics, items, reporting, scopes

#: The checked test whose code is running (set around its call, copied into its tasks).
_checked: contextvars.ContextVar[pytest.Item | None] = contextvars.ContextVar(
    "aiotempo_blockbuster", default=None
)


def register(config: pytest.Config) -> None:
    """Activate blockbuster for the run, gated per test; one clear line if it cannot be."""
    if items.settings_of(config).blocking != "error":
        raise pytest.UsageError(
            "asyncio_blockbuster needs asyncio_blocking = error: blockbuster raises at a "
            "blocking call, which fails the test (add --asyncio-blocking=error)"
        )
    try:
        import blockbuster
    except ImportError:
        raise pytest.UsageError(
            "asyncio_blockbuster needs the blockbuster package: pip install 'aiotempo[blockbuster]'"
        ) from None
    allowed = [_allowed_in(line) for line in config.getini("asyncio_blockbuster_allow")]
    buster = blockbuster.BlockBuster()
    for function in buster.functions.values():
        function.can_block_predicate = _gated(function.can_block_predicate)
        for filename, name in allowed:
            function.can_block_in(filename, name)
    buster.activate()
    layer = _Layer(buster, sys.modules[type(buster).__module__])
    config.pluginmanager.register(layer, "aiotempo-blockbuster")


def _allowed_in(line: str) -> tuple[str, str]:
    """``path/file.py:function``: a known, accepted blocking call of a library or helper."""
    filename, _, function = line.rpartition(":")
    if not filename or not function.isidentifier():
        raise pytest.UsageError(
            f"asyncio_blockbuster_allow line {line!r} is not valid; write file.py:function, "
            "e.g. mylib/config.py:load"
        )
    return filename, function


def _gated(allowed: Any) -> Any:
    """blockbuster's own exemptions (a non-blocking socket, a write to the terminal), and
    everything outside a checked test's code."""
    return lambda *args, **kwargs: _checked.get() is None or allowed(*args, **kwargs)


class _Layer:
    """The per-test gate, the reporting error, and blockbuster's deactivation at the end."""

    def __init__(self, buster: Any, module: Any) -> None:
        self._buster = buster
        self._module = module
        self._error: type[Exception] = module.BlockingError
        module.BlockingError = _reporting(self._error)

    @pytest.hookimpl(wrapper=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> Generator[None, object, object]:
        """Open the gate around the test's call only. Not ``tryfirst``: this runs inside
        aiotempo's own wrapper, whose code before the call runs in the loop under concurrency."""
        return (yield from self._gated(pyfuncitem))

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        """Open it around the set-up of the test's own async fixtures too: their task (an async
        generator fixture's one task, until its teardown) starts inside the gate. Only theirs:
        a wider fixture is no test's own, and a sync one runs pytest's code."""
        item = internals.requesting_item(request)
        if fixturedef.scope != "function" or not scopes.handles(fixturedef, item):
            return (yield)
        return (yield from self._gated(item))

    def _gated(self, item: pytest.Item) -> Generator[None, object, object]:
        if items.options(item).blocking != "error":
            return (yield)
        try:
            token = _checked.set(item)
            try:
                return (yield)
            finally:
                _checked.reset(token)
        except self._error as error:
            _end_at_the_call(error)
            raise

    def pytest_unconfigure(self) -> None:
        self._buster.deactivate()
        self._module.BlockingError = self._error


def _reporting(error: type[Exception]) -> type[Exception]:
    """blockbuster's error, explained and reported as the test's ``blocking`` finding (like the
    watchdog's) when blockbuster makes it: the test may catch it."""

    class BlockingError(error):  # type: ignore[valid-type,misc]
        def __init__(self, func: str) -> None:
            super().__init__(func)
            item = _checked.get()
            if item is not None:
                text = _explained(func, sys._getframe(1))
                reporting.finding(item.config, "blocking", item.nodeid, text)
                self.args = (text,)

    BlockingError.__qualname__ = error.__qualname__
    BlockingError.__module__ = error.__module__
    return BlockingError


def _explained(func: str, frame: FrameType | None) -> str:
    """The call, the line of the suite's own code that made it (``Path.read_text``'s caller,
    not pathlib), and the fix."""
    where = diagnostics.nearest_user_line(frame)
    return (
        f"a blocking call to {func}{f' at {where}' if where else ''}, caught by blockbuster; "
        "move it off the loop with asyncio.to_thread()"
    )


def _end_at_the_call(error: BaseException) -> None:
    """End the error's traceback at the suite's own line that made the call."""
    innermost = None
    entry = error.__traceback__
    while entry is not None:
        if diagnostics.is_user_code(entry.tb_frame.f_code.co_filename):
            innermost = entry
        entry = entry.tb_next
    if innermost is not None:
        innermost.tb_next = None
