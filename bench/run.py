#!/usr/bin/env python3
"""Side-by-side benchmark harness for aiotempo.

Each suite generates a small test project in a temporary directory and runs it under several
named variants (pytest args/env), each in a fresh ``python -m pytest`` subprocess. Variants are
interleaved round-robin over several rounds so that machine noise hits all of them alike; the
median and min wall-clock time per variant are reported, then the ratios between variants, and
each target ratio gets a PASS/FAIL line. A variant that needs a module the environment lacks is
skipped (with the reason), and so is a real-time ("slow") variant unless ``--slow`` is given.
Each run's peak RSS is measured too (``wait4``), and a ratio can be of peak RSS, or of the cost
per test of variants that run different numbers of tests. A variant can run under another
interpreter (``INTERPRETERS``), for plugins that cannot share an environment with aiotempo.

Usage: python bench/run.py [SUITE ...] [--rounds N] [--quick] [--slow] [--list]

Standard library only. Results go to bench/results/<suite>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import json
import operator
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_ROUNDS = 11  # odd, so the median is a real run; ~5 min for all suites on 2 cores
RUN_TIMEOUT = 600.0
TESTS_PER_MODULE = 100

# Environment variables that would change what pytest does behind the benchmark's back.
# PYTHONDONTWRITEBYTECODE would make every run recompile whatever has no .pyc yet (an editable
# install's sources, the generated tests), which biases the comparison against aiotempo.
SCRUBBED_ENV = (
    "PYTEST_ADDOPTS",
    "PYTEST_PLUGINS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "PYTHONDONTWRITEBYTECODE",
)

#: Modules whose pytest plugins load only in the variants that list them in ``requires``: the
#: harness blocks their entry points (``-p no:NAME``) everywhere else. looptime's plugin breaks
#: every fixture set-up of a run where pytest-asyncio's plugin is not registered (as under
#: aiotempo), and it would add its hooks' cost to the variants that do not use it.
OPT_IN_PLUGINS = ("looptime",)

#: The plugins a ``lean`` variant keeps (top-level modules of pytest11 entry points): every other
#: installed plugin (hypothesis, xdist, anyio, pytest-mock, ...) is blocked with ``-p no:NAME``,
#: so that variants running in different environments load the same plugins: the ones compared.
LEAN_PLUGINS = ("aiotempo", "pytest_asyncio", "pytest_asyncio_cooperative")

#: Interpreters other than the one running the harness, for variants whose plugin cannot share an
#: environment with aiotempo (``Variant.python``). ``AIOTEMPO_BENCH_PYTHON_<NAME>`` overrides a
#: path; a variant whose interpreter does not exist is skipped, with the reason.
INTERPRETERS = {
    # pytest-asyncio-cooperative needs pytest 8.4 (see bench/README.md for the recipe).
    "cooperative": REPO_DIR / ".venv-bench-cooperative" / "bin" / "python",
}

#: Distributions whose versions each interpreter's results record.
VERSIONED = ("pytest", "pytest-asyncio", "aiotempo", "pytest-asyncio-cooperative")

Files = dict[str, str]  # relative path -> file text


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Variant:
    """One way of running a suite: which generated project, with which pytest args/env.

    ``active``/``inactive`` are module-name prefixes of pytest plugins that must (not) be
    registered; they are checked once, in an untimed warm-up run, so that e.g. an "aiotempo"
    variant silently falling back to pytest-asyncio is caught rather than timed.

    ``requires`` are modules the variant needs beyond aiotempo and pytest-asyncio; where one is
    not importable the variant is skipped, with the reason. A ``slow`` variant waits in real
    time: it runs only with ``--slow``, and then once, its warm-up run being its one timed run.

    ``python`` names an interpreter of ``INTERPRETERS`` to run pytest with (default: the one
    running the harness). ``lean`` blocks every installed plugin but ``LEAN_PLUGINS``. ``scale``
    sizes the variant's project: ``scale`` times the suite's test count, at least one test.
    ``runner="unittest"`` runs ``python -m unittest`` instead of pytest (with ``args``), for
    unittest suites run the way their users run them; it loads no plugins to check or block.
    """

    name: str
    project: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    active: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    slow: bool = False
    python: str | None = None
    lean: bool = False
    scale: float = 1.0
    runner: str = "pytest"

    def tests(self, n: int) -> int:
        """How many tests this variant runs when the suite runs ``n``."""
        return max(1, round(n * self.scale))


@dataclass(frozen=True)
class Ratio:
    """``median(num) / median(den)``; a target when ``op`` and ``limit`` are set.

    ``metric`` is ``"time"`` (wall clock) or ``"rss"`` (the run's peak RSS). ``per_test`` divides
    each side's time by its variant's number of tests, after subtracting the time of the ``base``
    variant (e.g. a one-test run: pytest's start-up) when one is named.
    """

    num: str
    den: str
    op: str | None = None
    limit: float | None = None
    metric: str = "time"
    per_test: bool = False
    base: str | None = None

    @property
    def label(self) -> str:
        if self.metric == "rss":
            return f"{self.num}/{self.den} RSS"
        if self.per_test:
            less = f" less {self.base}" if self.base else ""
            return f"{self.num}/{self.den} per test{less}"
        return f"{self.num}/{self.den}"

    @property
    def target(self) -> str:
        return f"{self.op} {self.limit:g}" if self.op and self.limit is not None else "-"


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    n: int  # number of tests in a full run
    quick_n: int  # number of tests with --quick
    projects: Mapping[str, Callable[[int], Files]]  # project name -> file generator
    variants: tuple[Variant, ...]
    ratios: tuple[Ratio, ...]
    rounds: int | None = None  # default rounds for this suite (None: DEFAULT_ROUNDS)


OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}


SUITES: dict[str, Suite] = {}


def register(suite: Suite) -> Suite:
    names = {v.name for v in suite.variants}
    for variant in suite.variants:
        assert variant.project in suite.projects, (suite.name, variant.name)
        assert variant.python in (None, *INTERPRETERS), (suite.name, variant.name)
        assert variant.runner in ("pytest", "unittest"), (suite.name, variant.name)
        assert variant.runner == "pytest" or not (variant.active or variant.inactive), variant
    for ratio in suite.ratios:
        assert {ratio.num, ratio.den} <= names, (suite.name, ratio.label)
        assert ratio.base is None or (ratio.per_test and ratio.base in names), ratio.label
        assert ratio.op in (None, *OPS), (suite.name, ratio.op)
        assert ratio.metric in ("time", "rss"), (suite.name, ratio.metric)
    SUITES[suite.name] = suite
    return suite


# --------------------------------------------------------------------------- generators

SYNC_INI = "[pytest]\n"
ASYNC_INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"


def project(
    ini: str, test: str | Callable[[int], str], conftest: str = "", header: str = ""
) -> Callable[[int], Files]:
    """A project generator: ``n`` copies of ``test`` (formatted with ``i``, or a function of
    ``i``) spread over modules of TESTS_PER_MODULE tests, each module starting with ``header``,
    plus a pytest.ini and an optional conftest.py."""

    def generate(n: int) -> Files:
        files: Files = {"pytest.ini": ini}
        if conftest:
            files["conftest.py"] = conftest
        for start in range(0, n, TESTS_PER_MODULE):
            stop = min(start + TESTS_PER_MODULE, n)
            tests = (test(i) if callable(test) else test.format(i=i) for i in range(start, stop))
            body = header + "".join(tests)
            files[f"test_m{start // TESTS_PER_MODULE:03d}.py"] = body.lstrip("\n")
        return files

    return generate


def plugin_variants() -> tuple[Variant, ...]:
    """The standard trio: a sync baseline, aiotempo, and pytest-asyncio on the same async suite."""
    return (
        Variant(
            "sync",
            "sync",
            ("-p", "no:aiotempo", "-p", "no:asyncio"),
            inactive=("aiotempo", "pytest_asyncio"),
        ),
        Variant("aiotempo", "async", active=("aiotempo",), inactive=("pytest_asyncio",)),
        Variant(
            "pytest-asyncio",
            "async",
            ("-p", "no:aiotempo"),
            active=("pytest_asyncio",),
            inactive=("aiotempo",),
        ),
    )


#: ``--asyncio-concurrency`` of the concurrent variants (but ``memory``'s, which runs every test
#: at once). Picked on 2 cores with the ``http`` suite (500 tests, 7 rounds, run time over the
#: floor): 32: 3.2x, 64: 2.2x, 96: 2.0x, 128: 1.6-1.7x, 192: 1.55x, 256: 1.5-1.6x, 384: 1.65x,
#: 500: 1.55x. Below 128 the tests in flight leave the CPU idle; past 256 the cost per test of
#: aiotempo's scheduling, which grows with the number of tests in flight, eats the gain.
CONCURRENCY = 256

register(
    Suite(
        name="empty",
        description="empty tests: per-test overhead of the plugin",
        n=2000,
        quick_n=200,
        projects={
            "sync": project(SYNC_INI, "\n\ndef test_{i}():\n    pass\n"),
            "async": project(ASYNC_INI, "\n\nasync def test_{i}():\n    pass\n"),
        },
        variants=(
            *plugin_variants(),
            Variant(
                "aiotempo-concurrent",
                "async",
                (f"--asyncio-concurrency={CONCURRENCY}",),
                active=("aiotempo",),
                inactive=("pytest_asyncio",),
            ),
            Variant(
                "aiotempo-checks-off",
                "async",
                ("--asyncio-leaks=off", "--asyncio-blocking=off"),
                active=("aiotempo",),
                inactive=("pytest_asyncio",),
            ),
            Variant(
                "aiotempo-checks-on",
                "async",
                ("--asyncio-leaks=error", "--asyncio-blocking=error", "--asyncio-timeout=60"),
                active=("aiotempo",),
                inactive=("pytest_asyncio",),
            ),
        ),
        ratios=(
            Ratio("aiotempo", "sync", "<=", 1.2),
            Ratio("pytest-asyncio", "sync"),
            Ratio("aiotempo", "pytest-asyncio"),
            # Nothing to wait for, so nothing to overlap: concurrency must cost nothing.
            Ratio("aiotempo-concurrent", "aiotempo", "<=", 1.0),
            # Every diagnostic check on costs at most 15% over none (issue 5).
            Ratio("aiotempo-checks-on", "aiotempo-checks-off", "<=", 1.15),
        ),
    )
)

register(
    Suite(
        name="fixture",
        description="one function-scoped yield fixture per test (async vs sync)",
        n=500,
        quick_n=100,
        projects={
            "sync": project(
                SYNC_INI,
                "\n\ndef test_{i}(f):\n    assert f == 1\n",
                conftest="import pytest\n\n\n@pytest.fixture\ndef f():\n    yield 1\n",
            ),
            "async": project(
                ASYNC_INI,
                "\n\nasync def test_{i}(f):\n    assert f == 1\n",
                conftest="import pytest\n\n\n@pytest.fixture\nasync def f():\n    yield 1\n",
            ),
        },
        variants=plugin_variants(),
        ratios=(
            Ratio("aiotempo", "sync"),
            Ratio("pytest-asyncio", "sync"),
            Ratio("aiotempo", "pytest-asyncio"),
        ),
    )
)


def sleeps_and_timeouts(sleep: float, timeout: float) -> Callable[[int], str]:
    """The ``clock`` suite's tests: five in six sleep ``sleep`` s; every sixth waits for a 10 s
    sleep with a ``timeout`` s timeout and expects TimeoutError."""

    def test(i: int) -> str:
        if i % 6 == 5:
            return (
                f"\n\nasync def test_timeout_{i}():\n"
                "    with pytest.raises(asyncio.TimeoutError):\n"
                f"        await asyncio.wait_for(asyncio.sleep(10), {timeout:g})\n"
            )
        return f"\n\nasync def test_sleep_{i}():\n    await asyncio.sleep({sleep:g})\n"

    return test


#: pytest-xdist's args for the ``pytest-asyncio-xdist`` variants: one worker per core of the
#: benchmark machines (2), the usual way to speed up a pytest-asyncio suite that waits.
XDIST = ("-n", "2")


def real_time_variants(
    project: str, *, lean: bool = False, **plugins: tuple[str, ...]
) -> tuple[Variant, Variant]:
    """pytest-asyncio waiting in real time, alone and over pytest-xdist's workers (slow: run
    only with ``--slow``)."""
    no_aiotempo = ("-p", "no:aiotempo")
    return (
        Variant("pytest-asyncio", project, no_aiotempo, lean=lean, slow=True, **plugins),
        Variant(
            "pytest-asyncio-xdist",
            project,
            (*no_aiotempo, *XDIST),
            requires=("xdist",),
            lean=lean,
            slow=True,
            **plugins,
        ),
    )


def clock_variants() -> tuple[Variant, ...]:
    no_aiotempo = ("-p", "no:aiotempo")
    aiotempo = {"active": ("aiotempo",), "inactive": ("pytest_asyncio", "looptime")}
    pytest_asyncio = {"active": ("pytest_asyncio",), "inactive": ("aiotempo", "looptime")}
    return (
        Variant("aiotempo-virtual", "sleeps", ("--asyncio-clock=virtual",), **aiotempo),
        Variant("zero-sleep", "zero", **aiotempo),
        Variant("zero-sleep-pytest-asyncio", "zero", no_aiotempo, **pytest_asyncio),
        Variant(
            "looptime",
            "sleeps",
            (*no_aiotempo, "--looptime"),
            active=("pytest_asyncio", "looptime"),
            inactive=("aiotempo",),
            requires=("looptime",),
        ),
        *real_time_variants("sleeps", **pytest_asyncio),  # about 200 s, and 100 s over xdist
    )


CLOCK_HEADER = "import asyncio\n\nimport pytest\n"

register(
    Suite(
        name="clock",
        description="sleeps and timeouts: 5/6 of the tests sleep 1 s, 1/6 time out after 5 s",
        n=120,
        quick_n=24,
        projects={
            # 100 x sleep(1) and 20 x wait_for(sleep(10), 5) raising TimeoutError: 200 s of
            # sleeping in real time.
            "sleeps": project(ASYNC_INI, sleeps_and_timeouts(1, 5), header=CLOCK_HEADER),
            # The same with no time waited: every sleep and timeout is 1 ns, due by the time the
            # loop looks, so the suite takes the same code path (a timer per sleep, wait_for's
            # timeout firing, the cancellation, the TimeoutError) with nothing to wait for.
            # sleep(0) would skip the timer, and wait_for(..., 0) the timeout's timer.
            "zero": project(ASYNC_INI, sleeps_and_timeouts(1e-9, 1e-9), header=CLOCK_HEADER),
        },
        variants=clock_variants(),
        ratios=(
            Ratio("aiotempo-virtual", "zero-sleep", "<=", 1.3),
            Ratio("looptime", "zero-sleep"),
            Ratio("pytest-asyncio", "zero-sleep"),
            Ratio("looptime", "zero-sleep-pytest-asyncio"),
            Ratio("aiotempo-virtual", "looptime"),
            Ratio("pytest-asyncio-xdist", "zero-sleep"),
            Ratio("aiotempo-virtual", "pytest-asyncio-xdist"),
        ),
    )
)


# Concurrency: tests that wait for a local HTTP server. The server (aiohttp, 127.0.0.1, port 0)
# and a client session are session-scoped fixtures on the session loop, and every test is on that
# loop too (``pytestmark``), so aiotempo runs them all as one batch. Each test makes its own GET;
# the handler waits HANDLER_DELAY. A ``floor`` project is the same suite with every delay 0
# (``asyncio.sleep(0)``): pytest's own per-test cost, which concurrency cannot remove.

HTTP_CONFTEST = """\
import asyncio

import aiohttp
import pytest
{import_plugin}from aiohttp import web

HANDLER_DELAY = {handler_delay!r}
FIXTURE_DELAY = {fixture_delay!r}


async def handle(request):
    await asyncio.sleep(HANDLER_DELAY)
    return web.Response(text="ok")


@{fixture}
async def url():
    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    # A listen backlog for every test in flight: past aiohttp's default (128) the kernel drops
    # the connections and the clients retry them a second later.
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{{host}}:{{port}}/"
    await runner.cleanup()


@{fixture}
async def client():
    connector = aiohttp.TCPConnector(limit=0)  # no limit: as many connections as tests in flight
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@{function_fixture}
async def resource():
    await asyncio.sleep(FIXTURE_DELAY)
    yield
    await asyncio.sleep(FIXTURE_DELAY)
"""

HTTP_TEST = """

{marker}async def test_{{i}}(client, url{fixtures}):
    async with client.get(url) as response:
        assert response.status == 200
        assert await response.text() == "ok"
"""


def http_project(
    handler_delay: float, fixture_delay: float | None = None, cooperative: bool = False
) -> Callable[[int], Files]:
    """The concurrency suite: tests that GET from a server whose handler waits
    ``handler_delay`` s; with ``fixture_delay``, each test also uses a function-scoped async
    fixture whose set-up and tear-down each wait that long. ``cooperative`` writes the same suite
    for pytest-asyncio-cooperative: its marker on each test, its fixtures plain pytest ones."""
    if cooperative:
        conftest = HTTP_CONFTEST.format(
            import_plugin="",
            fixture='pytest.fixture(scope="session")',
            function_fixture="pytest.fixture",
            handler_delay=handler_delay,
            fixture_delay=fixture_delay or 0,
        )
        marker, header, ini = "@pytest.mark.asyncio_cooperative\n", "import pytest\n", SYNC_INI
    else:
        conftest = HTTP_CONFTEST.format(
            import_plugin="import pytest_asyncio\n",
            fixture='pytest_asyncio.fixture(scope="session", loop_scope="session")',
            function_fixture='pytest_asyncio.fixture(loop_scope="session")',
            handler_delay=handler_delay,
            fixture_delay=fixture_delay or 0,
        )
        marker, ini = "", ASYNC_INI
        header = 'import pytest\n\npytestmark = pytest.mark.asyncio(loop_scope="session")\n'
    fixtures = ", resource" if fixture_delay is not None else ""
    test = HTTP_TEST.format(marker=marker, fixtures=fixtures)
    return project(ini, test, conftest=conftest, header=header)


AIOTEMPO_ONLY = {"active": ("aiotempo",), "inactive": ("pytest_asyncio",)}
PYTEST_ASYNCIO_ONLY = {"active": ("pytest_asyncio",), "inactive": ("aiotempo",)}
CONCURRENT = (f"--asyncio-concurrency={CONCURRENCY}",)


def cooperative_variant(name: str, *args: str) -> Variant:
    """pytest-asyncio-cooperative on its project, in its own environment (pytest 8.4)."""
    return Variant(
        name,
        "cooperative",
        args,
        active=("pytest_asyncio_cooperative",),
        inactive=("aiotempo", "pytest_asyncio"),
        requires=("pytest_asyncio_cooperative", "aiohttp"),
        python="cooperative",
        lean=True,
    )


register(
    Suite(
        name="http",
        description="concurrency: each test GETs from a local server that waits 100 ms",
        n=500,
        quick_n=100,
        projects={
            "wait": http_project(0.1),
            "floor": http_project(0),
            "cooperative": http_project(0.1, cooperative=True),
        },
        variants=(
            Variant("aiotempo-concurrent", "wait", CONCURRENT, lean=True, **AIOTEMPO_ONLY),
            Variant("floor", "floor", lean=True, **AIOTEMPO_ONLY),
            # The floor run concurrently: what concurrency costs with nothing to wait for.
            Variant("floor-concurrent", "floor", CONCURRENT, lean=True, **AIOTEMPO_ONLY),
            cooperative_variant("cooperative"),  # its default: at most 100 tests in flight
            cooperative_variant("cooperative-same-n", f"--max-asyncio-tasks={CONCURRENCY}"),
            # 500 x 100 ms one after the other: about 50 s, and 25 s over xdist.
            *real_time_variants("wait", lean=True, **PYTEST_ASYNCIO_ONLY),
        ),
        ratios=(
            Ratio("aiotempo-concurrent", "floor", "<=", 1.3),
            Ratio("aiotempo-concurrent", "pytest-asyncio", "<=", 0.1),
            Ratio("aiotempo-concurrent", "cooperative", "<", 1.0),
            Ratio("aiotempo-concurrent", "cooperative-same-n"),
            Ratio("floor-concurrent", "floor"),
            Ratio("aiotempo-concurrent", "floor-concurrent"),
            Ratio("cooperative", "floor"),
            Ratio("pytest-asyncio", "floor"),
            Ratio("pytest-asyncio-xdist", "floor"),
            Ratio("aiotempo-concurrent", "pytest-asyncio-xdist"),
        ),
        rounds=7,
    )
)

register(
    Suite(
        name="http-fixture",
        description="the http suite with a function-scoped async fixture: 20 ms set-up, 20 ms "
        "tear-down",
        n=500,
        quick_n=100,
        projects={"wait": http_project(0.1, 0.02), "floor": http_project(0, 0)},
        variants=(
            Variant("aiotempo-concurrent", "wait", CONCURRENT, lean=True, **AIOTEMPO_ONLY),
            Variant("floor", "floor", lean=True, **AIOTEMPO_ONLY),
            # 500 x 140 ms one after the other: about 70 s, and 35 s over xdist.
            *real_time_variants("wait", lean=True, **PYTEST_ASYNCIO_ONLY),
        ),
        ratios=(
            Ratio("aiotempo-concurrent", "floor", "<=", 1.5),
            Ratio("pytest-asyncio", "floor"),
            Ratio("aiotempo-concurrent", "pytest-asyncio"),
            Ratio("pytest-asyncio-xdist", "floor"),
            Ratio("aiotempo-concurrent", "pytest-asyncio-xdist"),
        ),
        rounds=7,
    )
)

IN_FLIGHT = """\
import asyncio

TESTS = {n}
arrived = 0
everyone = None


async def all_in_flight():
    # Return once all TESTS tests are here: in flight together.
    global arrived, everyone
    if everyone is None:
        everyone = asyncio.Event()
    arrived += 1
    if arrived == TESTS:
        everyone.set()
    await asyncio.wait_for(everyone.wait(), 60)
"""


def in_flight_project(n: int) -> Files:
    """``n`` tests that each wait until all ``n`` have started: all of them in flight at once
    (or, where they cannot be, failing after a minute)."""
    files = project(
        ASYNC_INI,
        "\n\nasync def test_{i}():\n    await all_in_flight()\n",
        header="from in_flight import all_in_flight\n",
    )(n)
    files["in_flight.py"] = IN_FLIGHT.format(n=n)
    return files


register(
    Suite(
        name="memory",
        description="peak RSS with every test in flight at once",
        n=1000,
        quick_n=200,
        projects={
            "in-flight": in_flight_project,
            "zero": project(
                ASYNC_INI,
                "\n\nasync def test_{i}():\n    await asyncio.sleep(0)\n",
                header="import asyncio\n",
            ),
        },
        variants=(
            Variant(
                "all-in-flight",
                "in-flight",
                ("--asyncio-concurrency=1000",),
                lean=True,
                **AIOTEMPO_ONLY,
            ),
            Variant("sequential", "zero", lean=True, **AIOTEMPO_ONLY),
        ),
        ratios=(
            Ratio("all-in-flight", "sequential", "<=", 2.0, metric="rss"),
            Ratio("all-in-flight", "sequential"),
        ),
        rounds=5,
    )
)


def scaling_variant(name: str, scale: float, project: str = "wait") -> Variant:
    args = CONCURRENT if project == "wait" else ()
    return Variant(name, project, args, lean=True, scale=scale, **AIOTEMPO_ONLY)


register(
    Suite(
        name="scaling",
        description="the http suite, concurrent, at 500, 1000 and 5000 tests",
        n=1000,
        quick_n=100,
        projects={"wait": http_project(0.1), "floor": http_project(0)},
        variants=(
            scaling_variant("n1", 0),  # one test: pytest's start-up and the server's
            scaling_variant("n500", 0.5),
            scaling_variant("n1000", 1),
            scaling_variant("n5000", 5),
            # pytest's own growth: the floor (0 ms, sequential) at the same sizes.
            scaling_variant("floor-n1", 0, "floor"),
            scaling_variant("floor-n500", 0.5, "floor"),
            scaling_variant("floor-n5000", 5, "floor"),
        ),
        ratios=(
            Ratio("n5000", "n500", "<=", 1.5, per_test=True, base="n1"),
            Ratio("n1000", "n500", per_test=True, base="n1"),
            Ratio("floor-n5000", "floor-n500", per_test=True, base="floor-n1"),
            Ratio("n5000", "floor-n5000"),
        ),
        rounds=5,
    )
)


def testcase_project(base: str, body: str = "") -> Callable[[int], Files]:
    """Empty ``async def`` test methods, one class per module derived from ``base`` (with
    ``body`` first). Every project imports the same modules, so that their runs start alike and
    differ only in the class the tests run in."""
    header = f"import unittest\n\nfrom aiotempo import TestCase\n\n\nclass Test({base}):\n{body}"
    return project(SYNC_INI, "\n    async def test_{i}(self):\n        pass\n", header=header)


TESTCASE_PYTEST = {"lean": True, **AIOTEMPO_ONLY}

register(
    Suite(
        name="testcase",
        description="empty async test methods: aiotempo.TestCase vs IsolatedAsyncioTestCase",
        n=2000,
        quick_n=200,
        projects={
            "stdlib": testcase_project("unittest.IsolatedAsyncioTestCase"),
            "aiotempo": testcase_project("TestCase"),
            "timeout": testcase_project("TestCase", "    timeout = 60\n"),
        },
        variants=(
            Variant("stdlib", "stdlib", **TESTCASE_PYTEST),
            Variant("aiotempo", "aiotempo", **TESTCASE_PYTEST),
            Variant("aiotempo-timeout", "timeout", **TESTCASE_PYTEST),
            Variant("n1", "stdlib", scale=0, **TESTCASE_PYTEST),  # pytest's start-up
            Variant("unittest-stdlib", "stdlib", runner="unittest"),
            Variant("unittest-aiotempo", "aiotempo", runner="unittest"),
            Variant("unittest-timeout", "timeout", runner="unittest"),
            Variant("unittest-n1", "stdlib", scale=0, runner="unittest"),
        ),
        ratios=(
            Ratio("aiotempo", "stdlib", "<=", 1.2, per_test=True, base="n1"),
            Ratio(
                "unittest-aiotempo", "unittest-stdlib", "<=", 1.2, per_test=True, base="unittest-n1"
            ),
            Ratio("aiotempo-timeout", "stdlib", per_test=True, base="n1"),
            Ratio("unittest-timeout", "unittest-stdlib", per_test=True, base="unittest-n1"),
        ),
        rounds=5,
    )
)


# --------------------------------------------------------------------------- running

PROBE = textwrap.dedent(
    """\
    import json
    import os


    def pytest_sessionfinish(session):
        names = set()
        for _, plugin in session.config.pluginmanager.list_name_plugin():
            if plugin is not None:
                names.add(getattr(plugin, "__name__", None) or type(plugin).__module__)
        with open(os.environ["AIOTEMPO_BENCH_PROBE_OUT"], "w") as fh:
            json.dump(sorted(names), fh)
    """
)

SUMMARY_RE = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|warnings?)\b")
#: unittest's summary: "Ran 2000 tests in 0.757s", then "OK" or "FAILED (failures=1, errors=2)".
UNITTEST_RAN_RE = re.compile(r"^Ran (\d+) tests? in ")
UNITTEST_DETAIL_RE = re.compile(r"(\w[\w ]*)=(\d+)")


def outcome_counts(variant: Variant, lines: list[str]) -> dict[str, int]:
    """How many tests passed, failed, ... (and pytest's warnings), from a run's output lines."""
    counts: dict[str, int] = {}
    if not lines:
        return counts
    if variant.runner == "unittest":
        counts = {what: int(num) for what, num in UNITTEST_DETAIL_RE.findall(lines[-1])}
        ran = next((int(m[1]) for line in lines if (m := UNITTEST_RAN_RE.match(line))), 0)
        counts["passed"] = ran - sum(counts.values())
        return counts
    for num, what in SUMMARY_RE.findall(lines[-1]):
        counts[what.rstrip("s") if what.startswith(("error", "warning")) else what] = int(num)
    return counts


#: Run by another interpreter: its pytest11 entry points, the versions of VERSIONED, and which of
#: the modules named on its command line it cannot import.
INTERPRETER_INFO = textwrap.dedent(
    """\
    import importlib.util
    import json
    import platform
    import sys
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in json.loads(sys.argv[1]):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    print(json.dumps({
        "entry_points": [[ep.name, ep.value] for ep in metadata.entry_points(group="pytest11")],
        "versions": versions,
        "missing": [m for m in sys.argv[2:] if importlib.util.find_spec(m) is None],
    }))
    """
)


@dataclass
class RunResult:
    seconds: float
    ok: bool
    error: str = ""
    warnings: int = 0
    max_rss: int = 0  # bytes


@dataclass
class VariantStats:
    times: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)  # peak RSS of each run, bytes
    error: str = ""
    skipped: str = ""  # why the variant did not run (not a failure)
    warnings: int = 0

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and not self.error else None

    @property
    def min(self) -> float | None:
        return min(self.times) if self.times and not self.error else None

    def of(self, metric: str) -> tuple[float | None, float | None]:
        """(median, min) of ``metric``: "time" (seconds) or "rss" (bytes)."""
        if metric == "rss":
            if not self.rss or self.error:
                return None, None
            return statistics.median(self.rss), min(self.rss)
        return self.median, self.min


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def python_of(variant: Variant) -> str:
    """The interpreter that runs ``variant``'s pytest."""
    if variant.python is None:
        return sys.executable
    override = os.environ.get(f"AIOTEMPO_BENCH_PYTHON_{variant.python.upper()}")
    return override or str(INTERPRETERS[variant.python])


@functools.cache
def interpreter_info(python: str, modules: tuple[str, ...] = ()) -> dict[str, object]:
    """Entry points, versions and missing ``modules`` of ``python`` (see INTERPRETER_INFO)."""
    if python == sys.executable:
        eps = [[ep.name, ep.value] for ep in metadata.entry_points(group="pytest11")]
        versions_ = {"python": platform.python_version()}
        for dist in VERSIONED:
            with contextlib.suppress(metadata.PackageNotFoundError):
                versions_[dist] = metadata.version(dist)
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        return {"entry_points": eps, "versions": versions_, "missing": missing}
    proc = subprocess.run(
        [python, "-c", INTERPRETER_INFO, json.dumps(VERSIONED), *modules],
        env=base_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{python} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def entry_points(python: str) -> list[tuple[str, str]]:
    """(name, top-level module) of each pytest11 entry point of ``python``."""
    eps = interpreter_info(python)["entry_points"]
    return [(name, value.split(":")[0].split(".")[0]) for name, value in eps]  # type: ignore[attr-defined]


def blocked_plugins(variant: Variant) -> list[str]:
    """``-p no:NAME`` for the opt-in plugins this variant does not require, and for a ``lean``
    variant every plugin but LEAN_PLUGINS."""
    args: list[str] = []
    if variant.runner != "pytest":
        return args
    for name, top in sorted(entry_points(python_of(variant))):
        opted_out = top in OPT_IN_PLUGINS and top not in variant.requires
        if opted_out or (variant.lean and top not in LEAN_PLUGINS and top not in variant.requires):
            args += ["-p", f"no:{name}"]
    return args


def why_skipped(variant: Variant) -> str | None:
    """Why ``variant`` cannot run here: its interpreter or a module it requires is missing."""
    python = python_of(variant)
    if not Path(python).exists():
        var = f"AIOTEMPO_BENCH_PYTHON_{(variant.python or '').upper()}"
        return f"no interpreter {python} (create it as bench/README.md shows, or set {var})"
    # Another interpreter must have pytest too; aiotempo and pytest-asyncio are in this one.
    modules = variant.requires if variant.python is None else ("pytest", *variant.requires)
    try:
        missing = interpreter_info(python, modules)["missing"]
    except (OSError, RuntimeError, subprocess.SubprocessError, ValueError) as error:
        return f"cannot query {python}: {error}"
    if missing:
        return (
            f"needs {', '.join(missing)}, which {python} cannot import "  # type: ignore[arg-type]
            "(install it there to include this variant)"
        )
    return None


def run_pytest(
    cwd: Path, variant: Variant, expected: int, extra_args: tuple[str, ...] = ()
) -> RunResult:
    cmd = [python_of(variant), "-m", variant.runner, "-q"]
    if variant.runner == "pytest":
        cmd += ["-p", "no:cacheprovider", *blocked_plugins(variant)]
    cmd += [*variant.args, *extra_args]
    env = {**base_env(), **variant.env}
    start = time.perf_counter()
    # Popen and wait4 rather than subprocess.run: wait4 gives the child's own peak RSS.
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    timer = threading.Timer(RUN_TIMEOUT, proc.send_signal, (signal.SIGKILL,))
    timer.start()
    try:
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    max_rss = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    if proc.returncode == -signal.SIGKILL and seconds >= RUN_TIMEOUT:
        return RunResult(seconds, False, f"timed out after {RUN_TIMEOUT:g}s")
    lines = [line for line in stdout.splitlines() if line.strip()]
    counts = outcome_counts(variant, lines)
    passed = counts.get("passed", 0)
    bad = {k: v for k, v in counts.items() if k not in ("passed", "warning")}
    if proc.returncode != 0 or passed != expected or bad:
        tail = "\n".join("    " + line for line in lines[-12:])
        summary = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no summary"
        msg = f"exit {proc.returncode}, {summary} (expected {expected} passed)\n{tail}"
        return RunResult(seconds, False, msg, max_rss=max_rss)
    return RunResult(seconds, True, warnings=counts.get("warning", 0), max_rss=max_rss)


def warm_up(root: Path, cwd: Path, variant: Variant, expected: int) -> RunResult:
    """First run: fills bytecode caches and checks which plugins are active.

    It is timed for a slow variant only (its one run), since it also compiles the project."""
    if variant.runner != "pytest":
        return run_pytest(cwd, variant, expected)  # no plugins to check
    probe_dir = root / "_probe"
    probe_dir.mkdir(exist_ok=True)
    (probe_dir / "_bench_probe.py").write_text(PROBE)
    out = probe_dir / f"{variant.name}.json"
    pythonpath = variant.env.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    pythonpath = os.pathsep.join(p for p in (str(probe_dir), pythonpath) if p)
    env = {**variant.env, "PYTHONPATH": pythonpath, "AIOTEMPO_BENCH_PROBE_OUT": str(out)}
    probed = replace(variant, env=env)
    result = run_pytest(cwd, probed, expected, ("-p", "_bench_probe"))
    if not result.ok:
        return result
    modules_ = json.loads(out.read_text())

    def has(prefix: str) -> bool:
        return any(m == prefix or m.startswith(prefix + ".") for m in modules_)

    missing = [p for p in variant.active if not has(p)]
    unwanted = [p for p in variant.inactive if has(p)]
    if missing or unwanted:
        result.ok = False
        result.error = f"plugin check failed: missing {missing}, unexpectedly active {unwanted}"
    return result


def versions() -> dict[str, str]:
    """Versions of Python, the plugins compared, and of the optional ones that are installed."""
    info = {"python": platform.python_version()}
    for dist in ("pytest", "pytest-asyncio", "aiotempo", *OPT_IN_PLUGINS):
        try:
            info[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if dist not in OPT_IN_PLUGINS:
                info[dist] = "not installed"
    return info


def other_versions(suite: Suite) -> dict[str, dict[str, str]]:
    """Versions in each other interpreter that a variant of ``suite`` runs with (if it exists)."""
    found: dict[str, dict[str, str]] = {}
    for variant in suite.variants:
        if variant.python is None or variant.python in found:
            continue
        python = python_of(variant)
        if why_skipped(variant) is None:
            found[variant.python] = interpreter_info(python)["versions"]  # type: ignore[assignment]
    return found


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}s"


def fmt_mib(size: float | None) -> str:
    return "-" if size is None else f"{size / 2**20:.0f}MiB"


def write_projects(suite: Suite, n: int, root: Path) -> dict[tuple[str, int], Path]:
    """Each project a variant needs, at each size one needs it: (project, tests) -> directory."""
    dirs: dict[tuple[str, int], Path] = {}
    for variant in suite.variants:
        key = (variant.project, variant.tests(n))
        if key in dirs:
            continue
        sized = "" if variant.scale == 1 else f"-{key[1]}"
        dirs[key] = root / suite.name / f"{variant.project}{sized}"
        for rel, text in suite.projects[variant.project](key[1]).items():
            (dirs[key] / rel).parent.mkdir(parents=True, exist_ok=True)
            (dirs[key] / rel).write_text(text)
    return dirs


def measure(
    suite: Suite,
    dirs: Mapping[tuple[str, int], Path],
    n: int,
    rounds: int,
    root: Path,
    slow: bool,
) -> dict[str, VariantStats]:
    """Warm each variant up once, then time them round-robin, rotating the order each round.

    Variants missing an interpreter or a requirement, and slow ones without ``slow``, are
    skipped; a slow variant that runs is timed once, in its warm-up run."""
    stats = {v.name: VariantStats() for v in suite.variants}
    live: list[Variant] = []
    for variant in suite.variants:
        st = stats[variant.name]
        reason = why_skipped(variant)
        if reason:
            st.skipped = reason
            continue
        if variant.slow and not slow:
            st.skipped = "waits in real time; run with --slow to include it (one round)"
            continue
        tests = variant.tests(n)
        result = warm_up(root, dirs[(variant.project, tests)], variant, tests)
        if not result.ok:
            st.error = "warm-up: " + result.error
        elif variant.slow:
            st.times.append(result.seconds)
            st.rss.append(result.max_rss)
            st.warnings = result.warnings
        else:
            live.append(variant)

    tty = sys.stderr.isatty()
    for r in range(rounds):
        shift = r % len(live) if live else 0
        for variant in live[shift:] + live[:shift]:
            st = stats[variant.name]
            if st.error:
                continue
            tests = variant.tests(n)
            result = run_pytest(dirs[(variant.project, tests)], variant, tests)
            if result.ok:
                st.times.append(result.seconds)
                st.rss.append(result.max_rss)
                st.warnings = max(st.warnings, result.warnings)
            else:
                st.error = f"round {r + 1}: {result.error}"
        if tty:
            print(f"\r   round {r + 1}/{rounds}", end="", file=sys.stderr, flush=True)
    if tty:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    return stats


def per_test(
    suite: Suite, stats: Mapping[str, VariantStats], n: int, name: str, base: str | None
) -> tuple[float | None, float | None]:
    """(median, min) seconds per test of variant ``name``, less variant ``base``'s time."""
    tests = {v.name: v.tests(n) for v in suite.variants}
    med, low = stats[name].median, stats[name].min
    if med is None or low is None:
        return None, None
    if base is None:
        return med / tests[name], low / tests[name]
    base_med, base_low = stats[base].median, stats[base].min
    if base_med is None or base_low is None:
        return None, None
    extra_tests = tests[name] - tests[base]
    return (med - base_med) / extra_tests, (low - base_low) / extra_tests


def ratio_values(
    suite: Suite, stats: Mapping[str, VariantStats], n: int, ratio: Ratio
) -> tuple[float | None, float | None, str]:
    """(ratio of medians, ratio of mins, the extra per test) of ``ratio``."""
    if ratio.per_test:
        (num_med, num_low), (den_med, den_low) = (
            per_test(suite, stats, n, name, ratio.base) for name in (ratio.num, ratio.den)
        )
    else:
        num_med, num_low = stats[ratio.num].of(ratio.metric)
        den_med, den_low = stats[ratio.den].of(ratio.metric)
    if not (num_med and den_med and num_low and den_low):
        return None, None, "-"
    med, low = num_med / den_med, num_low / den_low
    tests = next(v.tests(n) for v in suite.variants if v.name == ratio.num)
    if ratio.per_test:
        extra = f"{(num_med - den_med) * 1e6:.0f}us"
    elif ratio.metric == "rss":
        extra = f"{(num_med - den_med) / tests / 1024:.1f}KiB"
    else:
        extra = f"{(num_med - den_med) / tests * 1e6:.0f}us"
    return med, low, extra


def report(
    suite: Suite, stats: Mapping[str, VariantStats], n: int, quick: bool
) -> tuple[bool, list[dict[str, object]]]:
    """Print the variant and ratio tables and the target verdicts; return (ok, ratio records)."""
    width = max(len(v.name) for v in suite.variants)
    print(
        f"   {'variant':<{width}}  {'tests':>5}  {'median':>8}  {'min':>8}  {'peak RSS':>8}"
        "  runs  status"
    )
    for variant in suite.variants:
        st = stats[variant.name]
        status = "FAILED" if st.error else "skipped" if st.skipped else "ok"
        if variant.slow and st.times:
            status += " (slow: one run, --slow)"
        if st.warnings:
            status += f" ({st.warnings} warnings)"
        print(
            f"   {variant.name:<{width}}  {variant.tests(n):>5}  {fmt(st.median):>8}"
            f"  {fmt(st.min):>8}  {fmt_mib(st.of('rss')[0]):>8}  {len(st.times):>4}  {status}"
        )
    for variant in suite.variants:
        if stats[variant.name].error:
            print(f"   {variant.name} failed: {stats[variant.name].error}")
        if stats[variant.name].skipped:
            print(f"   {variant.name} skipped: {stats[variant.name].skipped}")
    bases = {r.base: None for r in suite.ratios if r.per_test}  # in order of appearance
    for base in bases:
        costs = []
        for variant in suite.variants:
            if variant.name != base and any(
                r.per_test and r.base == base and variant.name in (r.num, r.den)
                for r in suite.ratios
            ):
                cost = per_test(suite, stats, n, variant.name, base)[0]
                costs.append(f"{variant.name} {'-' if cost is None else f'{cost * 1e6:.0f}us'}")
        less = f", less {base}'s time" if base else ""
        print(f"   median time per test{less}: {', '.join(costs)}")

    ok = not any(st.error for st in stats.values())
    records: list[dict[str, object]] = []
    verdicts: list[str] = []
    rwidth = max(len(r.label) for r in suite.ratios)
    print(f"   {'ratio':<{rwidth}}  {'median':>6}  {'min':>6}  {'extra/test':>10}  target")
    for ratio in suite.ratios:
        med, low, extra = ratio_values(suite, stats, n, ratio)
        print(
            f"   {ratio.label:<{rwidth}}  {'-' if med is None else f'{med:.2f}':>6}"
            f"  {'-' if low is None else f'{low:.2f}':>6}  {extra:>10}  {ratio.target}"
        )
        passed: bool | None = None
        names = (ratio.num, ratio.den, *((ratio.base,) if ratio.base else ()))
        skipped = [name for name in names if stats[name].skipped]
        if ratio.op and ratio.limit is not None and skipped:
            verdicts.append(
                f"SKIP {suite.name}: {ratio.label} {ratio.target} ({', '.join(skipped)} skipped)"
            )
        elif ratio.op and ratio.limit is not None:
            passed = med is not None and OPS[ratio.op](med, ratio.limit)
            shown = "n/a (variant failed)" if med is None else f"{med:.2f}"
            word = "PASS" if passed else "FAIL"
            if quick:
                word += " (quick: not enforced)"
            else:
                ok = ok and passed
            verdicts.append(f"{word} {suite.name}: {ratio.label} = {shown} {ratio.target}")
        records.append(
            {
                "ratio": ratio.label,
                "metric": ratio.metric,
                "median": med,
                "min": low,
                "extra_per_test": None if extra == "-" else extra,
                "target": ratio.target if ratio.op else None,
                "passed": passed,
            }
        )
    for line in verdicts:
        print(line)
    print()
    return ok, records


def run_suite(suite: Suite, rounds: int | None, quick: bool, slow: bool, root: Path) -> bool:
    n = suite.quick_n if quick else suite.n
    rounds = rounds or (1 if quick else suite.rounds or DEFAULT_ROUNDS)
    vers = versions()
    others = other_versions(suite)
    print(f"== {suite.name}: {suite.description}")
    print(f"   {n} tests, {rounds} round(s); " + ", ".join(f"{k} {v}" for k, v in vers.items()))
    for name, other in others.items():
        print(f"   {name} interpreter: " + ", ".join(f"{k} {v}" for k, v in other.items()))
    dirs = write_projects(suite, n, root)
    stats = measure(suite, dirs, n, rounds, root, slow)
    ok, ratios = report(suite, stats, n, quick)

    record = {
        "suite": suite.name,
        "description": suite.description,
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tests": n,
        "rounds": rounds,
        "quick": quick,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "versions": vers,
        "other_interpreters": others,
        "variants": {
            v.name: {
                "python": python_of(v),
                "tests": v.tests(n),
                "args": None if why_skipped(v) else [*blocked_plugins(v), *v.args],
                "env": dict(v.env),
                "requires": list(v.requires),
                "slow": v.slow,
                "times": stats[v.name].times,
                "median": stats[v.name].median,
                "min": stats[v.name].min,
                "max_rss": stats[v.name].rss,
                "warnings": stats[v.name].warnings,
                "error": stats[v.name].error or None,
                "skipped": stats[v.name].skipped or None,
            }
            for v in suite.variants
        },
        "ratios": ratios,
        "ok": ok,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{suite.name}{'-quick' if quick else ''}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Side-by-side benchmark harness for aiotempo.")
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all)")
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"timed rounds (default: the suite's own, else {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round, fewer tests, targets not enforced"
    )
    parser.add_argument(
        "--slow",
        action="store_true",
        help="also run the variants that wait in real time (once each; minutes)",
    )
    parser.add_argument("--list", action="store_true", help="list suites and exit")
    args = parser.parse_args(argv)

    if args.list:
        for suite in SUITES.values():
            print(f"{suite.name:<12} {suite.n:>5} tests  {suite.description}")
        return 0
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {list(SUITES)}")
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be >= 1")

    ok = True
    with tempfile.TemporaryDirectory(prefix="aiotempo-bench-") as tmp:
        for name in args.suites or list(SUITES):
            ok = run_suite(SUITES[name], args.rounds, args.quick, args.slow, Path(tmp)) and ok
    print("bench: all targets met" if ok else "bench: FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
