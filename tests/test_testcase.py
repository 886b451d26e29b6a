"""aiotempo.TestCase: IsolatedAsyncioTestCase on a virtual clock, with leak checks and a timeout.

The same files run under ``python -m unittest`` (in a subprocess, where pytest must never be
imported) and under pytest, with the same outcomes.
"""

import re
import sys
import textwrap
from pathlib import Path

import pytest

PASSING = """
    import asyncio
    import contextvars
    import unittest

    import aiotempo

    request_id = contextvars.ContextVar("request_id")


    class Resource:
        def __init__(self, log):
            self.log = log

        async def __aenter__(self):
            self.log.append("enter")
            return self

        async def __aexit__(self, *exc_info):
            await asyncio.sleep(1)
            self.log.append("exit")


    class TestVirtual(aiotempo.TestCase):
        def setUp(self):
            self.loop = asyncio.get_event_loop()  # the test's loop is current in setUp
            self.log = []

        async def asyncSetUp(self):
            request_id.set("r-1")
            self.addAsyncCleanup(self.check_order)  # the first one registered runs last
            self.resource = await self.enterAsyncContext(Resource(self.log))
            self.addAsyncCleanup(self.log.append, "sync cleanup")
            self.addAsyncCleanup(self.close, "cleanup")

        async def close(self, what):
            await asyncio.sleep(1)
            self.log.append(what)

        async def asyncTearDown(self):
            assert request_id.get() == "r-1"
            self.log.append("asyncTearDown")

        def tearDown(self):
            self.log.append("tearDown")

        async def test_sleeps_a_minute(self):
            self.assertIs(asyncio.get_running_loop(), self.loop)
            await asyncio.sleep(60)
            self.assertEqual(self.virtual_clock.time, 60)
            self.assertEqual(request_id.get(), "r-1")  # set in asyncSetUp

        async def test_timers_fire_in_order(self):
            fired = []
            self.loop.call_later(30, fired.append, "late")
            self.loop.call_later(10, fired.append, "early")
            await self.virtual_clock.advance(30)
            self.assertEqual(fired, ["early", "late"])

        async def test_wait_for_times_out_at_once(self):
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.Event().wait(), timeout=3600)
            self.assertEqual(self.loop.time(), 3600)

        def test_synchronous_methods_still_work(self):
            self.assertEqual(self.log, ["enter"])

        async def check_order(self):
            steps = ["enter", "asyncTearDown", "tearDown", "cleanup", "sync cleanup", "exit"]
            self.assertEqual(self.log, steps)


    class TestReal(aiotempo.TestCase):
        clock = "real"

        async def test_real_time(self):
            with self.assertRaises(RuntimeError):
                self.virtual_clock
            start = asyncio.get_running_loop().time()
            await asyncio.sleep(0.01)
            self.assertGreaterEqual(asyncio.get_running_loop().time() - start, 0.01)


    class TestLeaksAllowed(aiotempo.TestCase):
        check_leaks = False

        async def test_leaves_a_task(self):
            asyncio.ensure_future(asyncio.sleep(3600))


    class TestIsTheStdlibKind(unittest.TestCase):
        def test_subclass(self):
            self.assertTrue(issubclass(aiotempo.TestCase, unittest.IsolatedAsyncioTestCase))
"""

FAILING = """
    import asyncio
    import threading

    import aiotempo


    async def heartbeat():
        while True:
            await asyncio.sleep(1)


    class TestLeaks(aiotempo.TestCase):
        async def test_leaks_a_task(self):
            asyncio.get_running_loop().create_task(heartbeat(), name="heartbeat")

        async def test_cleans_up(self):
            task = asyncio.get_running_loop().create_task(heartbeat(), name="heartbeat")
            self.addAsyncCleanup(self.stop, task)

        async def stop(self, task):
            task.cancel()


    class TestDeadlock(aiotempo.TestCase):
        async def test_waits_forever(self):
            await asyncio.Event().wait()


    class TestTimeouts(aiotempo.TestCase):
        timeout = 0.5

        async def test_polls_forever(self):
            while True:
                await asyncio.sleep(1)  # virtual seconds fly by; real ones still count

        async def test_waits_for_a_thread(self):
            done = threading.Event()
            await asyncio.to_thread(done.wait, 1)  # 1 s: a thread cannot be cancelled

        async def test_blocks_its_loop(self):
            while True:
                pass

        async def test_quick(self):
            await asyncio.sleep(3600)
"""


