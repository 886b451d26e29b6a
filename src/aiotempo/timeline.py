"""``--asyncio-report=PATH.html``: one self-contained page showing where the suite's time went.

The page is a timeline of every test's setup, call and teardown, drawn from the start and stop
pytest records in each ``TestReport``, one lane per test in flight, with the slowest tests and
fixtures and the run's totals. It must stay usable for 10,000 tests, so the timeline is a
``<canvas>`` drawn by a small inline script from an inline JSON blob; the tables are plain
HTML. Nothing is loaded from elsewhere, and a Content-Security-Policy lets only the page's own
script and style run: test ids and output are untrusted text, escaped wherever they appear.

Findings (``add_finding``) are the hook for later diagnostics: each is drawn as a marker on the
lane of its test and listed below the timeline. The plugin is registered only when a report is
asked for, so other runs pay nothing.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import html
import json
import platform
import sys
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

# Bound now: the virtual clock replaces ``time.perf_counter`` and ``time.time`` inside tests.
from time import perf_counter, process_time, time
from typing import Any

import pytest

from . import __version__, reporting, savings

PHASES = ("setup", "call", "teardown")
COLOURS = {
    "passed": "#3a9a5b",
    "failed": "#d64545",
    "error": "#e07b00",
    "skipped": "#9aa0a6",
    "xfailed": "#8e7cc3",
    "xpassed": "#c9a400",
    "rerun": "#4a7fd6",
}
#: The outcome a test shows when its phases differ: the first of these among them.
_WORST_FIRST = ("failed", "error", "rerun", "xpassed", "xfailed", "skipped", "passed")
#: Output kept per test, and in all (the page must stay small enough to open).
OUTPUT_PER_TEST = 4_000
OUTPUT_BUDGET = 2_000_000
#: Rows of the slowest-tests and slowest-fixtures tables, and of the findings table.
SLOWEST = 20
FINDINGS_LISTED = 500


def register(config: pytest.Config, path: Path) -> None:
    """Register the plugin that writes the report to ``path`` (``--asyncio-report``)."""
    if not hasattr(config, "workerinput"):
        # On pytest-xdist's workers it stays off: the controller gets every report.
        config.pluginmanager.register(TimelinePlugin(config, path), reporting.TIMELINE_PLUGIN)


def add_finding(
    config: pytest.Config, nodeid: str, kind: str, message: str, at: float | None = None
) -> None:
    """Show a finding (a blocked loop, a leak...) about test ``nodeid`` at ``at`` (seconds since
    the epoch; default: now) in the report; does nothing when no report is written."""
    plugin = config.pluginmanager.get_plugin(reporting.TIMELINE_PLUGIN)
    if isinstance(plugin, TimelinePlugin):
        finding = Finding(time() if at is None else at, nodeid, kind, message)
        plugin.timeline.findings.append(finding)


@dataclass(frozen=True)
class Phase:
    when: str
    #: Seconds since the epoch, as pytest's ``TestReport.start`` and ``stop``.
    start: float
    stop: float
    #: pytest's precise measure (a performance counter), for sums.
    duration: float
    outcome: str


@dataclass
class TestRun:
    """One run of one test (a test run again by pytest-rerunfailures has several)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    phases: list[Phase] = field(default_factory=list)
    output: str = ""

    @property
    def start(self) -> float:
        return min(phase.start for phase in self.phases)

    @property
    def stop(self) -> float:
        return max(phase.stop for phase in self.phases)

    @property
    def duration(self) -> float:
        return sum(phase.duration for phase in self.phases)

    @property
    def outcome(self) -> str:
        seen = {phase.outcome for phase in self.phases}
        return next((outcome for outcome in _WORST_FIRST if outcome in seen), "passed")


@dataclass(frozen=True)
class Finding:
    #: Seconds since the epoch.
    time: float
    nodeid: str
    kind: str
    message: str


@dataclass
class FixtureTime:
    count: int = 0
    total: float = 0.0
    longest: float = 0.0


