"""--asyncio-timeout: a hung test fails alone, showing where every task waits."""

import pytest


def test_hung_test_fails_with_every_tasks_await_chain(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def resource():
            yield
            print("teardown ran")

        @pytest.mark.asyncio
        async def test_hangs(resource):
            async def helper():
                await asyncio.sleep(3600)
            asyncio.get_running_loop().create_task(helper(), name="helper")
            await asyncio.Event().wait()

        @pytest.mark.asyncio
        async def test_next():
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest("--asyncio-timeout=0.3", "-rA")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*TestTimeout: test_suite.py::test_hangs: timed out after 0.3 s (--asyncio-timeout)",
            "*waits for Event * to be set",
            "*test_suite.py:14 in test_hangs",
            "*Task 'helper' waits for a timer: asyncio.sleep(3600)*",
            "*teardown ran*",
        ]
    )


def test_blocked_thread_is_interrupted_with_its_stack(suite):
    pytester = suite(
        """
        def test_spins():
            while True:
                pass

        def test_next():
            pass
        """
    )
    result = pytester.runpytest("--asyncio-timeout=0.3")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*test_spins: timed out after 0.3 s, while its thread was blocked (not awaiting) here:",
            "*test_suite.py*in test_spins*",
        ]
    )


def test_marker_sets_or_lifts_the_limit(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.aiotempo(timeout=0)
        async def test_unlimited():
            await asyncio.sleep(0.5)

        @pytest.mark.asyncio
        @pytest.mark.aiotempo(timeout=0.2)
        async def test_limited():
            await asyncio.sleep(5)
        """
    )
    result = pytester.runpytest("--asyncio-timeout=0.3")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_limited: timed out after 0.2 s*"])


def test_timeout_under_concurrency_fails_only_the_hung_test(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(4))
        async def test_some_hang(n):
            if n == 2:
                await asyncio.Event().wait()
            await asyncio.sleep(0.05)
        """
    )
    result = pytester.runpytest("--asyncio-timeout=0.5", "--asyncio-concurrency=4")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*test_some_hang?2?: timed out after 0.5 s*"])


def test_timeouts_pause_while_a_debugger_traces(suite):
    pytester = suite(
        """
        import asyncio, sys, pytest

        def debugger(frame, event, arg):
            return debugger

        @pytest.mark.asyncio
        async def test_stepped_through():
            sys.settrace(debugger)
            try:
                await asyncio.sleep(1)
            finally:
                sys.settrace(None)
        """
    )
    pytester.runpytest("--asyncio-timeout=0.3").assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["-1", "soon"])
def test_invalid_timeout_is_one_clear_line(suite, value):
    pytester = suite("def test_x():\n    pass\n")
    result = pytester.runpytest(f"--asyncio-timeout={value}")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: asyncio_timeout = '{value}' is not valid*"])


def test_invalid_timeout_marker_errors_that_test(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.aiotempo(timeout="soon")
        def test_bad():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_bad: @pytest.mark.aiotempo(timeout=...) = 'soon'*"])


def test_a_tests_tasks_do_not_outlive_it(suite):
    pytester = suite(
        """
        import asyncio, weakref, pytest

        tasks = []

        @pytest.mark.asyncio
        async def test_first():
            tasks.append(weakref.ref(asyncio.current_task()))

        @pytest.mark.asyncio
        async def test_second():
            # freed by reference counting (else every task stays in asyncio.all_tasks()'s set)
            assert tasks[0]() is None
        """
    )
    result = pytester.runpytest("--asyncio-timeout=60", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_thread_stuck_in_c_code_exits_the_run_after_writing_the_reports(suite, asynchronous):
    pytester = suite(
        f"""
        import asyncio, threading, pytest

        def test_first():
            pass

        {"@pytest.mark.asyncio" if asynchronous else ""}
        {"async " if asynchronous else ""}def test_stuck():
            print("before the call")
            lock = threading.Lock(); lock.acquire(); lock.acquire()  # never returns

        def test_never_runs():
            pass
        """
    )
    result = pytester.runpytest_subprocess(
        "--asyncio-timeout=0.3", "--junitxml=report.xml", "-p", "no:randomly", timeout=60
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*test_stuck: timed out after 0.3 s, while its thread was blocked (not awaiting) here:",
            "*in test_stuck*",
            "That call did not return within 2 s of the timeout being raised in it*",
            "*before the call*",
            "*1 failed, 1 passed*",
        ]
    )
    result.stderr.fnmatch_lines(
        [
            "aiotempo: test_suite.py::test_stuck is stuck at test_suite.py:10 in test_stuck in a "
            "call that cannot be interrupted, past a 0.3 s timeout (--asyncio-timeout); the "
            "reports are written and the process exits as a last resort"
        ]
    )
    xml = (pytester.path / "report.xml").read_text()
    assert 'tests="2"' in xml and 'failures="1"' in xml
    assert '<testcase classname="test_suite" name="test_stuck"' in xml
    assert "That call did not return" in xml


def test_under_concurrency_the_exit_names_the_stuck_test_and_reports_those_in_flight(suite):
    pytester = suite(
        """
        import asyncio, threading, pytest

        @pytest.mark.asyncio
        async def test_waits():
            await asyncio.sleep(3600)

        @pytest.mark.asyncio
        async def test_stuck():
            await asyncio.sleep(0.2)
            lock = threading.Lock(); lock.acquire(); lock.acquire()  # never returns
        """
    )
    result = pytester.runpytest_subprocess(
        "--asyncio-timeout=0.3", "--asyncio-concurrency=2", "--junitxml=report.xml", timeout=60
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*_ test_stuck _*",
            "test_suite.py::test_waits: timed out after 0.3 s, while test_suite.py::test_stuck "
            "blocked the loop (not awaiting) here:",
            "*_ test_waits _*",
            "interrupted: the run exited: test_suite.py::test_stuck is stuck at "
            "test_suite.py:11 in test_stuck in a call that cannot be interrupted",
            "*2 failed in*",
        ]
    )
    result.stderr.fnmatch_lines(["aiotempo: test_suite.py::test_stuck is stuck at *"])
    assert (pytester.path / "report.xml").read_text().count("<failure") == 2
