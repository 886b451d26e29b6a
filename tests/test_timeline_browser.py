"""--asyncio-report in a real browser: Debian's chromium, driven by Playwright.

The page draws a bar per phase, runs none of the markup hidden in test ids and output, and opens
a 10,000-test report quickly. Without chromium or Playwright these tests skip, except on CI
(``CI`` set), where a missing browser is a failure: ``make test`` installs what they need.
"""

import contextlib
import os
import random
import time
from pathlib import Path

import pytest

from aiotempo import timeline

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Records what the page must never do: CSP violations (injected markup the policy stopped).
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.sample);
});
"""

#: The outcome and the painted colour at the centre of every call bar at least 4 pixels wide.
CALL_BAR_COLOURS = """() => {
  const ctx = document.getElementById("timeline").getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const data = JSON.parse(document.getElementById("aiotempo-data").textContent);
  const found = [];
  for (let k = 0; k < data.phases.length / 6; k++) {
    const [x, y, w, h] = window.aiotempo.box(k);
    if (data.phases[k * 6 + 1] !== 1 || w < 4) continue;
    const centre = [Math.round((x + w / 2) * dpr), Math.round((y + h / 2) * dpr)];
    const rgb = Array.from(ctx.getImageData(centre[0], centre[1], 1, 1).data.slice(0, 3));
    const hex = "#" + rgb.map((v) => v.toString(16).padStart(2, "0")).join("");
    found.push([data.outcomes[data.phases[k * 6 + 4]], hex]);
  }
  return found;
}"""


def unavailable(reason):
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason}; CI is set, so the browser tests must run (make test)", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture
def browser():
    """Opens a chromium once the test has written its report: Playwright's sync API keeps its
    loop running (in a greenlet) while the browser is open, so no pytest run fits in there."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is missing (pip install -e '.[test]')")

    @contextlib.contextmanager
    def launched():
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                yield browser
            finally:
                browser.close()

    return launched


@contextlib.contextmanager
def open_report(browser, path, problems):
    """The report open in a fresh chromium; what it must never do goes to ``problems``."""
    with browser() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.add_init_script(WATCH)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("dialog", lambda dialog: dismissed(dialog, problems))
        page.on("request", lambda request: outside(request.url, path, problems))
        page.goto(path.as_uri())
        page.wait_for_selector("#timeline[data-bars]", state="attached")  # drawn
        yield page


def dismissed(dialog, problems):
    """An alert() ran: record it, and dismiss it (an open dialog would freeze the page)."""
    problems.append(f"dialog: {dialog.message}")
    dialog.dismiss()


def outside(url, path, problems):
    if url != path.as_uri():
        problems.append(f"request: {url}")


def screenshot(page, path):
    """Keep a screenshot to look at (pytest keeps the temporary directories of recent runs)."""
    page.screenshot(path=str(path), full_page=True)
    print("screenshot:", path)


