"""Output, logs and warnings of concurrent tests, each attributed to the test that produced it.

pytest captures per test phase by swapping process-wide state (``sys.stdout``, root logger
handlers, warning filters). While tests overlap, aiotempo routes instead: a context variable
names the test whose code is running (its greenlet and every task it spawns inherit it), and
writes, log records and warnings go to that test's current phase. What cannot be routed this
way (file-descriptor output, subprocesses, global logger levels, warning filters) is left to
tests that run exclusively (``concurrency``).
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import io
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TextIO

import pytest

from . import _pytest_internals as internals

#: The (stdout, stderr) buffers of the phase of the test whose code is running.
_phase_output: contextvars.ContextVar[tuple[io.StringIO, io.StringIO] | None] = (
    contextvars.ContextVar("aiotempo_phase_output", default=None)
)
#: The warnings recorded for the test whose code is running.
_phase_warnings: contextvars.ContextVar[list[warnings.WarningMessage] | None] = (
    contextvars.ContextVar("aiotempo_phase_warnings", default=None)
)


class _Router(io.TextIOBase):
    """A ``sys.stdout``/``sys.stderr`` stand-in writing to the running test's buffer."""

    def __init__(self, fallback: TextIO, index: int) -> None:
        self._fallback = fallback
        self._index = index

    def write(self, text: str) -> int:
        buffers = _phase_output.get()
        return (buffers[self._index] if buffers is not None else self._fallback).write(text)

    def flush(self) -> None:
        if not self._fallback.closed:
            self._fallback.flush()

    def close(self) -> None:
        """Not the router's to close: the streams it routes to belong to others."""

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._fallback.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._fallback, "encoding", "utf-8")


@contextlib.contextmanager
def concurrent(
    config: pytest.Config,
    current_item: contextvars.ContextVar[pytest.Item | None],
    runs_exclusively: Callable[[pytest.Item], bool],
) -> Iterator[None]:
    """Route output, logs, warnings and unraisable exceptions per test while a batch runs."""
    original = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Router(sys.stdout, 0), _Router(sys.stderr, 1)
    catch_warnings_for_item = internals.original_catch_warnings_for_item()

    def item_warnings(
        config: pytest.Config, ihook: Any, when: str, item: pytest.Item | None, **kwargs: Any
    ) -> contextlib.AbstractContextManager[None]:
        if item is None or runs_exclusively(item):
            return catch_warnings_for_item(config, ihook, when, item, **kwargs)
        return _test_warnings(ihook, when, item)

    router = _LogRouter(current_item)
    try:
        with (
            _batch_warnings(config, catch_warnings_for_item),
            _unraisable_per_test(config, current_item),
            internals.catching_logs(router, level=None),
            internals.per_test_reporting(
                config,
                _item_capture,
                lambda plugin, item, when: _item_logging(plugin, item, when, router),
                item_warnings,
            ),
        ):
            yield
    finally:
        sys.stdout, sys.stderr = original


@contextlib.contextmanager
def _item_capture(when: str, item: pytest.Item) -> Iterator[None]:
    buffers = io.StringIO(), io.StringIO()
    token = _phase_output.set(buffers)
    try:
        yield
    finally:
        _phase_output.reset(token)
        item.add_report_section(when, "stdout", buffers[0].getvalue())
        item.add_report_section(when, "stderr", buffers[1].getvalue())


class _LogRouter(logging.Handler):
    """The batch's one root-logger handler: hands each record to the log handlers of the test
    whose code emitted it (one lookup per record, whatever the number of tests in flight)."""

    def __init__(self, current_item: contextvars.ContextVar[Any]) -> None:
        super().__init__()
        self._current_item = current_item
        #: The (caplog, report) handlers of each test's current phase.
        self.phases: dict[pytest.Item, tuple[logging.Handler, logging.Handler]] = {}
        #: Handlers of finished phases, for the next ones (a new handler costs a lock and a
        #: registration with ``logging``; pytest itself reuses its two for every test).
        self._idle: list[tuple[Any, Any]] = []

    def handle(self, record: logging.LogRecord) -> bool:
        for handler in self.phases.get(self._current_item.get(), ()):
            if record.levelno >= handler.level:  # as Logger.callHandlers does
                handler.handle(record)
        return True

    def take(self) -> tuple[Any, Any]:
        if not self._idle:
            return internals.LogCaptureHandler(), internals.LogCaptureHandler()
        handlers = self._idle.pop()
        for handler in handlers:
            handler.reset()
            handler.setLevel(logging.NOTSET)
        return handlers

    def give_back(self, handlers: tuple[Any, Any]) -> None:
        self._idle.append(handlers)


