"""The runnable example suite in examples/ passes under aiotempo and under pytest-asyncio."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXPECTED_PASSED = 61


def run_examples(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, int]]:
    env = {key: value for key, value in os.environ.items() if key != "PYTEST_ADDOPTS"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(EXAMPLES), "-p", "no:cacheprovider", "-q", *args],
        cwd=EXAMPLES.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {outcome: int(number) for number, outcome in re.findall(r"(\d+) (\w+)", summary)}
    return proc, counts


@pytest.mark.parametrize(
    "plugin_args",
    [pytest.param((), id="aiotempo"), pytest.param(("-p", "no:aiotempo"), id="pytest-asyncio")],
)
def test_example_suite_passes(plugin_args: tuple[str, ...]) -> None:
    proc, counts = run_examples(*plugin_args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert counts == {"passed": EXPECTED_PASSED}, proc.stdout
