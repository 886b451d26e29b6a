"""--asyncio-concurrency: tests overlap on one loop, each keeping pytest's guarantees."""

import re

import pytest

#: A test module helper: counts tests in flight and remembers the most seen at once.
FLIGHT = """
import asyncio, pytest

class Flight:
    now = most = 0

    @classmethod
    async def hold(cls, seconds=0.05):
        cls.now += 1
        cls.most = max(cls.most, cls.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            cls.now -= 1
"""


def test_tests_overlap_up_to_the_limit(suite):
    pytester = suite(
        FLIGHT
        + """
@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(10))
async def test_hold(n):
    await Flight.hold()

def test_most_in_flight(request):
    print("most in flight:", Flight.most)
"""
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-s", "-p", "no:randomly")
    result.assert_outcomes(passed=11)  # -s turns concurrency off: see the notice
    result.stdout.fnmatch_lines(["*most in flight: 1", "*tests ran one at a time: -s*"])
    result = pytester.runpytest("--asyncio-concurrency=4", "-rP", "-p", "no:randomly")
    result.assert_outcomes(passed=11)
    result.stdout.fnmatch_lines(["most in flight: 4"])


def test_without_the_option_tests_run_one_at_a_time(suite):
    pytester = suite(
        FLIGHT
        + """
@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(4))
async def test_hold(n):
    await Flight.hold()

def test_most_in_flight():
    assert Flight.most == 1
"""
    )
    pytester.runpytest().assert_outcomes(passed=5)


def test_marker_opts_a_module_in(suite):
    pytester = suite(
        FLIGHT
        + """
pytestmark = pytest.mark.aiotempo(concurrent=True)

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(4))
async def test_hold(n):
    await Flight.hold()

def test_most_in_flight():
    assert Flight.most > 1
"""
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=5)


def test_marker_opts_a_test_out(suite):
    pytester = suite(
        FLIGHT
        + """
@pytest.mark.asyncio
@pytest.mark.aiotempo(concurrent=False)
async def test_alone():
    await Flight.hold()
    assert Flight.most == 1

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_hold(n):
    await Flight.hold()
"""
    )
    pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly").assert_outcomes(passed=4)


def test_function_fixtures_are_each_tests_own(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        torn_down = []

        @pytest_asyncio.fixture
        async def resource(request):
            value = {"owner": request.node.name}
            await asyncio.sleep(0.01)
            yield value
            await asyncio.sleep(0.01)
            torn_down.append(value["owner"])

        @pytest.fixture
        def sync_resource(request):
            return [request.node.name]

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(6))
        async def test_owns(n, resource, sync_resource, request):
            await asyncio.sleep(0.02)
            assert resource["owner"] == sync_resource[0] == request.node.name

        def test_every_teardown_ran():
            assert sorted(torn_down) == sorted(f"test_owns[{n}]" for n in range(6))
        """
    )
    pytester.runpytest("--asyncio-concurrency=6", "-p", "no:randomly").assert_outcomes(passed=7)


def test_fixtures_requested_by_name_at_run_time_are_each_tests_own(suite):
    pytester = suite(
        """
        import asyncio, pytest

        torn_down = []

        @pytest.fixture
        def resource(request):
            value = {"owner": request.node.name}
            yield value
            torn_down.append(value["owner"])

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(4))
        async def test_owns(n, request):
            resource = request.getfixturevalue("resource")
            await asyncio.sleep(0.02)
            assert resource["owner"] == request.node.name

        def test_every_teardown_ran():
            assert sorted(torn_down) == sorted(f"test_owns[{n}]" for n in range(4))
        """
    )
    pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly").assert_outcomes(passed=5)


def test_shared_fixture_is_set_up_once_when_tests_race(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        setups = []

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def pool():
            setups.append(1)
            await asyncio.sleep(0.05)  # the other tests reach it meanwhile
            yield "pool"

        @pytest.mark.asyncio(loop_scope="module")
        @pytest.mark.parametrize("n", range(5))
        async def test_uses(n, pool):
            assert pool == "pool" and setups == [1]
        """
    )
    pytester.runpytest("--asyncio-concurrency=5").assert_outcomes(passed=5)