@contextlib.contextmanager
def _item_logging(plugin: Any, item: pytest.Item, when: str, router: _LogRouter) -> Iterator[None]:
    """pytest's ``LoggingPlugin._runtest_for`` with handlers of the test's own."""
    caplog_handler, report_handler = handlers = router.take()
    report_handler.setFormatter(plugin.formatter)
    router.phases[item] = handlers
    item.stash[internals.caplog_records_key][when] = caplog_handler.records
    item.stash[internals.caplog_handler_key] = caplog_handler
    try:
        yield
    finally:
        del router.phases[item]
        item.add_report_section(when, "log", report_handler.stream.getvalue().strip())
        router.give_back(handlers)


@contextlib.contextmanager
def _batch_warnings(config: pytest.Config, catch_for_item: Any) -> Iterator[None]:
    """One set of configured warning filters for the batch; warnings shown go to their test."""
    with catch_for_item(config, config.hook, "runtest", None, record=False):
        shown = warnings.showwarning

        def route(message: Any, category: Any, filename: Any, lineno: Any, *rest: Any) -> None:
            record = _phase_warnings.get()
            if record is None:
                shown(message, category, filename, lineno, *rest)
            else:
                record.append(warnings.WarningMessage(message, category, filename, lineno))

        warnings.showwarning = route  # type: ignore[assignment]
        try:
            yield
        finally:
            warnings.showwarning = shown


@contextlib.contextmanager
def _test_warnings(ihook: Any, when: str, item: pytest.Item) -> Iterator[None]:
    """Record the warnings the test's code shows, and hand them to pytest as its own."""
    recorded: list[warnings.WarningMessage] = []
    token = _phase_warnings.set(recorded)
    try:
        yield
    finally:
        _phase_warnings.reset(token)
        for message in recorded:
            ihook.pytest_warning_recorded.call_historic(
                kwargs=dict(warning_message=message, nodeid=item.nodeid, when=when, location=None)
            )


class _UnraisableQueue:
    """pytest's queue of unraisable exceptions, one per test in flight.

    An exception that Python cannot raise (in ``__del__``, say) waits for the phases of the
    test whose code, or task, was running to report it; one raised elsewhere waits in pytest's
    own queue for the next phase after the batch.
    """

    def __init__(self, shared: Any, current_item: contextvars.ContextVar[Any]) -> None:
        self.shared = shared
        self.of_test: dict[pytest.Item, collections.deque[object]] = {}
        self._current_item = current_item

    def append(self, unraisable: object) -> None:
        item = self._current_item.get()
        queue = self.shared if item is None else self.of_test.setdefault(item, collections.deque())
        queue.append(unraisable)

    def pop(self) -> object:
        item = self._current_item.get()
        queue = self.shared if item is None else self.of_test.get(item)
        if not queue:
            raise IndexError("pop from an empty queue")  # what pytest stops collecting at
        return queue.pop()


@contextlib.contextmanager
def _unraisable_per_test(
    config: pytest.Config, current_item: contextvars.ContextVar[Any]
) -> Iterator[None]:
    shared = internals.unraisable_queue(config)
    if shared is None:  # pytest's unraisableexception plugin is disabled
        yield
        return
    queue = _UnraisableQueue(shared, current_item)
    try:
        with internals.unraisable_queue_replaced(config, queue):
            yield
    finally:
        for left in queue.of_test.values():  # raised after its test's last phase
            shared.extend(left)
