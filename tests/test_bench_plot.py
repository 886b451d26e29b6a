"""bench/plot.py draws bench/run.py's results: PNG and SVG per suite, and an overview.

It runs as ``make bench-plots`` does, in a subprocess, on fabricated results. Without matplotlib
(the ``test`` and ``bench`` extras install it) these tests skip, except on CI (``CI`` set), where
that is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "bench" / "plot.py"

if importlib.util.find_spec("matplotlib") is None:
    if os.environ.get("CI"):
        pytest.fail("matplotlib is missing; CI is set, so bench/plot.py must be tested", False)
    pytest.skip("matplotlib is not installed (the test extra installs it)", allow_module_level=True)


def variant(times: list[float] | None, tests: int = 4, **extra: object) -> dict[str, object]:
    """One variant's record, as bench/run.py writes it."""
    times = times or []
    return {
        "python": sys.executable,
        "tests": tests,
        "args": [],
        "env": {},
        "requires": [],
        "slow": False,
        "times": times,
        "median": sorted(times)[len(times) // 2] if times else None,
        "min": min(times) if times else None,
        "max_rss": [50 * 2**20] * len(times),
        "warnings": 0,
        "error": None,
        "skipped": None,
        **extra,
    }


def results(suite: str, variants: dict[str, dict[str, object]], rss: bool = False) -> dict:
    ratio = {
        "ratio": "a/b RSS" if rss else "a/b",
        "metric": "rss" if rss else "time",
        "median": 0.5,
        "min": 0.5,
        "extra_per_test": "1us",
        "target": "<= 1",
        "passed": True,
    }
    return {
        "suite": suite,
        "description": f"the {suite} suite",
        "when": "2026-01-02T03:04:05+00:00",
        "tests": 4,
        "rounds": 3,
        "quick": False,
        "cpus": 2,
        "platform": "Linux",
        "versions": {"python": "3.11.7", "pytest": "9.0", "aiotempo": "0.1.0"},
        "other_interpreters": {
            "cooperative": {
                "python": "3.11.7",
                "pytest": "8.4.2",
                "pytest-asyncio-cooperative": "0.40",
            }
        },
        "variants": variants,
        "ratios": [ratio],
        "ok": True,
    }


@pytest.fixture
def fabricated(tmp_path: Path) -> Path:
    """A results directory with two registered suites (one measuring RSS, one spanning a
    hundredfold, so drawn on a log scale) and a stray file of a suite run.py does not have."""
    out = tmp_path / "results"
    out.mkdir()
    http = {
        "aiotempo-concurrent": variant([1.0, 1.1, 1.2], args=["--asyncio-concurrency=256"]),
        "floor": variant([0.7, 0.8, 0.75]),
        "cooperative": variant([1.1, 1.0, 1.05], requires=["pytest_asyncio_cooperative"]),
        "cooperative-same-n": variant(None, skipped="no interpreter /x (create it ...)"),
        "pytest-asyncio": variant([52.0], slow=True, args=["-p", "no:aiotempo"]),
        "pytest-asyncio-xdist": variant([27.0], slow=True, args=["-p", "no:aiotempo", "-n", "2"]),
        "broken": variant(None, error="round 1: exit 1"),
    }
    memory = {"all-in-flight": variant([1.3, 1.4], tests=8), "sequential": variant([0.8, 0.9])}
    (out / "http.json").write_text(json.dumps(results("http", http)))
    (out / "memory.json").write_text(json.dumps(results("memory", memory, rss=True)))
    (out / "stray.json").write_text(json.dumps(results("stray", memory)))
    (out / "http-quick.json").write_text(json.dumps(results("http", http)))
    return out


def plot(results_dir: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["MPLCONFIGDIR"] = str(out.parent / "mplconfig")  # no writes to the user's cache
    return subprocess.run(
        [sys.executable, str(PLOT), "--results", str(results_dir), "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_writes_png_and_svg_per_suite_and_an_overview(fabricated: Path, tmp_path: Path) -> None:
    out = tmp_path / "img"
    proc = plot(fabricated, out, "--markdown")
    assert proc.returncode == 0, proc.stderr
    # The suites run.py registers, in its order; not the stray file, nor the --quick results.
    names = sorted(p.name for p in out.iterdir())
    stems = ("bench-http", "bench-memory", "bench-overview")
    assert names == sorted(f"{stem}.{fmt}" for stem in stems for fmt in ("png", "svg"))
    for path in out.iterdir():
        assert path.stat().st_size > 1000, path
    assert (out / "bench-http.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (out / "bench-http.svg").read_text()
    # Text stays text (svg.fonttype none): labels are searchable, no glyph outlines embedded.
    assert "pytest-asyncio-xdist" in svg
    assert "52.0 s (1 run)" in svg
    assert "skipped (not installed)" in svg
    assert "failed" in svg
    assert "2026-01-02" in svg  # the date and machine caveat
    assert "<dc:date>" not in svg
    # The numbers, for the docs.
    assert "| `pytest-asyncio-xdist` | pytest-xdist | 4 | 27.0 s | 27.0 s | 1 |" in proc.stdout
    assert "| `cooperative-same-n` | pytest-asyncio-cooperative | 4 | skipped |" in proc.stdout
    assert "| `a/b RSS` | 0.50 | <= 1 (met) |" in proc.stdout


def test_the_same_results_give_the_same_files(fabricated: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    for out in (first, second):
        proc = plot(fabricated, out, "http")
        assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in first.iterdir()) == ["bench-http.png", "bench-http.svg"]
    for name in ("bench-http.png", "bench-http.svg"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_named_suites_leave_the_overview_of_every_suite_alone(
    fabricated: Path, tmp_path: Path
) -> None:
    out = tmp_path / "img"
    proc = plot(fabricated, out, "http", "memory")
    assert proc.returncode == 0, proc.stderr
    assert not (out / "bench-overview.svg").exists()
    assert (out / "bench-memory.svg").exists()


def test_quick_results_and_missing_ones(fabricated: Path, tmp_path: Path) -> None:
    proc = plot(fabricated, tmp_path / "quick", "--quick")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "quick" / "bench-http.svg").stat().st_size > 1000
    proc = plot(fabricated, tmp_path / "none", "clock")
    assert proc.returncode != 0
    assert "no results for suite 'clock'" in proc.stderr


def test_the_docs_show_charts_that_exist() -> None:
    """docs/benchmarks.md embeds each chart as SVG and links its PNG; both are in the tree."""
    page = (ROOT / "docs" / "benchmarks.md").read_text()
    svgs = re.findall(r"\]\((img/bench-[\w-]+)\.svg\)", page)
    assert "img/bench-http" in svgs and "img/bench-clock" in svgs
    for stem in svgs:
        assert f"]({stem}.png)" in page, stem
        for fmt in ("svg", "png"):
            assert (ROOT / "docs" / f"{stem}.{fmt}").stat().st_size > 1000, (stem, fmt)
