#!/usr/bin/env python3
"""Side-by-side benchmark harness for aiotempo.

Each suite generates a small test project in a temporary directory and runs it under several
named variants (pytest args/env), each in a fresh ``python -m pytest`` subprocess. Variants are
interleaved round-robin over several rounds so that machine noise hits all of them alike; the
median and min wall-clock time per variant are reported, then the ratios between variants, and
each target ratio gets a PASS/FAIL line. A variant that needs a module the environment lacks is
skipped (with the reason), and so is a real-time ("slow") variant unless ``--slow`` is given.

Usage: python bench/run.py [SUITE ...] [--rounds N] [--quick] [--slow] [--list]

Standard library only. Results go to bench/results/<suite>.json (git-ignored).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import operator
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_ROUNDS = 11  # odd, so the median is a real run; ~2 min for all suites on 2 cores
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
    """

    name: str
    project: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    active: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    slow: bool = False


@dataclass(frozen=True)
class Ratio:
    """``median(num) / median(den)``; a target when ``op`` and ``limit`` are set."""

    num: str
    den: str
    op: str | None = None
    limit: float | None = None

    @property
    def label(self) -> str:
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
    for ratio in suite.ratios:
        assert {ratio.num, ratio.den} <= names, (suite.name, ratio.label)
        assert ratio.op in (None, *OPS), (suite.name, ratio.op)
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
        variants=plugin_variants(),
        ratios=(
            Ratio("aiotempo", "sync", "<=", 1.2),
            Ratio("pytest-asyncio", "sync"),
            Ratio("aiotempo", "pytest-asyncio"),
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
        Variant("pytest-asyncio", "sleeps", no_aiotempo, **pytest_asyncio, slow=True),
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
        ),
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


@dataclass
class RunResult:
    seconds: float
    ok: bool
    error: str = ""
    warnings: int = 0


@dataclass
class VariantStats:
    times: list[float] = field(default_factory=list)
    error: str = ""
    skipped: str = ""  # why the variant did not run (not a failure)
    warnings: int = 0

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times and not self.error else None

    @property
    def min(self) -> float | None:
        return min(self.times) if self.times and not self.error else None


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.setdefault("PYTHONHASHSEED", "0")
    return env


@functools.cache
def opt_in_entry_points() -> dict[str, tuple[str, ...]]:
    """OPT_IN_PLUGINS module -> the names of its installed pytest11 entry points."""
    names: dict[str, list[str]] = {}
    for entry_point in metadata.entry_points(group="pytest11"):
        top = entry_point.value.split(":")[0].split(".")[0]
        if top in OPT_IN_PLUGINS:
            names.setdefault(top, []).append(entry_point.name)
    return {module: tuple(sorted(eps)) for module, eps in names.items()}


def blocked_plugins(variant: Variant) -> list[str]:
    """``-p no:NAME`` for the opt-in plugins this variant does not require."""
    args: list[str] = []
    for module, names in opt_in_entry_points().items():
        if module not in variant.requires:
            for name in names:
                args += ["-p", f"no:{name}"]
    return args


def missing_requirements(variant: Variant) -> list[str]:
    return [module for module in variant.requires if importlib.util.find_spec(module) is None]


def run_pytest(
    cwd: Path, variant: Variant, expected: int, extra_args: tuple[str, ...] = ()
) -> RunResult:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += [*blocked_plugins(variant), *variant.args, *extra_args]
    env = {**base_env(), **variant.env}
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return RunResult(time.perf_counter() - start, False, f"timed out after {RUN_TIMEOUT:g}s")
    seconds = time.perf_counter() - start
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    counts: dict[str, int] = {}
    if lines:
        for num, what in SUMMARY_RE.findall(lines[-1]):
            counts[what.rstrip("s") if what.startswith(("error", "warning")) else what] = int(num)
    passed = counts.get("passed", 0)
    bad = {k: v for k, v in counts.items() if k not in ("passed", "warning")}
    if proc.returncode != 0 or passed != expected or bad:
        tail = "\n".join("    " + line for line in lines[-12:])
        summary = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no summary"
        msg = f"exit {proc.returncode}, {summary} (expected {expected} passed)\n{tail}"
        return RunResult(seconds, False, msg)
    return RunResult(seconds, True, warnings=counts.get("warning", 0))


def warm_up(root: Path, cwd: Path, variant: Variant, expected: int) -> RunResult:
    """First run: fills bytecode caches and checks which plugins are active.

    It is timed for a slow variant only (its one run), since it also compiles the project."""
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


def fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.3f}s"


def write_projects(suite: Suite, n: int, root: Path) -> dict[str, Path]:
    dirs: dict[str, Path] = {}
    for name, generate in suite.projects.items():
        dirs[name] = root / suite.name / name
        for rel, text in generate(n).items():
            (dirs[name] / rel).parent.mkdir(parents=True, exist_ok=True)
            (dirs[name] / rel).write_text(text)
    return dirs


