"""Misuse gets one clear line naming the test and the fix; the rest of the run goes on."""


def test_asyncio_run_inside_async_test(suite):
    pytester = suite(
        """
        import asyncio, pytest

        async def work():
            return 1

        @pytest.mark.asyncio
        async def test_nested_run():
            coro = work()
            try:
                asyncio.run(coro)
            finally:
                coro.close()

        @pytest.mark.asyncio
        async def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AsyncioMisuse: test_suite.py::test_nested_run: called asyncio.run() while its "
            "event loop is running; await the coroutine instead"
        ]
    )


def test_run_until_complete_inside_async_test(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_drives_loop():
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            future.set_result(None)
            loop.run_until_complete(future)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_drives_loop: called loop.run_until_complete()*"])


def test_test_that_stops_the_loop(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_stops():
            asyncio.get_running_loop().stop()
            await asyncio.sleep(1)

        @pytest.mark.asyncio
        async def test_next_runs_normally():
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_stops: stopped its event loop (loop.stop())*"])


def test_sync_test_that_closes_the_loop(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def value():
            return 1

        def test_closes(value):
            asyncio.get_event_loop().close()

        @pytest.mark.asyncio
        async def test_next_gets_a_new_loop():
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_closes: closed its event loop; aiotempo owns that loop*"])


def test_async_generator_test(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_gen():
            yield 1

        @pytest.mark.asyncio
        async def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_gen is an async generator (its body contains 'yield'); a test must not yield*"]
    )


def test_async_method_in_plain_unittest_testcase_fails_loudly(suite):
    pytester = suite(
        """
        import unittest

        class TestPlain(unittest.TestCase):
            async def test_never_awaited(self):
                assert False

            def test_sync(self):
                pass
        """,
        ini="filterwarnings = ignore::DeprecationWarning\n    ignore::RuntimeWarning",
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_never_awaited is 'async def' in a plain unittest.TestCase*IsolatedAsyncioTestCase"]
    )


def test_getfixturevalue_of_async_fixture_inside_async_test(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def late():
            return 1

        @pytest.mark.asyncio
        async def test_dynamic(request):
            request.getfixturevalue("late")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*fixture 'late': was requested while its event loop is running*as an argument instead"]
    )
