#!/usr/bin/env python3
"""Plots of the benchmark results: bench/results/<suite>.json -> <out>/bench-<suite>.{png,svg}.

One horizontal bar chart per suite (the median wall time of each variant, the spread of its runs
as a whisker, coloured by the plugin that ran it), and ``bench-overview`` with every suite that
compares aiotempo with another plugin. The charts show what ``bench/run.py`` measured: run it
first (``--slow`` for the variants that wait in real time, which are what aiotempo is compared
with).

Usage: python bench/plot.py [SUITE ...] [--results DIR] [--out DIR] [--quick] [--markdown]

Needs matplotlib (the project's ``bench`` extra); it draws with the Agg backend, no display.
The files are deterministic for the same results: SVG text stays text (``svg.fonttype`` none),
with no date and a fixed id salt, so regenerating unchanged results changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
OUT_DIR = REPO_DIR / "docs" / "img"
FORMATS = ("png", "svg")

#: The plugins a variant can run under (see ``family``), in the legend's order, with their colours
#: (Okabe-Ito: told apart with colour-blindness too). "no asyncio plugin" is the plain-pytest
#: baseline of the ``empty`` and ``fixture`` suites.
FAMILIES = {
    "aiotempo": "#0072B2",
    "pytest-asyncio": "#E69F00",
    "pytest-xdist": "#D55E00",
    "pytest-asyncio-cooperative": "#009E73",
    "looptime": "#CC79A7",
    "no asyncio plugin": "#999999",
}

#: Variants that are a suite's yardstick rather than a contender (nothing to wait for, or no
#: plugin): drawn hatched.
REFERENCES = ("sync", "floor", "zero-sleep", "sequential")

Record = Mapping[str, Any]


def family(name: str, variant: Mapping[str, Any]) -> str:
    """The plugin that ran ``variant`` (one of FAMILIES), from its name, requirements and args:
    pytest-xdist's variants run pytest-asyncio over workers, looptime's run pytest-asyncio too."""
    args = variant.get("args") or []
    requires = variant.get("requires") or []
    if "xdist" in name or "xdist" in requires or "-n" in args:
        return "pytest-xdist"
    if "cooperative" in name or "pytest_asyncio_cooperative" in requires:
        return "pytest-asyncio-cooperative"
    if "looptime" in name or "looptime" in requires:
        return "looptime"
    if name == "sync" or "no:asyncio" in args:
        return "no asyncio plugin"
    if "pytest-asyncio" in name or "no:aiotempo" in args:
        return "pytest-asyncio"
    return "aiotempo"


def is_reference(name: str) -> bool:
    return any(name == ref or name.startswith(ref + "-") for ref in REFERENCES)


def load(results: Path, suites: Sequence[str], quick: bool) -> list[Record]:
    """The records of ``suites`` (default: every suite with results, in bench/run.py's order)."""
    suffix = "-quick" if quick else ""
    if not suites:
        found = sorted(
            p.name[: -len(suffix + ".json")]
            for p in results.glob(f"*{suffix}.json")
            if quick or not p.name.endswith("-quick.json")
        )
        order = registered_suites()
        # Suites bench/run.py no longer has (an old experiment's file) are left out.
        suites = [s for s in order if s in found] if order else found
    records = []
    for suite in suites:
        path = results / f"{suite}{suffix}.json"
        if not path.exists():
            raise SystemExit(f"plot: no results for suite {suite!r} ({path}); run bench/run.py")
        record = json.loads(path.read_text())
        if "variants" not in record:
            raise SystemExit(f"plot: {path} is not a bench/run.py results file")
        records.append(record)
    return records


def registered_suites() -> list[str]:
    """The suites bench/run.py registers, in its order ([] where it cannot be imported)."""
    try:
        sys.path.insert(0, str(BENCH_DIR))
        import run  # type: ignore[import-not-found]

        return list(run.SUITES)
    except Exception:
        return []
    finally:
        sys.path.remove(str(BENCH_DIR))


def seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 10:
        return f"{value:.1f} s"
    return f"{value:.2f} s"


def caption(record: Record) -> str:
    """When, where and with what the suite was measured: the caveat every chart carries."""
    versions = record.get("versions", {})
    used = ", ".join(
        f"{k} {v}" for k, v in versions.items() if k not in ("python",) and v != "not installed"
    )
    for other in record.get("other_interpreters", {}).values():
        extra = ", ".join(f"{k} {v}" for k, v in other.items() if k not in ("python", "pytest"))
        used += f"; {extra} (pytest {other.get('pytest', '?')}, its own environment)"
    variants = record["variants"].values()
    sized = any(v.get("tests") != record.get("tests") for v in variants)
    runs = f"median of {record.get('rounds')} runs"
    if any(v.get("slow") and v.get("times") for v in variants):
        runs += " (real-time variants: 1 run)"
    size = "tests as labelled" if sized else tests(record.get("tests"))
    when = str(record.get("when", "?"))[:10]
    return (
        f"{size}; {runs}; {when}, {record.get('cpus', '?')} CPUs, "
        f"Python {versions.get('python', '?')}\n{used}"
    )


def ratio(value: float) -> str:
    """Two decimals, or two significant digits for a small ratio (0.0012 is not 0.00)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def tests(n: object) -> str:
    return "1 test" if n == 1 else f"{n} tests"


def draw_suite(ax: Any, record: Record) -> None:
    """One suite's horizontal bars on ``ax``: a bar per variant, top to bottom in run.py's order."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    variants: Mapping[str, Mapping[str, Any]] = record["variants"]
    names = list(variants)
    medians = [variants[n].get("median") for n in names]
    measured = [m for m in medians if m]
    span = max(measured) / min(measured) if measured else 1.0
    log = span > 20
    ys = list(range(len(names)))[::-1]
    x_left = min(measured) / 2 if log and measured else 0.0
    x_right = max(measured) if measured else 1.0
    for y, name, median in zip(ys, names, medians, strict=True):
        variant = variants[name]
        fam = family(name, variant)
        colour = FAMILIES[fam]
        if median:
            times = variant.get("times") or [median]
            lo, hi = min(times), max(times)
            ax.barh(
                y,
                median - x_left,
                left=x_left,
                color=colour,
                alpha=0.55 if is_reference(name) else 1.0,
                hatch="//" if is_reference(name) else None,
                edgecolor="white" if is_reference(name) else colour,
                linewidth=0,
                height=0.7,
            )
            if hi > lo:
                ax.plot([lo, hi], [y, y], color="#333333", linewidth=1)
            runs = len(times)
            note = seconds(median) + (" (1 run)" if runs == 1 and variant.get("slow") else "")
            ax.text(
                hi * (1.04 if log else 1) + (0 if log else x_right * 0.01),
                y,
                " " + note,
                va="center",
                fontsize=8,
            )
        else:
            why = "failed" if variant.get("error") else "skipped"
            reason = str(variant.get("skipped") or variant.get("error") or "")
            if "--slow" in reason:
                why += " (needs --slow)"
            elif "cannot import" in reason or "no interpreter" in reason:
                why += " (not installed)"
            ax.text(x_left if log else 0, y, f"  {why}", va="center", fontsize=8, color="#666666")
    sized = any(variants[n].get("tests") != record.get("tests") for n in names)
    labels = [f"{n} ({tests(variants[n].get('tests'))})" if sized else n for n in names]
    ax.set_yticks(ys, labels, fontsize=9)
    ax.set_ylim(-0.6, len(names) - 0.4)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(x_left, x_right * 2.5)
        steps = [m * 10.0**e for e in range(-2, 4) for m in (1, 2, 5)]
        ax.set_xticks([t for t in steps if x_left <= t <= x_right * 2.5])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("wall time, whole pytest run (s, log scale)", fontsize=9)
    else:
        ax.set_xlim(0, x_right * 1.3)
        ax.set_xlabel("wall time, whole pytest run (s)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"{record['suite']}: {record.get('description', '')}", fontsize=10, loc="left")


def legend(fig: Any, records: Sequence[Record], **where: Any) -> None:
    """One legend for the figure: the plugins its suites' variants ran under, and the hatch."""
    variants = [(n, v) for r in records for n, v in r["variants"].items()]
    present = [f for f in FAMILIES if any(family(n, v) == f for n, v in variants)]
    handles = [_patch(FAMILIES[f], f) for f in present]
    if any(is_reference(n) for n, _ in variants):
        handles.append(_patch("#bbbbbb", "reference (nothing to wait for)", hatch="//"))
    fig.legend(handles=handles, fontsize=8, frameon=False, **where)


def _patch(colour: str, label: str, hatch: str | None = None) -> Any:
    from matplotlib.patches import Patch

    return Patch(facecolor=colour, edgecolor="white", hatch=hatch, label=label)


def rss_panel(ax: Any, record: Record) -> None:
    """Median peak RSS per variant, for suites that measure memory."""
    variants = record["variants"]
    names = list(variants)
    ys = list(range(len(names)))[::-1]
    for y, name in zip(ys, names, strict=True):
        rss = variants[name].get("max_rss") or []
        if rss and not variants[name].get("error"):
            mib = sorted(rss)[len(rss) // 2] / 2**20
            ax.barh(y, mib, color=FAMILIES[family(name, variants[name])], height=0.7)
            ax.text(mib, y, f" {mib:.0f} MiB", va="center", fontsize=8)
    ax.set_yticks(ys, [""] * len(names))
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.set_xlim(0, ax.get_xlim()[1] * 1.3)
    ax.set_xlabel("peak RSS (MiB)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def has_rss(record: Record) -> bool:
    return any(r.get("metric") == "rss" for r in record.get("ratios", []))


def compares_plugins(record: Record) -> bool:
    """Whether the suite compares aiotempo with another asyncio plugin (the overview's suites)."""
    variants = record["variants"]
    families = {family(n, v) for n, v in variants.items()} - {"no asyncio plugin"}
    return len(families) > 1


def setup_matplotlib() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(
        {
            "svg.fonttype": "none",  # text as text: small files, no embedded glyphs
            "svg.hashsalt": "aiotempo-bench",  # stable ids: same results, same file
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial", "sans-serif"],
            "hatch.color": "white",
            "hatch.linewidth": 0.8,
        }
    )
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in FORMATS:
        path = out / f"{stem}.{fmt}"
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(path, format=fmt, dpi=100, bbox_inches="tight", metadata=metadata)
        written.append(path)
    return written


def height(record: Record) -> float:
    return 1.3 + 0.32 * len(record["variants"])


def plot_suite(plt: Any, record: Record, out: Path) -> list[Path]:
    rss = has_rss(record)
    fig = plt.figure(figsize=(10 if rss else 8, height(record) + 0.5))
    if rss:
        ax, ax_rss = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        draw_suite(ax, record)
        rss_panel(ax_rss, record)
    else:
        draw_suite(fig.add_subplot(), record)
    fig.tight_layout()
    legend(fig, [record], loc="upper left", bbox_to_anchor=(1.0, 0.95))
    fig.text(0.01, 0.0, caption(record), fontsize=7, color="#555555", va="top")
    paths = save(fig, out, f"bench-{record['suite']}")
    plt.close(fig)
    return paths


def plot_overview(plt: Any, records: Sequence[Record], out: Path) -> list[Path]:
    chosen = [r for r in records if compares_plugins(r)]
    if not chosen:
        return []
    heights = [height(r) for r in chosen]
    fig = plt.figure(figsize=(8, sum(heights) + 0.8))
    axes = fig.subplots(len(chosen), 1, gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, record in zip(axes[:, 0], chosen, strict=True):
        draw_suite(ax, record)
    top = 1 - 0.5 / (sum(heights) + 0.8)  # room for the legend
    fig.tight_layout(rect=(0, 0, 1, top))
    legend(fig, chosen, loc="upper center", bbox_to_anchor=(0.5, 1.0), ncol=3)
    first = chosen[0]
    when = str(first.get("when", "?"))[:10]
    fig.text(
        0.01,
        0.0,
        f"bench/run.py, {when}, {first.get('cpus', '?')} CPUs; median wall time of each "
        "variant's runs (whisker: fastest to slowest run). Every suite's own chart gives versions.",
        fontsize=7,
        color="#555555",
        va="top",
    )
    paths = save(fig, out, "bench-overview")
    plt.close(fig)
    return paths


def markdown(records: Iterable[Record]) -> str:
    """The numbers behind the charts, as Markdown tables (for docs/benchmarks.md)."""
    lines: list[str] = []
    for record in records:
        lines += [f"#### `{record['suite']}`", ""]
        lines += [
            "| variant | plugin | tests | median | min | runs |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for name, v in record["variants"].items():
            if v.get("median"):
                med, low, runs = seconds(v["median"]), seconds(v["min"]), str(len(v["times"]))
            else:
                med, low, runs = ("failed" if v.get("error") else "skipped"), "", "0"
            lines.append(
                f"| `{name}` | {family(name, v)} | {v.get('tests')} | {med} | {low} | {runs} |"
            )
        lines += ["", "| ratio | median | target |", "| --- | ---: | --- |"]
        for r in record.get("ratios", []):
            med = "-" if r.get("median") is None else ratio(r["median"])
            target = r.get("target") or "reported"
            if r.get("passed") is not None:
                target += " (met)" if r["passed"] else " (**missed**)"
            lines.append(f"| `{r['ratio']}` | {med} | {target} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Charts of bench/run.py's results.")
    parser.add_argument("suites", nargs="*", metavar="SUITE", help="suites (default: all)")
    parser.add_argument("--results", type=Path, default=RESULTS_DIR, help="results directory")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where the charts go")
    parser.add_argument("--quick", action="store_true", help="plot the --quick results")
    parser.add_argument(
        "--markdown", action="store_true", help="also print the numbers as Markdown tables"
    )
    args = parser.parse_args(argv)

    records = load(args.results, args.suites, args.quick)
    if not records:
        print(f"plot: no results in {args.results}; run bench/run.py first", file=sys.stderr)
        return 1
    plt = setup_matplotlib()
    written: list[Path] = []
    for record in records:
        written += plot_suite(plt, record, args.out)
    if not args.suites and len(records) > 1:  # the overview is of every suite, or not redrawn
        written += plot_overview(plt, records, args.out)
    for path in written:
        print(f"plot: wrote {path}")
    if args.markdown:
        print(markdown(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