def measure(
    suite: Suite, dirs: Mapping[str, Path], n: int, rounds: int, root: Path, slow: bool
) -> dict[str, VariantStats]:
    """Warm each variant up once, then time them round-robin, rotating the order each round.

    Variants missing a requirement, and slow ones without ``slow``, are skipped; a slow variant
    that runs is timed once, in its warm-up run."""
    stats = {v.name: VariantStats() for v in suite.variants}
    live: list[Variant] = []
    for variant in suite.variants:
        st = stats[variant.name]
        missing = missing_requirements(variant)
        if missing:
            st.skipped = (
                f"needs {', '.join(missing)}, which {sys.executable} cannot import "
                "(install it there to include this variant)"
            )
            continue
        if variant.slow and not slow:
            st.skipped = "waits in real time; run with --slow to include it (one round)"
            continue
        result = warm_up(root, dirs[variant.project], variant, n)
        if not result.ok:
            st.error = "warm-up: " + result.error
        elif variant.slow:
            st.times.append(result.seconds)
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
            result = run_pytest(dirs[variant.project], variant, n)
            if result.ok:
                st.times.append(result.seconds)
                st.warnings = max(st.warnings, result.warnings)
            else:
                st.error = f"round {r + 1}: {result.error}"
        if tty:
            print(f"\r   round {r + 1}/{rounds}", end="", file=sys.stderr, flush=True)
    if tty:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    return stats


def report(
    suite: Suite, stats: Mapping[str, VariantStats], n: int, quick: bool
) -> tuple[bool, list[dict[str, object]]]:
    """Print the variant and ratio tables and the target verdicts; return (ok, ratio records)."""
    width = max(len(v.name) for v in suite.variants)
    print(f"   {'variant':<{width}}  {'median':>8}  {'min':>8}  runs  status")
    for variant in suite.variants:
        st = stats[variant.name]
        status = "FAILED" if st.error else "skipped" if st.skipped else "ok"
        if variant.slow and st.times:
            status += " (slow: one run, --slow)"
        if st.warnings:
            status += f" ({st.warnings} warnings)"
        print(
            f"   {variant.name:<{width}}  {fmt(st.median):>8}  {fmt(st.min):>8}"
            f"  {len(st.times):>4}  {status}"
        )
    for variant in suite.variants:
        if stats[variant.name].error:
            print(f"   {variant.name} failed: {stats[variant.name].error}")
        if stats[variant.name].skipped:
            print(f"   {variant.name} skipped: {stats[variant.name].skipped}")

    ok = not any(st.error for st in stats.values())
    records: list[dict[str, object]] = []
    verdicts: list[str] = []
    rwidth = max(len(r.label) for r in suite.ratios)
    print(f"   {'ratio':<{rwidth}}  {'median':>6}  {'min':>6}  {'extra/test':>10}  target")
    for ratio in suite.ratios:
        num, den = stats[ratio.num], stats[ratio.den]
        med = low = extra = None
        if num.median and den.median and num.min and den.min:
            med, low = num.median / den.median, num.min / den.min
            extra = (num.median - den.median) / n * 1e6
        print(
            f"   {ratio.label:<{rwidth}}  {'-' if med is None else f'{med:.2f}':>6}"
            f"  {'-' if low is None else f'{low:.2f}':>6}"
            f"  {'-' if extra is None else f'{extra:.0f}us':>10}  {ratio.target}"
        )
        passed: bool | None = None
        skipped = [name for name in (ratio.num, ratio.den) if stats[name].skipped]
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
                "median": med,
                "min": low,
                "extra_us_per_test": extra,
                "target": ratio.target if ratio.op else None,
                "passed": passed,
            }
        )
    for line in verdicts:
        print(line)
    print()
    return ok, records


def run_suite(suite: Suite, rounds: int, quick: bool, slow: bool, root: Path) -> bool:
    n = suite.quick_n if quick else suite.n
    vers = versions()
    print(f"== {suite.name}: {suite.description}")
    print(f"   {n} tests, {rounds} round(s); " + ", ".join(f"{k} {v}" for k, v in vers.items()))
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
        "variants": {
            v.name: {
                "args": [*blocked_plugins(v), *v.args],
                "env": dict(v.env),
                "requires": list(v.requires),
                "slow": v.slow,
                "times": stats[v.name].times,
                "median": stats[v.name].median,
                "min": stats[v.name].min,
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
    parser.add_argument("--rounds", type=int, help=f"timed rounds (default {DEFAULT_ROUNDS})")
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
            print(f"{suite.name:<10} {suite.n:>5} tests  {suite.description}")
        return 0
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        parser.error(f"unknown suite(s) {unknown}; known: {list(SUITES)}")
    rounds = args.rounds or (1 if args.quick else DEFAULT_ROUNDS)
    if rounds < 1:
        parser.error("--rounds must be >= 1")

    ok = True
    with tempfile.TemporaryDirectory(prefix="aiotempo-bench-") as tmp:
        for name in args.suites or list(SUITES):
            ok = run_suite(SUITES[name], rounds, args.quick, args.slow, Path(tmp)) and ok
    print("bench: all targets met" if ok else "bench: FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