@dataclass
class Timeline:
    """What the report shows; filled from pytest's reports, or directly (``add_phase``)."""

    tests: list[TestRun] = field(default_factory=list)
    #: Setup wall times by (fixture name, scope).
    fixtures: dict[tuple[str, str], FixtureTime] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    #: The session's start and stop, seconds since the epoch.
    session: tuple[float, float] | None = None
    #: The process's CPU seconds (all its threads) over the session; ``None``: not measured.
    cpu: float | None = None
    #: Why ``cpu`` is not measured, when it is not.
    cpu_note: str = ""
    #: Tests whose output was cut short or left out.
    output_cut: int = 0
    #: The run's time breakdown, (label, text) lines shared with the terminal (``savings``).
    times: list[tuple[str, str]] = field(default_factory=list)
    _latest: dict[str, TestRun] = field(default_factory=dict, repr=False)
    _output_left: int = field(default=OUTPUT_BUDGET, repr=False)

    def add_phase(self, nodeid: str, phase: Phase, output: str = "") -> None:
        """Add a phase of test ``nodeid``; a setup after a setup starts another run of it."""
        run = self._latest.get(nodeid)
        if run is None or (phase.when == "setup" and any(p.when == "setup" for p in run.phases)):
            run = self._latest[nodeid] = TestRun(nodeid)
            self.tests.append(run)
        run.phases.append(phase)
        if output:
            self._add_output(run, output)

    def add_report(self, report: pytest.TestReport) -> None:
        # Reports made up by other plugins (xdist's for a crashed worker) may lack times.
        stop = report.stop if report.stop > 0 else time()
        start = report.start if report.start > 0 else stop - report.duration
        phase = Phase(report.when, start, stop, report.duration, _outcome(report))
        self.add_phase(report.nodeid, phase, _output(report))

    def add_fixture(self, name: str, scope: str, seconds: float) -> None:
        times = self.fixtures.setdefault((name, scope), FixtureTime())
        times.count += 1
        times.total += seconds
        times.longest = max(times.longest, seconds)

    def _add_output(self, run: TestRun, output: str) -> None:
        room = min(OUTPUT_PER_TEST - len(run.output), self._output_left)
        if room <= 0:
            self.output_cut += 1
            return
        if len(output) > room:
            self.output_cut += 1
            output = output[:room] + "\n[... cut: the report keeps the start of each output]"
        run.output += output
        self._output_left -= len(output)


def _outcome(report: pytest.TestReport) -> str:
    """The phase's outcome, in the words of pytest's summary."""
    if str(report.outcome) == "rerun":  # pytest-rerunfailures
        return "rerun"
    expected_to_fail = hasattr(report, "wasxfail")
    if report.failed:
        return "failed" if report.when == "call" else "error"
    if report.skipped:
        return "xfailed" if expected_to_fail else "skipped"
    return "xpassed" if expected_to_fail and report.when == "call" else "passed"


def _output(report: pytest.TestReport) -> str:
    """What the phase printed and, if it did not pass, why (pytest's own text)."""
    parts = []
    if not report.passed and report.longrepr is not None:
        parts.append(f"--- {report.when}: {_outcome(report)} ---\n{report.longreprtext}\n")
    for title, content in report.sections:
        # Each report repeats the sections of the phases before it.
        if content and title.endswith(f" {report.when}"):
            parts.append(f"--- {title} ---\n{content}\n")
    return "".join(parts)


def assign_lanes(spans: Sequence[tuple[float, float]]) -> list[int]:
    """A lane for each (start, stop) span, so that spans sharing a lane never overlap, using as
    few lanes as the most spans at once: each span takes the lowest lane free at its start."""
    lanes = [0] * len(spans)
    busy: list[tuple[float, int]] = []  # (stop, lane)
    free: list[int] = []
    for index in sorted(range(len(spans)), key=spans.__getitem__):
        start, stop = spans[index]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        lane = heapq.heappop(free) if free else len(busy)
        lanes[index] = lane
        heapq.heappush(busy, (stop, lane))
    return lanes


