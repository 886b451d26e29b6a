"""Checks aiotempo's end-of-run estimates against the savings measured with each feature on.

For each suite (the benchmark suites of ``run.py``, with shorter waits so a run with nothing on
takes seconds, not minutes): run it with concurrency and the virtual clock off and read the
estimates from aiotempo's summary ("--asyncio-clock=virtual would save an estimated X s",
"--asyncio-concurrency=N would save an estimated X s"); run it again with each feature on
(concurrency at the N the estimate names) and measure the saving as the difference of the two
runs' wall times (whole process). The check passes when every estimate is within ±25% of its
measured saving. The numbers are in docs/report.md.

    python bench/savings.py            # all suites, one run each (about 2 minutes)
    python bench/savings.py clock      # one suite
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import run as bench

TOLERANCE = 0.25
BUSY_HEADER = """\
import asyncio
import time


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass
"""
#: name -> (project generator, number of tests)
SUITES = {
    # run.py's clock suite, its 1 s sleeps and 5 s timeouts made 0.1 s and 0.5 s.
    "clock": (
        bench.project(
            bench.ASYNC_INI, bench.sleeps_and_timeouts(0.1, 0.5), header=bench.CLOCK_HEADER
        ),
        60,
    ),
    # Tests that keep the loop busy as long as a quarter of their wait: running is a fifth of
    # the time, and the loop, not the waits, bounds what concurrency gains.
    "busy": (
        bench.project(
            bench.ASYNC_INI,
            "\n\nasync def test_{i}():\n    spin(0.005)\n    await asyncio.sleep(0.02)\n",
            header=BUSY_HEADER,
        ),
        200,
    ),
    # run.py's http and http-fixture suites (100 ms handler; 20 ms fixture set-up and tear-down)
    # at their --quick size.
    "http": (bench.SUITES["http"].projects["wait"], bench.SUITES["http"].quick_n),
    "http-fixture": (
        bench.SUITES["http-fixture"].projects["wait"],
        bench.SUITES["http-fixture"].quick_n,
    ),
}
ESTIMATE = {
    "virtual clock": re.compile(
        r"^virtual clock: off; (--asyncio-clock=virtual) would save an estimated ([\d.]+) s"
    ),
    "concurrency": re.compile(
        r"^concurrency: off; (--asyncio-concurrency=\d+) would save an estimated ([\d.]+) s"
    ),
}


def pytest_run(cwd: Path, *args: str) -> tuple[float, str]:
    """Run pytest (only aiotempo's plugin) in ``cwd``; its wall time and output."""
    lean = bench.Variant("lean", "", lean=True)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    cmd += [*bench.blocked_plugins(lean), *args]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, env=bench.base_env(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def check(name: str, root: Path) -> bool:
    generate, n = SUITES[name]
    cwd = root / name
    for rel, text in generate(n).items():
        (cwd / rel).parent.mkdir(parents=True, exist_ok=True)
        (cwd / rel).write_text(text)
    off, output = pytest_run(cwd)
    ok = True
    for feature, pattern in ESTIMATE.items():
        found = [m for line in output.splitlines() if (m := pattern.match(line))]
        if not found:
            print(f"{name:<13} {feature:<14} no estimate in the summary:\n{output[-2000:]}")
            ok = False
            continue
        option, estimate = found[0].group(1), float(found[0].group(2))
        on, _ = pytest_run(cwd, option)
        measured = off - on
        error = estimate / measured - 1 if measured > 0 else float("inf")
        verdict = "PASS" if abs(error) <= TOLERANCE else "FAIL"
        ok = ok and verdict == "PASS"
        print(
            f"{name:<13} {option:<27} off {off:6.2f} s  on {on:6.2f} s  measured saving "
            f"{measured:6.2f} s  estimate {estimate:6.2f} s  {error:+6.1%}  {verdict}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("suites", nargs="*", choices=[[], *SUITES], metavar="SUITE")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="aiotempo-savings-") as tmp:
        results = [check(name, Path(tmp)) for name in args.suites or SUITES]
    print("savings: every estimate within ±25%" if all(results) else "savings: FAILED")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
