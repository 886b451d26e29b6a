"""--asyncio-report: one self-contained HTML page with the run's timeline, slowest tests and
fixtures, and totals; untrusted text in it stays text."""

import html
import json
import re

DATA_OPEN = '<script type="application/json" id="aiotempo-data">'

SMALL_SUITE = """
    import asyncio, pytest

    @pytest.mark.asyncio
    async def test_async():
        await asyncio.sleep(0.01)

    def test_fails():
        assert False

    def test_skipped():
        pytest.skip("not today")

    @pytest.mark.xfail
    def test_expected_to_fail():
        assert False
"""


def read_report(path):
    """The page, and the timeline's data as its script reads it."""
    page = path.read_text(encoding="utf-8")
    blob = page.split(DATA_OPEN, 1)[1].split("</script>", 1)[0]
    return page, json.loads(blob)


def phases(data):
    """The phase records: (test id, phase, start, stop, outcome, duration)."""
    flat = data["phases"]
    return [
        (
            data["names"][flat[i]],
            data["phaseNames"][flat[i + 1]],
            flat[i + 2],
            flat[i + 3],
            data["outcomes"][flat[i + 4]],
            flat[i + 5],
        )
        for i in range(0, len(flat), 6)
    ]


def test_report_is_one_self_contained_page(suite):
    pytester = suite(SMALL_SUITE)
    result = pytester.runpytest("--asyncio-report=out/report.html")
    result.assert_outcomes(passed=1, failed=1, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(
        [f"aiotempo report: {pytester.path / 'out' / 'report.html'}: 4 tests, one at a time"]
    )
    page, data = read_report(pytester.path / "out" / "report.html")
    # Nothing from elsewhere: no links, sources, imports or URLs; only the page's own code runs.
    for outside in ("src=", "href=", "url(", "@import", "http:", "https:", "<link", "<iframe"):
        assert outside not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert page.count("<script") == 2
    outcomes = {
        name.split("::")[1]: data["outcomes"][outcome]
        for name, outcome in zip(data["names"], data["outcome"], strict=True)
    }
    assert outcomes == {
        "test_async": "passed",
        "test_fails": "failed",
        "test_skipped": "skipped",
        "test_expected_to_fail": "xfailed",
    }
    records = phases(data)
    assert len(records) == 12  # setup, call and teardown of each test: one bar each
    assert [when for _, when, *_ in records] == ["setup", "call", "teardown"] * 4
    assert all(0 <= start <= stop <= data["span"] for _, _, start, stop, *_ in records)
    assert data["lanes"] == 1 and set(data["lane"]) == {0}  # one at a time: one lane
    assert "<th>time</th><td>4 tests, " in page and "Slowest tests" in page


def test_overlapping_tests_land_in_different_lanes(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_overlapping(n):
            await asyncio.sleep(0.3)

        def test_alone():
            pass
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=2", "--asyncio-report=report.html")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["aiotempo report: *report.html: 3 tests, up to 2 at once"])
    page, data = read_report(pytester.path / "report.html")
    # The totals table shows the lines of aiotempo's terminal summary, the same numbers.
    for label in ("time", "virtual clock", "concurrency"):
        line = next(line for line in result.outlines if line.startswith(f"{label}: "))
        text = line.removeprefix(f"{label}: ")
        assert f"<tr><th>{label}</th><td>{html.escape(text)}</td></tr>" in page
    assert "concurrency</th><td>on (up to 2 at once); saved at least" in page
    assert data["lanes"] == 2
    lane = dict(zip(data["names"], data["lane"], strict=True))
    assert lane["test_suite.py::test_overlapping[0]"] != lane["test_suite.py::test_overlapping[1]"]
    calls = {name: (start, stop) for name, when, start, stop, *_ in phases(data) if when == "call"}
    first, second = (
        calls["test_suite.py::test_overlapping[0]"],
        calls["test_suite.py::test_overlapping[1]"],
    )
    assert first[0] < second[1] and second[0] < first[1]  # they really overlapped
    assert len(phases(data)) == 9


HOSTILE_OUTPUT = "</script><script>window.__pwned=1</script><!-- \"double\" 'single' &amp;"


def test_hostile_ids_and_output_render_as_text(suite):
    pytester = suite(
        f"""
        import pytest

        @pytest.mark.parametrize(
            "x", [1, 2], ids=["<script>alert(1)</script>", '"onmouseover="alert(2)']
        )
        def test_x(x):
            print({HOSTILE_OUTPUT!r})
            assert x == 2
        """
    )
    result = pytester.runpytest("--asyncio-report=report.html")
    result.assert_outcomes(passed=1, failed=1)
    page, data = read_report(pytester.path / "report.html")
    hostile_id = "test_suite.py::test_x[<script>alert(1)</script>]"
    assert hostile_id in data["names"]  # the data keeps the exact text...
    output = data["output"][str(data["names"].index(hostile_id))]
    assert HOSTILE_OUTPUT in output and "assert 1 == 2" in output
    # ...and the page holds it only escaped: no markup, no end of the script block, no comment.
    assert "<script>alert" not in page and "<script>window" not in page
    assert page.count("<script") == 2 and page.count("</script>") == 2
    assert "<!--" not in page
    assert "test_x[&lt;script&gt;alert(1)&lt;/script&gt;]" in page
    assert "test_x[&quot;onmouseover=&quot;alert(2)]" in page
    assert re.search(r'"onmouseover="alert', page) is None


def test_fixture_setups_are_timed(suite):
    pytester = suite(
        """
        import time, pytest

        @pytest.fixture
        def slow_resource():
            time.sleep(0.05)

        @pytest.mark.parametrize("n", range(3))
        def test_uses_it(n, slow_resource):
            pass
        """
    )
    pytester.runpytest("--asyncio-report=report.html").assert_outcomes(passed=3)
    page, _ = read_report(pytester.path / "report.html")
    row = re.search(
        r'<tr><td class="n">([\d.]+) ms</td><td class="n">3</td><td class="n">[\d.]+ ms</td>'
        r'<td>function</td><td class="id">slow_resource</td></tr>',
        page,
    )
    assert row is not None and float(row[1]) >= 150


def test_findings_are_drawn_with_their_test(suite):
    pytester = suite(
        """
        from aiotempo import timeline

        def test_blocked(request):
            timeline.add_finding(
                request.config, request.node.nodeid, "blocked-loop", "<b>blocked</b> 0.2 s"
            )

        def test_fine():
            pass
        """
    )
    pytester.runpytest("--asyncio-report=report.html").assert_outcomes(passed=2)
    page, data = read_report(pytester.path / "report.html")
    [(at, test, kind, message)] = data["findings"]
    assert data["names"][test] == "test_suite.py::test_blocked"
    assert kind == "blocked-loop" and message == "<b>blocked</b> 0.2 s"
    start, stop = next(
        (s, e) for n, w, s, e, *_ in phases(data) if w == "call" and n.endswith("blocked")
    )
    assert start <= at <= stop
    assert "&lt;b&gt;blocked&lt;/b&gt; 0.2 s" in page and "<b>blocked" not in page


def test_ini_option_is_relative_to_the_rootdir_and_the_flag_to_the_cwd(suite, monkeypatch):
    pytester = suite("def test_one(): pass", ini="asyncio_report = reports/timeline.html")
    (pytester.path / "sub").mkdir()
    monkeypatch.chdir(pytester.path / "sub")
    pytester.runpytest(pytester.path).assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "timeline.html").is_file()
    pytester.runpytest(pytester.path, "--asyncio-report=mine.html").assert_outcomes(passed=1)
    assert (pytester.path / "sub" / "mine.html").is_file()


def test_without_the_option_nothing_is_registered(suite):
    pytester = suite(
        {
            "conftest.py": """
                def pytest_sessionfinish(session):
                    plugins = session.config.pluginmanager
                    print("timeline plugin:", plugins.has_plugin("aiotempo-timeline"))
            """,
            "test_suite.py": "def test_one(): pass",
        }
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*timeline plugin: False*"])
    result.stdout.no_fnmatch_line("aiotempo report:*")


def test_unwritable_path_is_reported_and_the_run_goes_on(suite):
    pytester = suite("def test_one(): pass")
    (pytester.path / "a_file").write_text("")
    result = pytester.runpytest("--asyncio-report=a_file/report.html")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["aiotempo report: could not write *a_file*report.html: *"])


def test_xdist_controller_writes_every_workers_tests(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(6))
        async def test_work(n):
            await asyncio.sleep(0.1)
        """
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--asyncio-concurrency=3", "--asyncio-report=report.html", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "aiotempo report: *report.html: 6 tests, up to * at once",
            "time: 6 tests, * s summed); waiting not measured (pytest-xdist's workers)",
        ]
    )
    page, data = read_report(pytester.path / "report.html")
    assert len(data["names"]) == 6 and len(phases(data)) == 18
    assert 2 <= data["lanes"] <= 6
    assert "not measured: pytest-xdist" in page