def write(pytester: pytest.Pytester, name: str, source: str) -> str:
    text = textwrap.dedent(source).lstrip("\n")
    (pytester.path / f"{name}.py").write_text(text)
    return text


def line(text: str, snippet: str) -> int:
    """The number of the first line of ``text`` that contains ``snippet``."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if snippet in line)


def unittest_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(sys.executable, "-m", "unittest", *args, timeout=120)


#: What ``python -m unittest ARGS`` runs (``unittest/__main__.py``), then which pytest modules
#: were imported.
UNITTEST_MAIN = """
import sys, unittest
unittest.main(module=None, argv=["python -m unittest", *sys.argv[1:]], exit=False)
print(sorted(name for name in sys.modules if "pytest" in name))
"""


def test_under_unittest_a_virtual_minute_takes_under_a_second(pytester: pytest.Pytester):
    write(pytester, "test_passing", PASSING)
    result = unittest_run(pytester, "-v", "test_passing")
    output = "\n".join(result.errlines)
    assert result.ret == 0, output
    assert "Ran 7 tests" in output and "OK" in output
    assert "took" not in output  # debug mode's slow-callback log does not time clock jumps
    ran_in = float(re.search(r"Ran 7 tests in ([\d.]+)s", output)[1])  # type: ignore[index]
    assert ran_in < 1.0, output  # 60 + 30 + 3600 virtual seconds, and cleanups' sleeps


def test_under_unittest_pytest_is_never_imported(pytester: pytest.Pytester):
    write(pytester, "test_passing", PASSING)
    result = pytester.run(sys.executable, "-c", UNITTEST_MAIN, "test_passing", timeout=120)
    assert result.ret == 0
    assert result.outlines == ["[]"], result.outlines
    assert "OK" in result.errlines


def test_under_unittest_leaks_deadlocks_and_timeouts_fail_with_the_task_report(
    pytester: pytest.Pytester,
):
    source = write(pytester, "test_failing", FAILING)
    result = unittest_run(pytester, "-v", "test_failing")
    assert result.ret == 1
    result.stderr.fnmatch_lines_random(
        [
            "test_cleans_up (test_failing.TestLeaks*) ... ok",
            "test_leaks_a_task (test_failing.TestLeaks*) ... FAIL",
            "test_waits_forever (test_failing.TestDeadlock*) ... ERROR",
            "test_polls_forever (test_failing.TestTimeouts*) ... FAIL",
            "test_waits_for_a_thread (test_failing.TestTimeouts*) ... FAIL",
            "test_blocks_its_loop (test_failing.TestTimeouts*) ... FAIL",
            "test_quick (test_failing.TestTimeouts*) ... ok",
            "FAILED (failures=4, errors=1)",
        ]
    )
    result.stderr.fnmatch_lines(
        [
            "AssertionError: test_failing.TestLeaks.test_leaks_a_task: 1 task(s) still pending "
            "after asyncTearDown and the cleanups; *",
            "Task 'heartbeat' waits for a timer: asyncio.sleep(1), due in *",
            f"  created at test_failing.py:{line(source, 'name=')} in test_leaks_a_task",
            f"  test_failing.py:{line(source, 'await asyncio.sleep(1)')} in heartbeat",
        ]
    )
    result.stderr.fnmatch_lines(
        [
            "aiotempo.clock.Deadlock: the test waits for something that can never happen*",
            "Task 'TestDeadlock.test_waits_forever' waits for Event * to be set",
            f"  test_failing.py:{line(source, 'Event().wait()')} in *test_waits_forever",
        ]
    )
    result.stderr.fnmatch_lines(
        [
            "aiotempo.testcase.TestTimeout: test_failing.TestTimeouts.test_polls_forever: "
            "timed out after 0.5 s (TestCase.timeout)",
            "Task 'TestTimeouts.test_polls_forever' *",  # waits for its timer, or it is due
            f"  test_failing.py:{line(source, 'sleep(1)  # virtual')} in *test_polls_forever",
        ]
    )
    result.stderr.fnmatch_lines(
        [
            "aiotempo.testcase.TestTimeout: *test_waits_for_a_thread: timed out after 0.5 s*",
            "Task 'TestTimeouts.test_waits_for_a_thread' waits for executor job *",
        ]
    )
    result.stderr.fnmatch_lines(
        [
            "aiotempo.testcase.TestTimeout: *test_blocks_its_loop: timed out after 0.5 s "
            "(TestCase.timeout), while its thread was blocked (not awaiting) here:",
            '  File "*test_failing.py", line *, in test_blocks_its_loop',
        ]
    )


@pytest.mark.parametrize(
    "options",
    [(), ("--asyncio-clock=virtual", "--asyncio-concurrency=8", "--asyncio-timeout=30")],
    ids=["default", "virtual-concurrent-timeout"],
)
def test_under_pytest_the_same_outcomes(suite, options):
    pytester = suite({"test_passing.py": PASSING, "test_failing.py": FAILING})
    result = pytester.runpytest("-p", "no:randomly", *options)
    result.assert_outcomes(passed=9, failed=5)
    result.stdout.fnmatch_lines_random(
        [
            "FAILED test_failing.py::TestLeaks::test_leaks_a_task - *",
            "FAILED test_failing.py::TestDeadlock::test_waits_forever - *",
            "FAILED test_failing.py::TestTimeouts::test_polls_forever - *",
            "FAILED test_failing.py::TestTimeouts::test_waits_for_a_thread - *",
            "FAILED test_failing.py::TestTimeouts::test_blocks_its_loop - *",
            "E*AssertionError: test_failing.TestLeaks.test_leaks_a_task: 1 task(s) still pending *",
            "E*Task 'heartbeat' waits for a timer: asyncio.sleep(1), due in *",
            "E*aiotempo.clock.Deadlock: the test waits for something that can never happen*",
            "E*TestTimeout: test_failing.TestTimeouts.test_polls_forever: timed out after 0.5 s*",
            "E*TestTimeout: test_failing.TestTimeouts.test_blocks_its_loop: timed out after 0.5 s*",
        ]
    )


def test_the_virtual_clock_needs_a_selector_loop(suite):
    pytest.importorskip("uvloop")
    pytester = suite(
        """
        import asyncio

        import uvloop

        import aiotempo


        class TestUvloopVirtual(aiotempo.TestCase):
            loop_factory = uvloop.new_event_loop

            async def test_never_runs(self):
                pass


        class TestUvloopReal(aiotempo.TestCase):
            loop_factory = uvloop.new_event_loop
            clock = "real"

            async def test_runs(self):
                assert isinstance(asyncio.get_running_loop(), uvloop.Loop)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*VirtualClockError: the virtual clock needs asyncio's default selector loop, not "
            "Loop; set clock = 'real' on TestUvloopVirtual"
        ]
    )


GUIDE = Path(__file__).resolve().parent.parent / "docs" / "testcase.md"


def test_the_guides_unittest_run_is_what_unittest_prints(pytester: pytest.Pytester):
    blocks = re.findall(r"```python\n# (\S+)\n(.*?)```", GUIDE.read_text(), re.S)
    (pytester.path / "test_orders.py").write_text(dict(blocks)["test_orders.py"])
    result = unittest_run(pytester, "-v", "test_orders")
    assert result.ret == 0
    result.stderr.fnmatch_lines(
        [
            "test_advance_the_clock_by_hand (test_orders.TestOrders*) ... ok",
            "test_an_order_expires_after_a_minute (test_orders.TestOrders*) ... ok",
            "Ran 2 tests in *",
            "OK",
        ]
    )


def test_importing_aiotempo_does_not_import_pytest(pytester: pytest.Pytester):
    code = (
        "import sys, aiotempo; aiotempo.TestCase; import aiotempo.mock;"
        "print(sorted(m for m in sys.modules if 'pytest' in m))"
    )
    result = pytester.run(sys.executable, "-c", code)
    assert result.ret == 0
    assert result.outlines == ["[]"]