@dataclass(frozen=True)
class Totals:
    tests: int
    outcomes: dict[str, int]
    #: The most tests at once.
    lanes: int
    session: float | None


def totals(timeline: Timeline, lanes: Sequence[int]) -> Totals:
    tests = timeline.tests
    return Totals(
        tests=len(tests),
        outcomes=dict(Counter(test.outcome for test in tests)),
        lanes=max(lanes, default=-1) + 1,
        session=timeline.session[1] - timeline.session[0] if timeline.session else None,
    )


def summary_line(path: Path, total: Totals) -> str:
    """The terminal's line: where the page is (aiotempo's section says where the time went)."""
    if not total.tests:
        return f"aiotempo report: {path}: no tests ran"
    at_once = f"up to {total.lanes} at once" if total.lanes > 1 else "one at a time"
    return f"aiotempo report: {path}: {total.tests} tests, {at_once}"


class TimelinePlugin:
    """Collects the run's reports and fixture timings, and writes the page at the end."""

    def __init__(self, config: pytest.Config, path: Path) -> None:
        self.config = config
        self.path = path
        self.timeline = Timeline()
        self._started = (time(), process_time())
        self._written: str | None = None

    def pytest_sessionstart(self) -> None:
        self._started = (time(), process_time())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.timeline.add_report(report)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any]
    ) -> Generator[None, object, object]:
        start = perf_counter()
        try:
            return (yield)
        finally:
            self.timeline.add_fixture(fixturedef.argname, fixturedef.scope, perf_counter() - start)

    @pytest.hookimpl(trylast=True)  # after other plugins' last findings
    def pytest_sessionfinish(self) -> None:
        self.timeline.session = (self._started[0], time())
        times = savings.breakdown(self.config)
        self.timeline.times = times.lines if times is not None else []
        if self.config.pluginmanager.get_plugin("dsession") is None:
            self.timeline.cpu = process_time() - self._started[1]
        else:
            self.timeline.cpu_note = "not measured: pytest-xdist's workers ran the tests"
        try:
            write(self.timeline, self.path)
            self._written = None
        except OSError as error:
            self._written = f"aiotempo report: could not write {self.path}: {error}"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self._written is not None:
            terminalreporter.write_line(self._written, red=True)
            return
        lanes = assign_lanes([(test.start, test.stop) for test in self.timeline.tests])
        terminalreporter.write_line(summary_line(self.path, totals(self.timeline, lanes)))


# -- the page ---------------------------------------------------------------------------------


def write(timeline: Timeline, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(timeline), encoding="utf-8")


