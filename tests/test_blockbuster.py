"""--asyncio-blockbuster: a blocking call in an async test fails at the call (blockbuster)."""

import time

import pytest

ON = ("--asyncio-blockbuster", "--asyncio-blocking=error", "-p", "no:randomly")

BLOCKING = """
import asyncio, os, time, pytest

@pytest.mark.asyncio
async def test_sleeps():
    time.sleep(0.01)

@pytest.mark.asyncio
async def test_its_task_sleeps():
    async def blocker():
        time.sleep(0.01)

    await asyncio.create_task(blocker())

@pytest.mark.asyncio
async def test_offloads():
    await asyncio.to_thread(time.sleep, 0.01)
    await asyncio.to_thread(os.stat, ".")

def test_sync_sleeps():
    time.sleep(0.01)

@pytest.mark.asyncio
@pytest.mark.aiotempo(blocking="warn")
async def test_known_to_block():
    os.stat(".")
"""


def test_a_blocking_call_fails_at_the_call(suite):
    pytester = suite(BLOCKING)
    result = pytester.runpytest(*ON)
    result.assert_outcomes(passed=3, failed=2)
    finding = (
        "a blocking call to time.sleep at test_suite.py:6 in test_sleeps (time.sleep(0.01)), "
        "caught by blockbuster; move it off the loop with asyncio.to_thread()"
    )
    result.stdout.fnmatch_lines(
        [
            ">       time.sleep(0.01)",  # the traceback ends at the test's line
            f"E       blockbuster.blockbuster.BlockingError: {finding}",
            "test_suite.py:6: BlockingError",
            f"blocking: test_suite.py::test_sleeps: {finding}",
            "blocking: test_suite.py::test_its_task_sleeps: a blocking call to time.sleep at "
            "test_suite.py:11 in blocker *",
        ]
    )
    assert result.stdout.str().count("blocking: ") == 2


def test_a_blocking_call_the_test_catches_is_reported_too(suite):
    pytester = suite(
        """
        import time, pytest
        from blockbuster import BlockingError

        @pytest.mark.asyncio
        async def test_catches():
            try:
                time.sleep(0.01)
            except BlockingError:
                pass
        """
    )
    result = pytester.runpytest(*ON)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "blocking: test_suite.py::test_catches: a blocking call to time.sleep at "
            "test_suite.py:8 in test_catches (time.sleep(0.01)), caught by blockbuster*"
        ]
    )


def test_off_by_default(suite):
    pytester = suite(BLOCKING)
    pytester.runpytest("--asyncio-blocking=error").assert_outcomes(passed=5)


def test_blockbuster_is_deactivated_after_the_run(suite):
    import blockbuster.blockbuster

    sleep = time.sleep
    suite(BLOCKING).runpytest(*ON)
    assert time.sleep is sleep
    assert blockbuster.blockbuster.BlockingError is blockbuster.BlockingError  # its own error back


FIXTURES = """
import asyncio, os, time, pytest

@pytest.fixture
async def blocks_in_setup():
    os.stat(".")
    yield

@pytest.fixture
async def blocks_in_teardown():
    yield
    time.sleep(0.001)

@pytest.fixture(scope="module")
async def wider():
    os.stat(".")  # set up for the first test that needs it: no test's own
    yield

@pytest.mark.asyncio
async def test_setup(blocks_in_setup):
    pass

@pytest.mark.asyncio
async def test_teardown(blocks_in_teardown):
    pass

@pytest.mark.asyncio
async def test_wider(wider):
    pass
"""


@pytest.mark.parametrize(
    "args", [(), ("--asyncio-concurrency=4",)], ids=["sequential", "concurrent"]
)
def test_the_tests_own_async_fixtures_are_checked_too(suite, args):
    pytester = suite(FIXTURES)
    result = pytester.runpytest(*ON, *args)
    result.assert_outcomes(passed=2, errors=2)  # test_teardown passed, then failed
    result.stdout.fnmatch_lines_random(
        [
            "blocking: test_suite.py::test_setup: a blocking call to os.stat at test_suite.py:6 "
            "in blocks_in_setup *",
            "blocking: test_suite.py::test_teardown: a blocking call to time.sleep at "
            "test_suite.py:12 in blocks_in_teardown *",
            "ERROR test_suite.py::test_setup - blockbuster.*",
            "ERROR test_suite.py::test_teardown - blockbuster.*",
        ]
    )
    assert "test_wider" not in "".join(line for line in result.outlines if "blocking:" in line)


def test_under_concurrency_the_blocking_test_fails(suite):
    pytester = suite(
        """
        import asyncio, logging, time, pytest

        @pytest.fixture
        async def resource():
            await asyncio.sleep(0.01)
            yield

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_some_block(n, resource):
            print("output", n)  # pytest's own code runs on the loop here: not checked
            logging.getLogger("test").warning("log %s", n)
            await asyncio.sleep(0.05)
            if n == 1:
                time.sleep(0.01)
            await asyncio.sleep(0.05)

        def test_sync_sleeps():
            time.sleep(0.01)
        """
    )
    result = pytester.runpytest(*ON, "--asyncio-concurrency=3")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*concurrency: on*",
            "blocking: test_suite.py::test_some_block[[]1[]]: a blocking call to time.sleep at "
            "test_suite.py:16 in test_some_block *",
            "FAILED test_suite.py::test_some_block[[]1[]] - blockbuster.*",
        ]
    )


def test_allowed_functions(suite):
    pytester = suite(
        {
            "helpers.py": """
                import os

                def load():
                    return os.stat(".")

                def check():
                    return os.stat(".")
            """,
            "test_suite.py": """
                import pytest, helpers

                @pytest.mark.asyncio
                async def test_allowed():
                    helpers.load()

                @pytest.mark.asyncio
                async def test_not_allowed():
                    helpers.check()
            """,
        },
        ini="asyncio_blockbuster_allow = helpers.py:load",
    )
    result = pytester.runpytest(*ON)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["blocking: *test_not_allowed: a blocking call to os.stat at helpers.py:8 in check *"]
    )


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        (
            "asyncio_blockbuster = maybe",
            (),
            "ERROR: asyncio_blockbuster in the ini file is not valid (invalid truth value "
            "'maybe'); use true or false",
        ),
        (
            "asyncio_patch_time = maybe",
            (),
            "ERROR: asyncio_patch_time in the ini file is not valid (*); use true or false",
        ),
        (
            "asyncio_blockbuster = true",
            (),
            "ERROR: asyncio_blockbuster needs asyncio_blocking = error: * "
            "(add --asyncio-blocking=error)",
        ),
        (
            "asyncio_blockbuster_allow = load",
            ON,
            "ERROR: asyncio_blockbuster_allow line 'load' is not valid; write file.py:function, *",
        ),
    ],
    ids=["bad-flag", "bad-patch-time-flag", "needs-error-level", "bad-allow-line"],
)
def test_usage_errors(suite, ini, args, message):
    result = suite("def test_nothing(): pass", ini=ini).runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_without_the_package_says_how_to_install_it(suite):
    pytester = suite(
        {
            "conftest.py": """
                import sys

                sys.modules["blockbuster"] = None  # what an absent package imports as
            """,
            "test_suite.py": "def test_nothing(): pass",
        },
        ini="asyncio_blockbuster = true\nasyncio_blocking = error",
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: asyncio_blockbuster needs the blockbuster package: "
            "pip install 'aiotempo[blockbuster]'"
        ]
    )
