"""--asyncio-leaks: what a test leaves behind is reported against it, with where it comes from."""

import pytest

LEAKY = """
import asyncio, os, threading, pytest

@pytest.mark.asyncio
async def test_task():
    async def heartbeat():
        await asyncio.sleep(3600)
    asyncio.get_running_loop().create_task(heartbeat(), name="heartbeat")

@pytest.mark.asyncio
async def test_timer():
    asyncio.get_running_loop().call_later(100, print, "late")

@pytest.mark.asyncio
async def test_thread():
    stop = threading.Event()
    threading.Thread(target=stop.wait, args=(1,), name="stuck").start()

@pytest.mark.asyncio
async def test_descriptor():
    os.open(os.devnull, os.O_RDONLY)  # never closed

@pytest.mark.asyncio
async def test_unretrieved():
    async def boom():
        raise ValueError("lost")
    task = asyncio.get_running_loop().create_task(boom())
    await asyncio.sleep(0)
    del task

@pytest.mark.asyncio
async def test_clean():
    task = asyncio.get_running_loop().create_task(asyncio.sleep(0))
    await task
"""


def test_each_kind_of_leak_is_reported_against_its_test(suite):
    pytester = suite(LEAKY)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "leaks: test_suite.py::test_task: task 'heartbeat' (*heartbeat) still pending, "
            "suspended at test_suite.py:7",
            "leaks: test_suite.py::test_timer: timer <built-in function print> still scheduled",
            "leaks: test_suite.py::test_thread: thread 'stuck' still running",
            "leaks: test_suite.py::test_descriptor: file descriptor * still open (/dev/null)",
            "leaks: test_suite.py::test_unretrieved: exception never retrieved from *: "
            "ValueError('lost')",
        ]
    )
    result.stdout.no_fnmatch_line("*test_clean*")


def test_error_level_fails_the_teardown_of_the_leaky_test(suite):
    pytester = suite(LEAKY)
    result = pytester.runpytest("--asyncio-leaks=error", "-p", "no:randomly")
    result.assert_outcomes(passed=6, errors=5)
    result.stdout.fnmatch_lines(
        ["test_suite.py::test_task left behind (--asyncio-leaks=error):", "  task 'heartbeat'*"]
    )


def test_off_level_and_the_marker(suite):
    pytester = suite(
        """
        import asyncio, pytest

        async def heartbeat():
            await asyncio.sleep(3600)

        @pytest.mark.asyncio
        @pytest.mark.aiotempo(allow_leaks=["heartbeat"])
        async def test_known_leak():
            asyncio.get_running_loop().create_task(heartbeat(), name="heartbeat")

        @pytest.mark.asyncio
        @pytest.mark.aiotempo(leaks="error")
        async def test_strict():
            asyncio.get_running_loop().create_task(heartbeat(), name="strict-beat")
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.no_fnmatch_line("*test_known_leak*still pending*")
    result = pytester.runpytest("--asyncio-leaks=off", "-k", "known", "-p", "no:randomly")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.no_fnmatch_line("*leaks:*")


def test_leak_report_is_in_the_tests_own_report(suite):
    pytester = suite(LEAKY)
    result = pytester.runpytest("-rA", "-k", "test_timer", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        ["*- Captured aiotempo leaks teardown -*", "timer <built-in function print> still*"]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--asyncio-leaks=loud"], "ERROR: asyncio_leaks = 'loud' is not valid; use one of*"),
    ],
)
def test_invalid_level_is_one_clear_line(suite, args, message):
    pytester = suite("def test_x():\n    pass\n")
    result = pytester.runpytest(*args)
    assert result.ret == 4
    result.stderr.fnmatch_lines([message])