def render(timeline: Timeline) -> str:
    """The whole page. Untrusted text reaches it only through ``_e`` or ``_json``."""
    tests = timeline.tests
    lanes = assign_lanes([(test.start, test.stop) for test in tests])
    total = totals(timeline, lanes)
    style = _STYLE + "".join(f".o-{name}{{background:{c}}}" for name, c in COLOURS.items())
    csp = f"default-src 'none'; style-src {_hash(style)}; script-src {_hash(_SCRIPT)}"
    body = [
        "<h1>Where the suite's time went</h1>",
        f'<p class="note">aiotempo {_e(__version__)}, pytest {_e(pytest.__version__)}, Python '
        f"{_e(platform.python_version())} on {_e(sys.platform)}; written "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC.</p>",
        _totals_table(timeline, total),
        "<h2>Timeline</h2>",
        '<p class="note">A bar per phase (setup and teardown paler than the call), one lane per '
        "test in flight at once. Wheel: zoom; drag: pan; double-click: everything; click a bar "
        "or a row below: the test's phases, findings and output.</p>",
        '<div class="legend">'
        + "".join(f'<span class="sw o-{name}"></span>{name}' for name in COLOURS)
        + '<span class="sw finding"></span>finding</div>',
        '<p><input id="filter" type="search" placeholder="highlight tests whose id contains..." '
        'size="40"> <button id="reset" type="button">show everything</button></p>',
        '<div id="wrap"><canvas id="timeline"></canvas></div>',
        "<noscript><p>The timeline needs JavaScript; the tables below do not.</p></noscript>",
        '<div id="details"></div>',
        _slowest_tests(tests),
        _slowest_fixtures(timeline),
        _findings(timeline, tests),
        '<div id="tip"></div>',
        f'<script type="application/json" id="aiotempo-data">{_json(_data(timeline, lanes))}'
        "</script>",
        f"<script>{_SCRIPT}</script>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>aiotempo report: {total.tests} tests</title><style>{style}</style></head>"
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _totals_table(timeline: Timeline, total: Totals) -> str:
    outcomes = ", ".join(
        f"{count} {name}" for name in COLOURS if (count := total.outcomes.get(name))
    )
    session = _seconds(total.session) if total.session is not None else "not measured"
    if timeline.cpu is not None and total.session:
        cpu = (
            f"{_seconds(timeline.cpu)}: {timeline.cpu / total.session:.0%} of the session's wall "
            "time (every thread of the process, so not split by test)"
        )
    else:
        cpu = timeline.cpu_note or "not measured"
    rows = [
        ("Test runs", f"{total.tests} ({outcomes})" if outcomes else "0"),
        ("Session wall time", f"{session} (collection included)"),
        ("Most tests at once", str(total.lanes)),
        # The lines of aiotempo's terminal summary (``savings``): the same numbers.
        *(timeline.times or [("Time", "not measured")]),
        ("Process CPU time", cpu),
    ]
    cells = "".join(f"<tr><th>{_e(name)}</th><td>{_e(value)}</td></tr>" for name, value in rows)
    return f'<table class="totals">{cells}</table>'


def _slowest_tests(tests: list[TestRun]) -> str:
    ranked = sorted(range(len(tests)), key=lambda i: tests[i].duration, reverse=True)[:SLOWEST]
    rows = []
    for index in ranked:
        test = tests[index]
        by_phase = {phase.when: phase.duration for phase in test.phases}
        cells = "".join(
            f'<td class="n">{_seconds(by_phase[when]) if when in by_phase else ""}</td>'
            for when in PHASES
        )
        rows.append(
            f'<tr data-test="{index}"><td class="n">{_seconds(test.duration)}</td>{cells}'
            f'<td><span class="sw o-{test.outcome}"></span>{test.outcome}</td>'
            f'<td class="id">{_e(test.nodeid)}</td></tr>'
        )
    if not rows:
        return "<h2>Slowest tests</h2><p>No tests ran.</p>"
    head = "<tr><th>total</th><th>setup</th><th>call</th><th>teardown</th><th>outcome</th>"
    head += "<th>test</th></tr>"
    return f'<h2>Slowest tests</h2><table class="rows">{head}{"".join(rows)}</table>'


def _slowest_fixtures(timeline: Timeline) -> str:
    ranked = sorted(timeline.fixtures.items(), key=lambda item: item[1].total, reverse=True)
    rows = "".join(
        f'<tr><td class="n">{_seconds(times.total)}</td><td class="n">{times.count}</td>'
        f'<td class="n">{_seconds(times.longest)}</td><td>{_e(scope)}</td>'
        f'<td class="id">{_e(name)}</td></tr>'
        for (name, scope), times in ranked[:SLOWEST]
    )
    note = (
        '<p class="note">Wall time of each setup (a fixture\'s own code, after the fixtures it '
        "uses); with concurrency it includes time other tests ran meanwhile. Teardowns are not "
        "timed.</p>"
    )
    if not rows:
        return "<h2>Slowest fixtures</h2><p>No fixture setups were timed here.</p>"
    head = "<tr><th>total</th><th>setups</th><th>longest</th><th>scope</th><th>fixture</th></tr>"
    return f'<h2>Slowest fixtures</h2>{note}<table class="rows">{head}{rows}</table>'


def _findings(timeline: Timeline, tests: list[TestRun]) -> str:
    if not timeline.findings:
        return "<h2>Findings</h2><p>None recorded.</p>"
    origin = min((test.start for test in tests), default=timeline.findings[0].time)
    index = {test.nodeid: i for i, test in enumerate(tests)}
    rows = "".join(
        f'<tr data-test="{index.get(finding.nodeid, -1)}">'
        f'<td class="n">{_seconds(finding.time - origin)}</td><td>{_e(finding.kind)}</td>'
        f'<td class="id">{_e(finding.nodeid)}</td><td>{_e(finding.message)}</td></tr>'
        for finding in timeline.findings[:FINDINGS_LISTED]
    )
    more = len(timeline.findings) - FINDINGS_LISTED
    rest = f"<p>And {more} more, on the timeline.</p>" if more > 0 else ""
    head = "<tr><th>at</th><th>kind</th><th>test</th><th>message</th></tr>"
    return f'<h2>Findings</h2><table class="rows">{head}{rows}</table>{rest}'


def _data(timeline: Timeline, lanes: list[int]) -> dict[str, Any]:
    """The timeline's data, compact: times in seconds from the first setup, phases flattened."""
    tests = timeline.tests
    origin = min((test.start for test in tests), default=0.0)
    index = {test.nodeid: i for i, test in enumerate(tests)}  # the latest run of each test
    outcomes = list(COLOURS)
    phases: list[float] = []
    for number, test in enumerate(tests):
        for phase in test.phases:
            phases += [
                number,
                PHASES.index(phase.when) if phase.when in PHASES else 1,
                round(phase.start - origin, 6),
                round(max(phase.stop, phase.start) - origin, 6),
                outcomes.index(phase.outcome),
                round(phase.duration, 6),
            ]
    return {
        "span": round(max((test.stop for test in tests), default=origin) - origin, 6),
        "colours": COLOURS,
        "outcomes": outcomes,
        "phaseNames": PHASES,
        "names": [test.nodeid for test in tests],
        "outcome": [outcomes.index(test.outcome) for test in tests],
        "lane": lanes,
        "lanes": max(lanes, default=-1) + 1,
        "phases": phases,
        "output": {str(i): test.output for i, test in enumerate(tests) if test.output},
        "findings": [
            [round(f.time - origin, 6), index.get(f.nodeid, -1), f.kind, f.message]
            for f in timeline.findings
        ],
    }


def _json(data: object) -> str:
    """JSON for a ``<script>`` block: no ``<``, ``>`` or ``&`` at all, so no ``</script>`` or
    ``<!--`` can end or confuse the block (their JSON escapes decode to the same text)."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def _seconds(seconds: float) -> str:
    if seconds >= 100:
        return f"{seconds:.0f} s"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 24px 48px;color:#222;background:#fff}
h1{font-size:20px;margin:18px 0 4px}h2{font-size:16px;margin:26px 0 8px}
table{border-collapse:collapse}th,td{padding:2px 12px 2px 0;text-align:left;vertical-align:top}
.totals th{font-weight:600;white-space:nowrap}.rows th{font-weight:600;border-bottom:1px solid #ccc}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;word-break:break-all}
tr[data-test]{cursor:pointer}tr[data-test]:hover{background:#eef3ff}
.note{color:#666;max-width:110ch}.legend{margin:6px 0}
.sw{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}
td .sw{margin-left:0}.finding{background:#111}
#wrap{border:1px solid #ccc;overflow-y:auto;max-height:70vh}
#timeline{display:block;cursor:crosshair;user-select:none}
#tip{position:fixed;display:none;pointer-events:none;background:#222;color:#fff;font-size:12px;
padding:4px 6px;border-radius:3px;max-width:70ch;white-space:pre-wrap;word-break:break-all}
#details{margin-top:10px}#details pre{background:#f5f5f5;padding:8px;max-height:40vh;
overflow:auto;white-space:pre-wrap;word-break:break-all}
"""

# ES5, no frameworks. Untrusted text goes through textContent or canvas fillText only.
_SCRIPT = r"""
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("aiotempo-data").textContent);
  var wrap = document.getElementById("wrap"), canvas = document.getElementById("timeline");
  var ctx = canvas.getContext("2d"), tip = document.getElementById("tip");
  var P = D.phases, W = 6, NP = P.length / W, NT = D.names.length, NL = Math.max(D.lanes, 1);
  var AXIS = 22, dpr = window.devicePixelRatio || 1, span = D.span > 0 ? D.span : 1;
  var view = [0, span], laneH = 16, width = 0, selected = -1, needle = "";
  var stats = {bars: 0, rects: 0, markers: 0, lanes: D.lanes, phases: NP, tests: NT};
  var byLane = [], phasesOf = [], findingsOf = {}, i;
  for (i = 0; i < NL; i++) byLane.push([]);
  for (i = 0; i < NT; i++) phasesOf.push([]);
  for (i = 0; i < NP; i++) { byLane[D.lane[P[i * W]]].push(i); phasesOf[P[i * W]].push(i); }
  byLane.forEach(function (a) { a.sort(function (x, y) { return P[x * W + 2] - P[y * W + 2]; }); });
  D.findings.forEach(function (f, k) { (findingsOf[f[1]] = findingsOf[f[1]] || []).push(k); });

  function xOf(t) { return (t - view[0]) / (view[1] - view[0]) * width; }
  function tOf(x) { return view[0] + x / width * (view[1] - view[0]); }
  function fmt(s) {
    if (s <= 0) return "0";
    if (s >= 1) return s.toFixed(s >= 100 ? 0 : 2) + " s";
    if (s >= 0.001) return (s * 1000).toFixed(s >= 0.01 ? 0 : 1) + " ms";
    return (s * 1e6).toFixed(0) + " \u00b5s";
  }
  function tick(t, step) {  // as many decimals as the step between ticks needs
    var digits = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
    if (view[1] >= 1) return t.toFixed(Math.min(digits, 6)) + " s";
    return (t * 1000).toFixed(Math.min(Math.max(digits - 3, 0), 3)) + " ms";
  }
  function firstEnding(lane, t) {  // the first phase of the lane that ends at t or later
    var a = byLane[lane], lo = 0, hi = a.length, m;
    while (lo < hi) { m = (lo + hi) >> 1; if (P[a[m] * W + 3] < t) lo = m + 1; else hi = m; }
    return lo;
  }
  function box(k) {  // where phase k is drawn: [x, y, width, height] in CSS pixels
    var p = k * W, x0 = xOf(P[p + 2]), x1 = Math.max(xOf(P[p + 3]), x0 + 1);
    return [x0, AXIS + D.lane[P[p]] * laneH + 1, x1 - x0, Math.max(1, laneH - 2)];
  }
  function axis() {
    var d = view[1] - view[0], target = d / Math.max(1, width / 110);
    var unit = Math.pow(10, Math.floor(Math.log10(target))), step = unit, k, x;
    [1, 2, 5, 10].some(function (m) { step = m * unit; return step >= target; });
    ctx.font = "11px sans-serif"; ctx.textBaseline = "middle";
    for (k = Math.ceil(view[0] / step); k * step <= view[1]; k++) {
      x = Math.round(xOf(k * step)) + 0.5;
      ctx.fillStyle = "#eee"; ctx.fillRect(x, AXIS, 1, NL * laneH);
      ctx.fillStyle = "#555"; ctx.fillRect(x, AXIS - 6, 1, 6);
      ctx.fillText(tick(k * step, step), x + 3, AXIS / 2 - 1);
    }
  }
  function draw() {
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, AXIS + NL * laneH + 4);
    axis();
    stats.bars = stats.rects = stats.markers = 0;
    var l, k, a, p, b, key, runKey = "", run = null;
    function flush() {
      if (run) { ctx.fillRect(run[0], run[1], run[2], run[3]); stats.rects++; run = null; }
    }
    for (l = 0; l < NL; l++) {
      a = byLane[l];
      for (k = firstEnding(l, view[0]); k < a.length && P[a[k] * W + 2] <= view[1]; k++) {
        p = a[k] * W; b = box(a[k]); stats.bars++;
        var faint = needle && D.names[P[p]].toLowerCase().indexOf(needle) < 0;
        var alpha = (P[p + 1] === 1 ? 1 : 0.55) * (faint ? 0.15 : 1);
        key = P[p + 4] + ":" + alpha;
        if (run && b[2] < 1.5 && key === runKey && b[0] <= run[0] + run[2] + 1) {
          run[2] = Math.max(run[2], b[0] + b[2] - run[0]);  // sub-pixel neighbours: one rect
          continue;
        }
        flush();
        ctx.globalAlpha = alpha; ctx.fillStyle = D.colours[D.outcomes[P[p + 4]]];
        runKey = key; run = [b[0], b[1], b[2] > 3 ? b[2] - 1 : b[2], b[3]];
        var shown = Math.min(b[0] + b[2], width) - Math.max(b[0], 0);
        if (shown > 70 && laneH >= 13 && P[p + 1] === 1) {
          flush(); label(D.names[P[p]], b);
        }
      }
      flush();
    }
    ctx.globalAlpha = 1;
    markers();
    if (selected >= 0) outline(selected);
    canvas.setAttribute("data-bars", String(stats.bars));
  }
  function label(name, b) {
    var x = Math.max(b[0], 0);  // a bar that starts before the view: its label starts in it
    ctx.save(); ctx.beginPath(); ctx.rect(x, b[1], b[0] + b[2] - x - 4, b[3]); ctx.clip();
    ctx.globalAlpha = 1; ctx.fillStyle = "#fff"; ctx.font = "11px sans-serif";
    ctx.fillText(name.slice(name.lastIndexOf("::") + 2), x + 3, b[1] + b[3] / 2);
    ctx.restore();
  }
  function markers() {
    ctx.fillStyle = "#111";
    D.findings.forEach(function (f) {
      if (f[0] < view[0] || f[0] > view[1]) return;
      var x = xOf(f[0]), y = f[1] >= 0 ? AXIS + D.lane[f[1]] * laneH : AXIS - 7;
      ctx.beginPath(); ctx.moveTo(x - 4, y); ctx.lineTo(x + 4, y); ctx.lineTo(x, y + 7);
      ctx.fill(); stats.markers++;
    });
  }
  function outline(test) {
    var ks = phasesOf[test]; if (!ks.length) return;
    var b0 = box(ks[0]), b1 = box(ks[ks.length - 1]);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 2;
    ctx.strokeRect(b0[0] - 1, b0[1] - 1, b1[0] + b1[2] - b0[0] + 2, b0[3] + 2);
  }
  function layout() {
    width = wrap.clientWidth || 800;
    laneH = Math.max(3, Math.min(18, Math.floor(600 / NL)));
    var h = AXIS + NL * laneH + 4;
    canvas.width = Math.round(width * dpr); canvas.height = Math.round(h * dpr);
    canvas.style.width = width + "px"; canvas.style.height = h + "px";
    draw();
  }
  function hit(ev) {  // the phase under the pointer, or -1
    var r = canvas.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    var l = Math.floor((y - AXIS) / laneH), t = tOf(x), slack = (view[1] - view[0]) / width * 2;
    if (l < 0 || l >= NL) return -1;
    var a = byLane[l], k = firstEnding(l, t - slack);
    return k < a.length && P[a[k] * W + 2] <= t + slack ? a[k] : -1;
  }
  function add(parent, tag, text, cls) {
    var el = document.createElement(tag);
    if (text !== undefined) el.textContent = text;
    if (cls) el.className = cls;
    parent.appendChild(el); return el;
  }
  function select(test) {
    selected = test; draw();
    var panel = document.getElementById("details"); panel.textContent = "";
    if (test < 0 || test >= NT) return;
    add(panel, "h2", "Test");
    add(panel, "p", D.names[test], "id");
    add(panel, "p", D.outcomes[D.outcome[test]] + ", lane " + (D.lane[test] + 1));
    var list = add(panel, "ul");
    phasesOf[test].forEach(function (k) {
      var p = k * W;
      add(list, "li", D.phaseNames[P[p + 1]] + ": " + D.outcomes[P[p + 4]] + ", " +
        fmt(P[p + 5]) + " (from " + fmt(P[p + 2]) + " to " + fmt(P[p + 3]) + ")");
    });
    (findingsOf[test] || []).forEach(function (k) {
      var f = D.findings[k];
      add(list, "li", "finding at " + fmt(f[0]) + ": " + f[2] + ": " + f[3]);
    });
    if (D.output[test]) add(panel, "pre", D.output[test]);
  }
  function show(test) {  // select a test and bring it into view
    var ks = phasesOf[test] || [];
    if (ks.length) {
      var t0 = P[ks[0] * W + 2], t1 = P[ks[ks.length - 1] * W + 3];
      if (t1 < view[0] || t0 > view[1]) {
        var d = view[1] - view[0], mid = (t0 + t1) / 2;
        view = [Math.max(0, mid - d / 2), Math.min(span, mid + d / 2)];
      }
      wrap.scrollTop = Math.max(0, D.lane[test] * laneH - 40);
    }
    select(test);
    canvas.scrollIntoView({block: "nearest"});
  }
  function zoom(factor, x) {
    var t = tOf(x), lo = t - (t - view[0]) * factor, hi = t + (view[1] - t) * factor;
    if (hi - lo < 1e-6) return;
    view = [Math.max(0, lo), Math.min(span, hi)]; draw();
  }
  var drag = null;
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    zoom(Math.exp(ev.deltaY * 0.002), ev.clientX - canvas.getBoundingClientRect().left);
  }, {passive: false});
  canvas.addEventListener("mousedown", function (ev) {
    drag = {x: ev.clientX, view: view.slice(), moved: false};
  });
  window.addEventListener("mouseup", function (ev) {
    if (drag && !drag.moved && ev.target === canvas) {
      var k = hit(ev); select(k >= 0 ? P[k * W] : -1);
    }
    drag = null;
  });
  canvas.addEventListener("mousemove", function (ev) {
    if (drag && Math.abs(ev.clientX - drag.x) > 2) {
      var d = drag.view[1] - drag.view[0], shift = (drag.x - ev.clientX) / width * d;
      shift = Math.min(Math.max(shift, -drag.view[0]), span - drag.view[1]);
      view = [drag.view[0] + shift, drag.view[1] + shift]; drag.moved = true; draw();
    }
    var k = hit(ev);
    if (k < 0) { tip.style.display = "none"; return; }
    var p = k * W;
    tip.textContent = D.names[P[p]] + "\n" + D.phaseNames[P[p + 1]] + ": " +
      D.outcomes[P[p + 4]] + ", " + fmt(P[p + 5]);
    tip.style.left = (ev.clientX + 14) + "px"; tip.style.top = (ev.clientY + 14) + "px";
    tip.style.display = "block";
  });
  canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
  canvas.addEventListener("dblclick", function () { view = [0, span]; draw(); });
  document.getElementById("reset").addEventListener("click", function () {
    view = [0, span]; draw();
  });
  document.getElementById("filter").addEventListener("input", function (ev) {
    needle = ev.target.value.toLowerCase(); draw();
  });
  Array.prototype.forEach.call(document.querySelectorAll("tr[data-test]"), function (row) {
    row.addEventListener("click", function () {
      var test = Number(row.getAttribute("data-test")); if (test >= 0) show(test);
    });
  });
  window.addEventListener("resize", layout);
  window.aiotempo = {stats: stats, box: box, select: show, view: function () {
    return view.slice();
  }};
  layout();
})();
"""
