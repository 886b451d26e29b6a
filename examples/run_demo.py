"""Run the example suite under pytest-asyncio and under aiotempo, and compare the two runs.

Usage: python examples/run_demo.py [extra pytest args for the aiotempo run]

Both runs use the current interpreter. The pytest-asyncio run disables aiotempo with
``-p no:aiotempo``; the aiotempo run is plain ``pytest examples`` plus the extra arguments
(e.g. ``--asyncio-concurrency=8``). Exits non-zero if either run fails or their counts differ.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent
SUMMARY = re.compile(r"^=*\s*(?P<body>\d+ \w+.*?) in [\d.]+s")
NOISE = 1.05  # speed-ups below this ratio are run-to-run noise, not savings
OUTCOME = re.compile(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected)")


@dataclass
class Run:
    name: str
    returncode: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    output: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.counts.get("passed"))

    def count(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)


def parse_summary(output: str) -> dict[str, int]:
    """Outcome counts from pytest's final summary line, e.g. ``61 passed, 1 skipped in 6.1s``."""
    for line in reversed(output.splitlines()):
        if match := SUMMARY.match(line.strip()):
            return {
                ("errors" if outcome.startswith("error") else outcome): int(number)
                for number, outcome in OUTCOME.findall(match["body"])
            }
    return {}


def run_suite(name: str, *args: str) -> Run:
    command = [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", "-q"]
    command += args
    print(f"$ {shlex.join(command)}", flush=True)
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    start = time.perf_counter()
    proc = subprocess.run(
        command, cwd=EXAMPLES.parent, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    return Run(name, proc.returncode, seconds, parse_summary(output), output)


def aiotempo_installed() -> bool:
    return any(ep.name == "aiotempo" for ep in entry_points(group="pytest11"))


def main(argv: list[str]) -> int:
    if not aiotempo_installed():
        print("aiotempo is not installed in this interpreter: pip install -e . first")
        return 2
    runs = [run_suite("pytest-asyncio", "-p", "no:aiotempo"), run_suite("aiotempo", *argv)]

    print()
    print(f"{'plugin':<16}{'passed':>8}{'failed':>8}{'errors':>8}{'skipped':>9}{'wall':>9}")
    for run in runs:
        print(
            f"{run.name:<16}{run.count('passed'):>8}{run.count('failed'):>8}"
            f"{run.count('errors'):>8}{run.count('skipped'):>9}{run.seconds:>8.2f}s"
        )
    print()

    baseline, candidate = runs
    failed = [run for run in runs if not run.ok]
    for run in failed:
        tail = "\n".join(run.output.splitlines()[-40:])
        print(f"--- {run.name} run failed (exit code {run.returncode}); end of its output:")
        print(tail)
    if failed:
        return 1
    if baseline.counts != candidate.counts:
        print(f"counts differ: pytest-asyncio {baseline.counts} vs aiotempo {candidate.counts}")
        return 1

    saved = baseline.seconds - candidate.seconds
    speedup = baseline.seconds / candidate.seconds
    if speedup >= NOISE:
        print(f"aiotempo saved {saved:.2f} s, {speedup:.1f}x faster")
    elif saved >= 0:
        print(f"no saving yet: aiotempo was {saved:.2f} s faster, within run-to-run noise")
    else:
        print(f"no saving yet: aiotempo took {-saved:.2f} s longer")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
