"""Output, logs and warnings of concurrent tests, each attributed to the test that produced it.

pytest captures per test phase by swapping process-wide state (``sys.stdout``, root logger
handlers, warning filters). While tests overlap, aiotempo routes instead: a context variable
names the test whose code is running (its greenlet and every task it spawns inherit it), and
writes, log records and warnings go to that test's current phase. What cannot be routed this
way (file-descriptor output, subprocesses, global logger levels, warning filters) is left to
tests that run exclusively (``concurrency``).
"""

from __future__ import annotations

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
    """Route output, logs and warnings per test while a batch runs."""
    original = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Router(sys.stdout, 0), _Router(sys.stderr, 1)
    catch_warnings_for_item = internals.original_catch_warnings_for_item()

    def item_warnings(
        config: pytest.Config, ihook: Any, when: str, item: pytest.Item | None, **kwargs: Any
    ) -> contextlib.AbstractContextManager[None]:
        if item is None or runs_exclusively(item):
            return catch_warnings_for_item(config, ihook, when, item, **kwargs)
        return _test_warnings(ihook, when, item)

    try:
        with (
            _batch_warnings(config, catch_warnings_for_item),
            internals.per_test_reporting(
                config,
                _item_capture,
                lambda plugin, item, when: _item_logging(plugin, item, when, current_item),
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


class _OnlyFrom(logging.Filter):
    """Let through the records that the code of one test emitted."""

    def __init__(self, item: pytest.Item, current_item: contextvars.ContextVar[Any]) -> None:
        super().__init__()
        self._item = item
        self._current_item = current_item

    def filter(self, record: logging.LogRecord) -> bool:
        return self._current_item.get() is self._item


@contextlib.contextmanager
def _item_logging(
    plugin: Any, item: pytest.Item, when: str, current_item: contextvars.ContextVar[Any]
) -> Iterator[None]:
    """pytest's ``LoggingPlugin._runtest_for`` with handlers of the test's own."""
    caplog_handler = internals.LogCaptureHandler()
    report_handler = internals.LogCaptureHandler()
    report_handler.setFormatter(plugin.formatter)
    for handler in caplog_handler, report_handler:
        handler.addFilter(_OnlyFrom(item, current_item))
    with (
        internals.catching_logs(caplog_handler, level=None),
        internals.catching_logs(report_handler, level=None),
    ):
        item.stash[internals.caplog_records_key][when] = caplog_handler.records
        item.stash[internals.caplog_handler_key] = caplog_handler
        try:
            yield
        finally:
            item.add_report_section(when, "log", report_handler.stream.getvalue().strip())


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