def test_fixture_error_errors_exactly_the_tests_that_need_it(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def broken():
            await asyncio.sleep(0.01)
            raise RuntimeError("no database")

        @pytest.mark.asyncio(loop_scope="module")
        @pytest.mark.parametrize("n", range(3))
        async def test_needs(n, broken):
            pass

        @pytest.mark.asyncio(loop_scope="module")
        @pytest.mark.parametrize("n", range(3))
        async def test_independent(n):
            await asyncio.sleep(0.01)
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=4")
    result.assert_outcomes(passed=3, errors=3)


def test_output_and_logs_belong_to_their_test(suite):
    pytester = suite(
        """
        import asyncio, logging, sys, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(4))
        async def test_talks(n):
            async def helper():
                print(f"task of {n}")
            for step in range(3):
                print(f"out {n}.{step}")
                print(f"err {n}.{step}", file=sys.stderr)
                logging.getLogger("t").warning("log %s.%s", n, step)
                await asyncio.sleep(0.01)
            await asyncio.get_running_loop().create_task(helper())
            assert False
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly")
    result.assert_outcomes(failed=4)
    text = result.stdout.str()
    for n in range(4):
        section = text.split(f"___ test_talks[{n}] ___")[1].split("___ test_talks")[0]
        others = [m for m in range(4) if m != n]
        assert f"out {n}.2" in section and f"err {n}.2" in section and f"log {n}.2" in section
        assert f"task of {n}" in section
        assert not any(f"out {m}." in section or f"log {m}." in section for m in others)


def test_each_phase_has_its_own_log_records(suite):
    pytester = suite(
        """
        import asyncio, logging, pytest

        log = logging.getLogger("t")

        @pytest.fixture
        def noisy(request):
            log.warning("setup-of-%s", request.node.callspec.id)
            yield
            log.warning("teardown-of-%s", request.node.callspec.id)

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(4))
        async def test_logs(n, noisy, caplog):
            assert [r.getMessage() for r in caplog.get_records("setup")] == [f"setup-of-{n}"]
            log.warning("call-of-%s", n)
            await asyncio.sleep(0.01)
            assert [r.getMessage() for r in caplog.records] == [f"call-of-{n}"]
            caplog.set_level(logging.ERROR)
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-rA", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    text = result.stdout.str()
    for n in range(4):
        section = text.split(f" test_logs[{n}] _")[1].split(" test_logs[")[0]
        mine = {f"setup-of-{n}", f"call-of-{n}", f"teardown-of-{n}"}
        assert set(re.findall(r"\w+-of-\d", section)) == mine, section


def test_junitxml_has_each_tests_own_output(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_prints(n):
            for _ in range(3):
                print(f"marker-{n}")
                await asyncio.sleep(0.01)
        """
    )
    pytester.runpytest(
        "--asyncio-concurrency=3", "--junitxml=out.xml", "-o", "junit_logging=system-out"
    ).assert_outcomes(passed=3)
    import xml.etree.ElementTree as ET

    for case in ET.parse(pytester.path / "out.xml").getroot().iter("testcase"):
        n = case.get("name")[-2]
        out = case.find("system-out").text
        assert out.count(f"marker-{n}") == 3 and out.count("marker-") == 3


def test_process_wide_fixtures_run_exclusively_and_are_summarised(suite):
    pytester = suite(
        FLIGHT
        + """
@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_patches(n, monkeypatch):
    monkeypatch.setenv("SHARED", str(n))
    await Flight.hold()
    assert Flight.most == 1

@pytest.mark.asyncio
async def test_logs(caplog):
    await Flight.hold()
    assert Flight.most == 1
"""
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["*why not concurrent*", "*3  fixture monkeypatch", "*1  fixture caplog"]
    )


def test_exclusive_marker_and_resources(suite):
    pytester = suite(
        FLIGHT
        + """
import collections
using = collections.Counter()

@pytest.mark.asyncio
@pytest.mark.aiotempo(exclusive=True)
async def test_alone():
    before = Flight.most
    await Flight.hold()
    assert Flight.now == 0

@pytest.mark.asyncio
@pytest.mark.aiotempo(resources=["db"])
@pytest.mark.parametrize("n", range(3))
async def test_db(n):
    using["db"] += 1
    assert using["db"] == 1
    await Flight.hold()
    using["db"] -= 1

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_free(n):
    await Flight.hold()
"""
    )
    pytester.runpytest("--asyncio-concurrency=8", "-p", "no:randomly").assert_outcomes(passed=7)


def test_different_parameters_of_a_wider_fixture_never_overlap(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        active = set()

        @pytest_asyncio.fixture(scope="module", loop_scope="module", params=["a", "b"])
        async def backend(request):
            yield request.param

        @pytest.mark.asyncio(loop_scope="module")
        @pytest.mark.parametrize("n", range(3))
        async def test_backend(backend, n):
            active.add(backend)
            assert active == {backend}
            await asyncio.sleep(0.02)
            assert active == {backend}
            active.discard(backend) if n == 2 else None
        """
    )
    pytester.runpytest("--asyncio-concurrency=6", "-p", "no:randomly").assert_outcomes(passed=6)


def test_collectors_are_torn_down_after_their_last_test(suite):
    pytester = suite(
        {
            "test_a.py": """
                import asyncio, pytest, pytest_asyncio
                events = []

                @pytest_asyncio.fixture(scope="class")
                async def per_class(request):
                    events.append(f"up {request.cls.__name__}")
                    yield
                    events.append(f"down {request.cls.__name__}")

                @pytest.mark.asyncio
                class TestOne:
                    @pytest.mark.parametrize("n", range(3))
                    async def test_x(self, n, per_class):
                        await asyncio.sleep(0.01 * n)

                @pytest.mark.asyncio
                class TestTwo:
                    @pytest.mark.parametrize("n", range(3))
                    async def test_y(self, n, per_class):
                        await asyncio.sleep(0.01)
            """,
            "test_b.py": """
                from test_a import events

                def test_order():
                    assert events == ["up TestOne", "down TestOne", "up TestTwo", "down TestTwo"]
            """,
        }
    )
    pytester.syspathinsert()
    result = pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly")
    result.assert_outcomes(passed=7)


def test_sync_tests_between_batches_run_as_usual(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_async(n):
            await asyncio.sleep(0.01)

        def test_sync_can_drive_a_loop():
            assert asyncio.run(asyncio.sleep(0, result=1)) == 1

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_async_again(n):
            await asyncio.sleep(0.01)
        """
    )
    pytester.runpytest("--asyncio-concurrency=3").assert_outcomes(passed=7)


def test_warnings_are_attributed_to_their_test(suite):
    pytester = suite(
        """
        import asyncio, warnings, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_warns(n):
            await asyncio.sleep(0.01 * (3 - n))
            if n == 1:
                warnings.warn(UserWarning("only test 1 warns"))
        """,
        ini="filterwarnings = default",
    )
    result = pytester.runpytest("--asyncio-concurrency=3")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines(["*test_warns?1?*", "*UserWarning: only test 1 warns*"])


@pytest.mark.parametrize("value", ["0", "many"])
def test_invalid_concurrency_is_one_clear_line(suite, value):
    pytester = suite("def test_x():\n    pass\n")
    result = pytester.runpytest(f"--asyncio-concurrency={value}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: asyncio_concurrency = '{value}' is not valid*"])


def test_contradicting_marker_arguments_are_one_clear_line(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.aiotempo(exclusive=True, concurrent=True)
        async def test_both():
            pass
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=2")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_both: @pytest.mark.aiotempo(exclusive=True, concurrent=True) contradict*"]
    )


def test_exitfirst_cancels_tests_in_flight_and_runs_their_teardowns(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def resource(request):
            yield
            with open("teardowns.txt", "a") as log:
                print(request.node.name, file=log)

        @pytest.mark.asyncio
        async def test_fails_first(resource):
            await asyncio.sleep(0.05)
            assert False

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_slow(n, resource):
            await asyncio.sleep(10)

        @pytest.mark.asyncio
        async def test_never_started():
            pass
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-x", "-rs", "-p", "no:randomly")
    result.assert_outcomes(failed=1, skipped=3)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]3[]] test_suite.py:*: cancelled: stopping after 1 failures (-x/--maxfail)"]
    )
    torn_down = (pytester.path / "teardowns.txt").read_text().split()
    assert sorted(torn_down) == ["test_fails_first"] + [f"test_slow[{n}]" for n in range(3)]


def test_ctrl_c_cancels_tests_in_flight_and_prints_the_summary(suite):
    pytester = suite(
        """
        import asyncio, os, signal, pytest

        @pytest.mark.asyncio
        async def test_done_before():
            pass

        @pytest.mark.asyncio
        async def test_presses_ctrl_c():
            await asyncio.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(10)

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_slow(n):
            await asyncio.sleep(10)
        """
    )
    result = pytester.runpytest_subprocess("--asyncio-concurrency=4", "-rs", timeout=60)
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*", "*1 passed, 3 skipped*"])


def test_tests_using_mock_patch_run_exclusively(suite):
    pytester = suite(
        FLIGHT
        + """
from unittest import mock
import sys

TARGET = "real"

@pytest.mark.asyncio
@mock.patch(f"{__name__}.TARGET", "patched")
async def test_decorated():
    assert Flight.now == 0 and TARGET == "patched"  # alone
    await Flight.hold()

@pytest.mark.asyncio
async def test_context_manager():
    assert Flight.now == 0  # alone
    with mock.patch.object(sys.modules[__name__], "TARGET", "patched"):
        await Flight.hold()

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_others(n):
    await Flight.hold()
    assert TARGET == "real"
"""
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly")
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(["*2  unittest.mock.patch"])


def test_a_patch_hidden_in_a_helper_is_reported_with_the_fix(suite):
    pytester = suite(
        FLIGHT
        + """
from helpers import patched_target

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(2))
async def test_hidden(n):
    with patched_target():
        await Flight.hold()
""",
    )
    (pytester.path / "helpers.py").write_text(
        "from unittest import mock\n"
        "TARGET = 'real'\n"
        "def patched_target():\n"
        "    return mock.patch('helpers.TARGET', 'patched')\n"
    )
    pytester.syspathinsert()
    result = pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*patched a global while other tests were in flight*exclusive=True): *test_hidden*"]
    )


def test_faults_are_reported_against_the_test_that_caused_them(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def crashes_in_teardown():
            yield
            raise RuntimeError("teardown crash")

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_bystander(n):
            await asyncio.sleep(0.1)

        @pytest.mark.asyncio
        async def test_exits():
            await asyncio.sleep(0.01)
            raise SystemExit(3)

        @pytest.mark.asyncio
        async def test_task_exits():
            async def boom():
                raise SystemExit(4)
            asyncio.get_running_loop().create_task(boom())
            await asyncio.sleep(1)

        @pytest.mark.asyncio
        async def test_closes_running_loop():
            asyncio.get_running_loop().close()

        @pytest.mark.asyncio
        async def test_teardown(crashes_in_teardown):
            await asyncio.sleep(0.01)
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=8", "-rfE", "-p", "no:randomly")
    result.assert_outcomes(passed=4, failed=3, errors=1)
    summary = {
        line.split(" - ")[0]: line
        for line in result.stdout.lines
        if line.startswith(("FAILED", "ERROR"))
    }
    assert "SystemExit: 3" in summary["FAILED test_suite.py::test_exits"]
    assert "SystemExit: 4" in summary["FAILED test_suite.py::test_task_exits"]
    assert "RuntimeError" in summary["FAILED test_suite.py::test_closes_running_loop"]
    assert "teardown crash" in summary["ERROR test_suite.py::test_teardown"]


def test_sync_fixture_driving_the_loop_gets_a_clear_error(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.fixture
        def prepared():
            loop = asyncio.get_event_loop()
            coro = asyncio.sleep(0, result=1)
            try:
                return loop.run_until_complete(coro)
            finally:
                coro.close()

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_uses_it(n, prepared):
            pass
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=2")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*fixture 'prepared' drives the event loop itself*aiotempo(concurrent=False)"]
    )


def test_virtual_time_patches_do_not_collide_between_tests_in_flight(suite):
    pytester = suite(
        """
        import asyncio, time, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_sleep(n):
            start = time.monotonic()
            await asyncio.sleep(10 + n)
            assert time.monotonic() - start == pytest.approx(10 + n, abs=0.5)

        def test_time_is_real_afterwards():
            assert "built-in" in repr(time.monotonic)
        """
    )
    pytester.runpytest(
        "--asyncio-clock=virtual",
        "--asyncio-patch-time",
        "--asyncio-concurrency=3",
        "-p",
        "no:randomly",
    ).assert_outcomes(passed=4)


def test_deadlock_in_a_batch_fails_the_tests_waiting_and_the_run_goes_on(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_waits_forever():
            await asyncio.Event().wait()

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_sleeps(n):
            await asyncio.sleep(100)

        def test_after():
            pass
        """
    )
    result = pytester.runpytest(
        "--asyncio-clock=virtual", "--asyncio-concurrency=3", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*Deadlock: the test waits for something that can never happen*"])


def test_a_thread_of_a_test_in_flight_keeps_holding_the_clock(suite):
    pytester = suite(
        """
        import asyncio, threading, time, pytest

        @pytest.mark.asyncio
        async def test_thread():
            loop = asyncio.get_running_loop()
            done = loop.create_future()

            def work():
                time.sleep(0.3)
                loop.call_soon_threadsafe(done.set_result, 1)

            threading.Thread(target=work).start()
            assert await asyncio.wait_for(done, timeout=5) == 1

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_short(n):
            await asyncio.sleep(0.01)
        """
    )
    pytester.runpytest_subprocess(
        "--asyncio-clock=virtual", "--asyncio-concurrency=2", "-p", "no:randomly", timeout=60
    ).assert_outcomes(passed=4)


def test_aiotempo_marks_merge_from_module_to_test(suite):
    pytester = suite(
        FLIGHT
        + """
import collections
using = collections.Counter()

@pytest.mark.aiotempo(resources=["db"])
class TestDatabase:
    @pytest.mark.asyncio
    @pytest.mark.aiotempo(timeout=5)
    @pytest.mark.parametrize("n", range(3))
    async def test_query(self, n):
        using["db"] += 1
        assert using["db"] == 1  # the class's resource still applies
        await Flight.hold()
        using["db"] -= 1
"""
    )
    pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly").assert_outcomes(passed=3)


def test_a_method_named_patch_does_not_make_a_test_exclusive(suite):
    pytester = suite(
        FLIGHT
        + """
class Client:
    async def patch(self, url):
        await Flight.hold()

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_http_patch(n):
    await Client().patch("/items")

def test_they_overlapped():
    assert Flight.most > 1
"""
    )
    result = pytester.runpytest("--asyncio-concurrency=3", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    result.stdout.no_fnmatch_line("*unittest.mock.patch*")


def test_unraisable_exceptions_are_attributed_to_their_test(suite):
    pytester = suite(
        """
        import asyncio, pytest

        class Leaky:
            def __del__(self):
                raise RuntimeError("raised in __del__")

        @pytest.mark.asyncio
        async def test_drops_it():
            await asyncio.sleep(0.05)
            Leaky()  # reported when this test's call ends, after the others' have
            await asyncio.sleep(0.2)

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_bystander(n):
            await asyncio.sleep(0.1)
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=3", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["FAILED test_suite.py::test_drops_it - *PytestUnraisableExceptionWarning*"]
    )


def test_keyword_selection_leaves_the_rest_concurrent(suite):
    pytester = suite(
        FLIGHT
        + """
@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_selected(n):
    await Flight.hold()

@pytest.mark.asyncio
async def test_deselected():
    assert False

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_selected_too(n):
    await Flight.hold()

def test_selected_overlapped():
    assert Flight.most == 6
"""
    )
    result = pytester.runpytest("--asyncio-concurrency=6", "-k", "selected and not deselected")
    result.assert_outcomes(passed=7, deselected=1)


def test_last_failed_reruns_the_failures_of_a_concurrent_run(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(4))
        async def test_n(n):
            await asyncio.sleep(0.05 * (4 - n))  # they finish in reverse order
            assert n % 2 == 0
        """
    )
    pytester.runpytest("--asyncio-concurrency=4").assert_outcomes(passed=2, failed=2)
    result = pytester.runpytest("--asyncio-concurrency=4", "--lf", "-v")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 2 failures*"])
    result.stdout.fnmatch_lines_random(["*test_n[[]1[]] FAILED*", "*test_n[[]3[]] FAILED*"])


def test_durations_are_each_tests_own(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("seconds", [0.1, 0.5])
        async def test_waits(seconds):
            await asyncio.sleep(seconds)
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=2", "--durations=0", "-vv")
    result.assert_outcomes(passed=2)
    result.stdout.re_match_lines(
        [
            r"0\.[45]\ds call +test_suite\.py::test_waits\[0\.5\]",
            r"0\.[12]\ds call +test_suite\.py::test_waits\[0\.1\]",
        ]
    )


def test_a_finished_test_keeps_nothing_of_its_context_alive(suite):
    # A test of a batch runs in a context of its own, which its item kept to the end of the
    # session: what its synchronous fixtures set there (and memory) grew with every test.
    pytester = suite(
        """
        import contextvars, gc, weakref
        import pytest

        held = contextvars.ContextVar("held")
        refs = []

        class Payload:
            pass

        @pytest.fixture
        def payload():
            payload = Payload()
            refs.append(weakref.ref(payload))
            held.set(payload)

        @pytest.mark.parametrize("i", range(8))
        async def test_holds(i, payload):
            assert held.get() is not None

        @pytest.mark.aiotempo(concurrent=False)
        def test_freed():
            gc.collect()
            assert len(refs) == 8 and [ref() for ref in refs] == [None] * 8
        """,
        ini="asyncio_mode = auto",
    )
    pytester.runpytest("-p", "no:randomly", "--asyncio-concurrency=4").assert_outcomes(passed=9)


def test_a_batch_leaves_the_garbage_collector_as_it_found_it(suite):
    # The young generation may grow while a batch runs; the suite's own settings come back.
    pytester = suite(
        """
        import gc
        import pytest

        original = gc.get_threshold()
        gc.set_threshold(500, 7, 9)

        @pytest.mark.parametrize("i", range(4))
        async def test_batch(i):
            pass

        @pytest.mark.aiotempo(concurrent=False)
        def test_after():
            try:
                assert gc.get_threshold() == (500, 7, 9)
            finally:
                gc.set_threshold(*original)  # in-process: the thresholds are this process's
        """,
        ini="asyncio_mode = auto",
    )
    pytester.runpytest("-p", "no:randomly", "--asyncio-concurrency=4").assert_outcomes(passed=5)
