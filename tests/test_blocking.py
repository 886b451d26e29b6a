"""--asyncio-blocking: a test that blocks its loop is reported with the line that did it."""

import pytest

BLOCKING = """
import asyncio, time, pytest
from time import sleep  # bound at import: the watchdog still sees it

@pytest.mark.asyncio
async def test_sleeps_in_the_loop():
    sleep(0.4)

@pytest.mark.asyncio
async def test_burns_cpu():
    end = time.perf_counter() + 0.4
    while time.perf_counter() < end:
        pass

@pytest.mark.asyncio
async def test_awaits():
    await asyncio.sleep(0.4)
"""


def test_blocking_wait_and_cpu_hog_are_told_apart(suite):
    pytester = suite(BLOCKING)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "blocking: test_suite.py::test_sleeps_in_the_loop: the loop was blocked for at least"
            " * ms at test_suite.py:7 in test_sleeps_in_the_loop (sleep(0.4)): a blocking wait*"
            "asyncio.to_thread()",
            "blocking: test_suite.py::test_burns_cpu: * at test_suite.py:12 in test_burns_cpu "
            "(while time.perf_counter() < end:): a CPU hog*",
        ]
    )
    result.stdout.no_fnmatch_line("blocking: *test_awaits*")


def test_a_block_inside_a_library_names_the_tests_line(suite):
    # The stall is in subprocess.py (the standard library); the report names the test's call.
    pytester = suite(
        """
        import subprocess, sys
        import pytest

        @pytest.mark.asyncio
        async def test_waits_for_a_process():
            subprocess.run([sys.executable, "-c", "import time; time.sleep(0.4)"])
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "blocking: test_suite.py::test_waits_for_a_process: * at test_suite.py:7 in "
            "test_waits_for_a_process (subprocess.run(*)): a blocking wait*"
        ]
    )


def test_error_level_fails_the_blocking_test(suite):
    pytester = suite(BLOCKING)
    result = pytester.runpytest("--asyncio-blocking=error", "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=2)


def test_threshold_and_marker(suite):
    pytester = suite(
        """
        import pytest
        from time import sleep

        @pytest.mark.asyncio
        async def test_short_stall():
            sleep(0.2)

        @pytest.mark.asyncio
        @pytest.mark.aiotempo(blocking="off")
        async def test_known_stall():
            sleep(0.4)
        """
    )
    result = pytester.runpytest("--asyncio-blocking-threshold=0.3", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*blocking:*")


def test_under_concurrency_the_blocking_test_is_the_one_reported(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from time import sleep

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_some_block(n):
            await asyncio.sleep(0.05)
            if n == 1:
                sleep(0.4)
            await asyncio.sleep(0.05)
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=3", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["blocking: test_suite.py::test_some_block[[]1[]]: *"])
    result.stdout.no_fnmatch_line("blocking: test_suite.py::test_some_block[[]0[]]*")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--asyncio-blocking=loud", "asyncio_blocking = 'loud' is not valid"),
        ("--asyncio-blocking-threshold=0", "asyncio_blocking_threshold = '0' is not valid"),
    ],
)
def test_invalid_values_are_one_clear_line(suite, option, message):
    pytester = suite("def test_x():\n    pass\n")
    result = pytester.runpytest(option)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


def test_debug_mode_slow_callbacks_are_reported_against_their_test(suite):
    pytester = suite(
        """
        import asyncio, time, pytest

        @pytest.mark.asyncio
        async def test_slow_callback():
            loop = asyncio.get_running_loop()
            loop.slow_callback_duration = 0.05
            done = loop.create_future()
            loop.call_soon(lambda: (time.sleep(0.1), done.set_result(None)))
            await done

        @pytest.mark.asyncio
        async def test_fast():
            await asyncio.sleep(0.1)
        """
    )
    # above asyncio's 0.05 s, below the watchdog's threshold: only debug mode notices
    args = ("--asyncio-debug", "--asyncio-blocking-threshold=5", "-p", "no:randomly")
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "blocking: test_suite.py::test_slow_callback: a callback took * ms (asyncio debug "
            "mode): <Handle *<lambda>() at *test_suite.py:9 created at *>; created at "
            "test_suite.py:9 in test_slow_callback",
        ]
    )
    result.stdout.no_fnmatch_line("blocking: *test_fast*")
    result.stdout.no_fnmatch_line("*Executing*took*")  # not also in asyncio's log
    result = pytester.runpytest(*args, "--asyncio-blocking=off", "-rA")
    result.stdout.fnmatch_lines(["*Executing <Handle *<lambda>()*took*seconds*"])
    result.stdout.no_fnmatch_line("blocking:*")


def test_debug_mode_does_not_repeat_a_stall_the_watchdog_reported(suite):
    pytester = suite(
        """
        import pytest
        from time import sleep

        @pytest.mark.asyncio
        async def test_blocks():
            sleep(0.4)
        """
    )
    result = pytester.runpytest("--asyncio-debug")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["blocking: * blocked for at least * ms at test_suite.py:7*"])
    result.stdout.no_fnmatch_line("*a callback took*")
