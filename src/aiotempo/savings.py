"""Where the tests' time went, and what concurrency and the virtual clock saved or would save.

Each loop aiotempo creates times the ``select()`` calls of its selector that may block: time in
them is the loop waiting (idle), the rest is running. A call that returns nothing once its
timeout is up was a wait for a timer, which the virtual clock skips. A test's waiting is the
idle time while it was in flight (from the start of its setup to the end of its teardown), so
tests in flight together share it. Durations are pytest's (each report's, summed), the same
ones the timeline report (``timeline``) shows, and its totals table shows these lines.

The summary estimates what a feature that is off would save, so users can see what they gain
before they turn it on; ``bench/savings.py`` compares the estimates with the savings measured
with the feature on. The estimate is computed only when tests waited at least
``WORTH_ESTIMATING``: an empty suite pays one snapshot of three counters per test.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from itertools import groupby

# Bound now: the virtual clock's time patch replaces ``time.perf_counter`` inside tests.
from time import perf_counter
from typing import Any, NamedTuple

import pytest

from . import clock, concurrency, items

#: Seconds tests must wait in all before the concurrency estimate looks at each test.
WORTH_ESTIMATING = 0.1
#: The highest ``--asyncio-concurrency`` suggested: past it, the scheduling cost per test grows
#: faster than the waits it hides (bench/run.py, ``CONCURRENCY``).
MOST_SUGGESTED = 256
#: Tests named as those that would gain most.
NAMED = 3


class Meter:
    """Seconds every metered loop spent waiting, waiting for timers, and skipped (virtual)."""

    __slots__ = ("skipped", "timers", "waited")

    def __init__(self) -> None:
        self.waited = 0.0
        self.timers = 0.0
        self.skipped = 0.0

    def snapshot(self) -> tuple[float, float, float]:
        return self.waited, self.timers, self.skipped


#: One for the process: tests run on one thread, and only differences are ever read.
METER = Meter()


class _MeteredSelector:
    """Wraps a loop's selector (outside the virtual clock's, if any) to time its waits."""

    def __init__(self, real: Any, virtual_clock: clock.VirtualClock | None) -> None:
        self.real = real
        self._clock = virtual_clock

    def select(self, timeout: float | None = None) -> Any:
        if timeout is not None and timeout <= 0:  # a turn of a busy loop: nothing to wait for
            return self.real.select(timeout)
        virtual_clock = self._clock
        virtual = virtual_clock.ns if virtual_clock is not None else 0
        started = perf_counter()
        events = self.real.select(timeout)
        waited = perf_counter() - started
        METER.waited += waited
        if not events and timeout is not None:
            METER.timers += waited
        if virtual_clock is not None:
            # What the clock saved: the virtual time that passed beyond the real time waited.
            METER.skipped += max((virtual_clock.ns - virtual) / 1e9 - waited, 0.0)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def meter(loop: asyncio.AbstractEventLoop) -> None:
    """Time the waits of ``loop`` (a loop without a Python selector, e.g. uvloop, is not)."""
    selector = getattr(loop, "_selector", None)
    if selector is not None:
        loop._selector = _MeteredSelector(selector, clock.of(loop))  # type: ignore[attr-defined]


class Recorder:
    """What the tests of one session waited, in the order they ran."""

    def __init__(self) -> None:
        self.first: tuple[float, float, float] | None = None
        self.last = (0.0, 0.0, 0.0)
        #: (test, seconds waiting, of which for timers) for every test run.
        self.tests: list[tuple[pytest.Item, float, float]] = []


RECORDER = pytest.StashKey[Recorder]()
_AT = pytest.StashKey[tuple[float, float, float]]()
_BREAKDOWN = pytest.StashKey["Breakdown | None"]()


def start(item: pytest.Item) -> None:
    """At the start of a test's setup."""
    now = item.stash[_AT] = METER.snapshot()
    recorder = item.config.stash[RECORDER]
    if recorder.first is None:
        recorder.first = now


def stop(item: pytest.Item) -> None:
    """At the end of a test's teardown."""
    at = item.stash.get(_AT, None)
    if at is None:
        return
    recorder = item.config.stash[RECORDER]
    now = recorder.last = METER.snapshot()
    recorder.tests.append((item, now[0] - at[0], now[1] - at[1]))


class Breakdown(NamedTuple):
    """The run's times, each line a (label, text) pair: the terminal summary and the timeline
    report show the same ones."""

    lines: list[tuple[str, str]]


def breakdown(config: pytest.Config) -> Breakdown | None:
    """The run's breakdown (computed once, from pytest's reports); ``None``: no test ran."""
    if _BREAKDOWN not in config.stash:
        config.stash[_BREAKDOWN] = _compute(config)
    return config.stash[_BREAKDOWN]