def test_timeline_draws_a_bar_per_phase_in_its_colour(browser, suite, tmp_path):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_overlapping(n):
            await asyncio.sleep(0.3)
            assert n != 1

        def test_alone():
            pass
        """
    )
    pytester.runpytest("--asyncio-concurrency=3", "--asyncio-report=report.html")
    problems = []
    with open_report(browser, pytester.path / "report.html", problems) as page:
        stats = page.evaluate("window.aiotempo.stats")
        assert (
            stats["bars"] == stats["phases"] == 12 and stats["tests"] == 4 and stats["lanes"] == 3
        )
        # Every wide enough call bar shows its outcome's colour on the canvas.
        colours = page.evaluate(CALL_BAR_COLOURS)
        assert sorted(map(tuple, colours)) == sorted(
            [("passed", timeline.COLOURS["passed"])] * 2 + [("failed", timeline.COLOURS["failed"])]
        )
        # Clicking a bar shows its test.
        x, y, w, h = page.evaluate("window.aiotempo.box(1)")
        box = page.locator("#timeline").bounding_box()
        page.mouse.click(box["x"] + x + w / 2, box["y"] + y + h / 2)
        assert "test_suite.py::test_overlapping" in page.locator("#details").inner_text()
        screenshot(page, tmp_path / "timeline-small.png")
        assert problems == [] and page.evaluate("window.__violations") == []


def test_hostile_test_ids_and_output_stay_text(browser, suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.parametrize("x", [1, 2, 3], ids=[
            "<script>alert(1)</script>",
            "<img src=x onerror=\\"window.__pwned=1\\">",
            "'\\"><svg onload=window.__pwned=2>",
        ])
        def test_x(x):
            print("</script><script>window.__pwned=3</script><!-- <img src=y onerror=alert(4)>")
            assert False
        """
    )
    pytester.runpytest("--asyncio-report=report.html").assert_outcomes(failed=3)
    problems = []
    with open_report(browser, pytester.path / "report.html", problems) as page:
        # Show every test's details (ids and output), hover each bar and click each table row.
        for test in range(3):
            page.evaluate(f"window.aiotempo.select({test})")
            x, y, w, h = page.evaluate(f"window.aiotempo.box({test * 3 + 1})")
            box = page.locator("#timeline").bounding_box()
            page.mouse.move(box["x"] + x + w / 2, box["y"] + y + h / 2)
        for row in page.locator("tr[data-test]").all():
            row.click()
        details = page.locator("#details").inner_text()
        assert "test_x[<script>alert(1)</script>]" in page.locator("table.rows").first.inner_text()
        assert "</script><script>window.__pwned=3</script><!--" in details
        assert page.evaluate("window.__pwned") is None
        assert page.evaluate("document.scripts.length") == 2
        assert page.evaluate("document.querySelectorAll('img, svg, iframe').length") == 0
        assert problems == [] and page.evaluate("window.__violations") == []


def test_ten_thousand_tests_open_and_render_quickly(browser, tmp_path):
    report = synthetic_timeline(10_000, concurrency=8)
    path = tmp_path / "big.html"
    timeline.write(report, path)
    problems = []
    with open_report(browser, path, problems) as page:
        opened = page.evaluate("performance.now()") / 1000  # since the navigation started
        stats = page.evaluate("window.aiotempo.stats")
        assert stats["tests"] == 10_000 and stats["bars"] == 30_000 and stats["lanes"] == 8
        assert stats["rects"] < stats["bars"]  # sub-pixel neighbours were drawn as one
        assert opened < 15, f"the page took {opened:.1f} s to open and draw"
        # Zooming in redraws only what is in view, quickly.
        box = page.locator("#timeline").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 60)
        started = time.perf_counter()
        for _ in range(10):
            page.mouse.wheel(0, -400)
        page.evaluate("window.aiotempo.stats.bars")
        assert time.perf_counter() - started < 10
        zoomed = page.evaluate("window.aiotempo.stats")
        assert 0 < zoomed["bars"] < 30_000
        page.evaluate("window.aiotempo.select(4321)")
        assert "test_case[4321]" in page.locator("#details").inner_text()
        screenshot(page, tmp_path / "timeline-10k.png")
        assert problems == [] and page.evaluate("window.__violations") == []


def synthetic_timeline(tests, concurrency):
    """A run of ``tests`` tests, ``concurrency`` at a time, through the report's own writer."""
    rng = random.Random(7)
    report = timeline.Timeline()
    origin = 1_700_000_000.0
    free_at = [origin] * concurrency
    for number in range(tests):
        slot = min(range(concurrency), key=free_at.__getitem__)
        now = free_at[slot] + rng.random() / 1000
        nodeid = f"tests/test_module{number // 100}.py::test_case[{number}]"
        for when, seconds in (
            ("setup", rng.random() / 100),
            ("call", rng.random() / 5),
            ("teardown", rng.random() / 200),
        ):
            outcome = "failed" if when == "call" and number % 97 == 0 else "passed"
            phase = timeline.Phase(when, now, now + seconds, seconds, outcome)
            report.add_phase(nodeid, phase, f"output of {number}\n" if number % 10 == 0 else "")
            now += seconds
        free_at[slot] = now
        if number % 500 == 0:
            report.findings.append(
                timeline.Finding(now - 0.01, nodeid, "blocked-loop", "loop blocked for 12 ms")
            )
    report.session = (origin, max(free_at))
    return report
