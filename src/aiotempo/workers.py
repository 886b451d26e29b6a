"""Concurrency on pytest-xdist workers.

A worker runs the tests its controller sends it, one at a time, each started only once the
next one is known (pytest needs ``nextitem`` for teardown). aiotempo's worker loop takes every
test already sent, runs them like a sequential session would (batches where tests may overlap),
and tells the controller about each test as soon as it is done, in any order, as xdist's own
loop does per test. It touches xdist's ``WorkerInteractor`` (``channel``, ``torun``,
``handle_command``, ``sendevent``), checked by ``tests/test_xdist.py``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from . import concurrency

#: How the report of a test stuck past its timeout in uninterruptible code ends: the process had
#: to exit (``timeouts``). On a worker, the controller then hears of it as a crash.
LAST_RESORT = "the run could not go on"


def is_controller(config: pytest.Config) -> bool:
    """Whether this process hands tests to xdist workers instead of running them."""
    return config.pluginmanager.get_plugin("dsession") is not None


def interactor(config: pytest.Config) -> Any:
    """The xdist worker's interactor, if this process is an xdist worker."""
    if not hasattr(config, "workerinput"):
        return None
    # xdist runs its remote module through execnet, so the class is not xdist.remote's.
    found = [
        p for p in config.pluginmanager.get_plugins() if type(p).__name__ == "WorkerInteractor"
    ]
    return found[0] if found else None


def run(session: pytest.Session, worker: Any) -> bool:
    """xdist's ``WorkerInteractor.pytest_runtestloop``, running what it holds concurrently."""
    shutdown = type(worker).handle_command.__globals__["Marker"].SHUTDOWN

    positions = {item.nodeid: index for index, item in enumerate(session.items)}
    session.config.pluginmanager.register(_ItemIndex(worker, positions))

    def done(item: pytest.Item, seconds: float) -> None:
        worker.sendevent(
            "runtest_protocol_complete", item_index=positions[item.nodeid], duration=seconds
        )

    worker.log("entering main loop")
    worker.channel.setcallback(worker.handle_command, endmarker=shutdown)
    held = [worker.torun.get()]
    while held[0] is not shutdown:
        with worker.torun.lock() as queue:  # everything already sent, without waiting
            while queue:
                held.append(queue.popleft())
        if len(held) == 1:
            held.append(worker.torun.get())  # the test after the last one must be known
        if shutdown in held:  # nothing comes after the tests before it
            ready, held, after = held[: held.index(shutdown)], [shutdown], None
        else:
            ready, held = held[:-1], held[-1:]
            after = session.items[held[0]]
        concurrency.run_items([session.items[i] for i in ready], after, done)
        if session.shouldfail or session.shouldstop:
            break
    return True


class _ItemIndex:
    """Tells xdist which test the reports about to be logged belong to (``item_index``)."""

    def __init__(self, worker: Any, positions: dict[str, int]) -> None:
        self._worker = worker
        self._positions = positions

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._worker.item_index = self._positions[nodeid]


def exit_after(worker: Any, finished: list[pytest.Item]) -> None:
    """Exit this worker after the last resort (``timeouts``): ``finished`` (the tests that were
    in flight beside the stuck one, reported) are done; the stuck test is left running, so the
    controller takes it for the one the worker crashed in (``crashed``) and runs the tests it
    had sent here on a new worker."""
    for item in finished:
        index = item.session.items.index(item)
        worker.sendevent("runtest_protocol_complete", item_index=index, duration=0.0)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(pytest.ExitCode.TESTS_FAILED)


def crashed(config: pytest.Config, crashitem: str, report: pytest.TestReport) -> None:
    """On the controller: a worker went down in ``crashitem``. If that test was already
    reported stuck past its timeout (the worker's last resort), the crash report xdist is about
    to log becomes the passing teardown sequential pytest would have given the failed test,
    instead of a second failure."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not any(
        getattr(logged, "nodeid", None) == crashitem and LAST_RESORT in str(logged.longrepr)
        for logged in getattr(reporter, "stats", {}).get("failed", ())
    ):
        return
    report.when = "teardown"
    report.outcome = "passed"
    report.longrepr = None
    if reporter is not None:
        reporter.write_line(
            f"aiotempo: {crashitem} is stuck in a call that cannot be interrupted, past its "
            "timeout; its worker exited as a last resort and a new one runs the rest"
        )