def _compute(config: pytest.Config) -> Breakdown | None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    reports = [
        report
        for kind in getattr(reporter, "stats", {}).values()
        for report in kind
        if isinstance(report, pytest.TestReport)
    ]
    if not reports:
        return None
    durations: dict[str, float] = {}
    for report in reports:
        durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration
    timed = [r for r in reports if r.start]  # not a worker's crash report, which has no times
    wall = max(r.stop for r in timed) - min(r.start for r in timed) if timed else 0.0
    summed = sum(durations.values())
    time = f"{len(durations)} tests, {wall:.2f} s of wall time ({summed:.2f} s summed)"
    recorder = config.stash.get(RECORDER, None)
    if recorder is None or recorder.first is None:
        return Breakdown([("time", f"{time}; waiting not measured (pytest-xdist's workers)")])
    waited, timers, skipped = (b - a for a, b in zip(recorder.first, recorder.last, strict=True))
    running = max(wall - waited, 0.0)
    time += f": waiting {waited:.2f} s ({timers:.2f} s for timers), running {running:.2f} s"
    lines = [("time", time)]
    settings = items.settings_of(config)
    on = settings.clock == "virtual"
    lines.append(("virtual clock", _clock_line(on, recorder, timers, skipped)))
    if settings.concurrency > 1:
        shared = sum(test[1] for test in recorder.tests) - waited
        text = (
            f"on (up to {settings.concurrency} at once); saved at least {max(shared, 0.0):.2f} s "
            "(waits that overlapped)"
        )
    else:
        text = _concurrency_estimate(recorder.tests, durations, waited)
    lines.append(("concurrency", text))
    return Breakdown(lines)


def _clock_line(on: bool, recorder: Recorder, timers: float, skipped: float) -> str:
    if on:
        return f"on; saved {skipped:.2f} s (the waits for timers it skipped)"
    waits, kept = [], 0.0  # tests marked clock='real' would keep their waits
    for item, _, test_timers in recorder.tests:
        if test_timers > 0:
            if items.aiotempo_marker(item).clock == "real":
                kept += test_timers
            else:
                waits.append((item, test_timers))
    saved = max(timers - kept, 0.0)
    return f"off; --asyncio-clock=virtual would save an estimated {saved:.2f} s" + _most(waits)


class _Batch(NamedTuple):
    """Tests that would run together: their summed running and waiting, and the longest."""

    running: float
    waiting: float
    longest: float
    size: int

    def seconds(self, limit: int) -> float:
        """About how long the batch would take with up to ``limit`` tests at once."""
        at_once = (self.running + self.waiting) / min(limit, self.size)
        return max(self.running, at_once, self.longest)


def _concurrency_estimate(
    tests: Sequence[tuple[pytest.Item, float, float]], durations: dict[str, float], waited: float
) -> str:
    """What ``--asyncio-concurrency=N`` would save, and the N that gets most of it.

    Tests that could share a loop would run in batches (``concurrency``). A batch takes at least
    its running time (serial on one loop), its summed durations over N (N slots) and its longest
    test; the estimate is the largest of the three. N is the smallest that makes the second no
    larger than another, within ``MOST_SUGGESTED``. A test that would run alone keeps its time.
    """
    if waited < WORTH_ESTIMATING:
        return f"off; nothing to overlap (tests waited {waited:.2f} s)"
    keyed = [(_batch_key(item), item, durations.get(item.nodeid, 0.0), w) for item, w, _ in tests]
    batches, gaining, alone = [], [], 0
    for key, group in groupby(keyed, key=lambda run: run[0]):
        runs = list(group)
        if key is None or len(runs) == 1:
            alone += sum(1 for *_, wait in runs if wait > 0)
            continue
        gaining += [(item, wait) for _, item, _, wait in runs if wait > 0]
        batches.append(
            _Batch(
                running=sum(max(duration - wait, 0.0) for *_, duration, wait in runs),
                waiting=sum(min(wait, duration) for *_, duration, wait in runs),
                longest=max(duration for *_, duration, _ in runs),
                size=len(runs),
            )
        )
    if not batches:
        return f"off; none of the {alone} tests that waited could run concurrently"
    limit = 2
    for batch in batches:
        bound = max(batch.running, batch.longest, 1e-3)
        needed = math.ceil((batch.running + batch.waiting) / bound)
        limit = max(limit, min(needed, MOST_SUGGESTED))
    saved = sum(batch.running + batch.waiting - batch.seconds(limit) for batch in batches)
    text = f"off; --asyncio-concurrency={limit} would save an estimated {max(saved, 0.0):.2f} s"
    text += _most(gaining)
    if alone:
        text += f" (not counted: {alone} waiting tests that cannot run concurrently)"
    return text


def _batch_key(item: pytest.Item) -> Any:
    """The batch ``item`` would run in with concurrency on; ``None``: it would run alone."""
    if concurrency.plan(item).exclusive:
        return None
    return concurrency.batch_key(item, assume_on=True)


def _most(waits: Sequence[tuple[pytest.Item, float]]) -> str:
    """The tests that would gain most: those that waited longest."""
    ranked = sorted(waits, key=lambda wait: wait[1], reverse=True)[:NAMED]
    if not ranked:
        return ""
    named = ", ".join(f"{item.nodeid} ({seconds:.2f} s)" for item, seconds in ranked)
    more = f" and {len(waits) - NAMED} more" if len(waits) > NAMED else ""
    return f", most in {named}{more}"
