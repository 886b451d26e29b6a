"""aiotempo keeps pytest's ecosystem working: unittest, hypothesis, mocker, reports, selection."""

import pytest


def test_isolated_asyncio_testcase_runs_as_before(suite):
    pytester = suite(
        """
        import asyncio, unittest

        class TestIsolated(unittest.IsolatedAsyncioTestCase):
            async def asyncSetUp(self):
                self.value = await asyncio.sleep(0, result=3)

            async def test_value(self):
                self.assertEqual(self.value, 3)

            async def test_failure(self):
                self.assertEqual(self.value, 4)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1, failed=1)


def test_hypothesis_given_on_async_test(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from hypothesis import given, settings, strategies as st

        loops = set()

        @pytest.mark.asyncio
        @settings(max_examples=20, database=None)
        @given(st.integers())
        async def test_property(n):
            loops.add(asyncio.get_running_loop())
            assert await asyncio.sleep(0, result=n) == n

        def test_examples_ran_on_one_loop():
            assert len(loops) == 1

        @pytest.mark.asyncio
        @settings(max_examples=20, database=None)
        @given(st.integers(min_value=0))
        async def test_falsified(n):
            assert n < 5
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["E * test_falsified(", "E *n=5,"])


def test_pytest_mock_async_mocks(suite):
    pytester = suite(
        """
        import pytest

        class Client:
            async def fetch(self):
                raise RuntimeError("network")

        @pytest.mark.asyncio
        async def test_mocked(mocker):
            fetch = mocker.patch.object(Client, "fetch", return_value=7)
            assert await Client().fetch() == 7
            fetch.assert_awaited_once()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.skipif(not hasattr(pytest, "Subtests"), reason="pytest's subtests came in 9.0")
def test_subtests_in_async_test(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_with_subtests(subtests):
            for n in range(3):
                with subtests.test(n=n):
                    assert n != 1
        """
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*1 failed*"])


def test_junitxml_records_async_outcomes_and_output(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_ok():
            print("hello from ok")

        @pytest.mark.asyncio
        async def test_bad():
            assert False, "bad"
        """
    )
    result = pytester.runpytest("--junitxml=report.xml", "-o", "junit_logging=all")
    result.assert_outcomes(passed=1, failed=1)
    xml = (pytester.path / "report.xml").read_text()
    assert 'tests="2"' in xml and 'failures="1"' in xml
    assert "hello from ok" in xml and "AssertionError: bad" in xml


def test_keyword_selection_and_last_failed(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_alpha():
            assert False

        @pytest.mark.asyncio
        async def test_beta():
            pass
        """
    )
    pytester.runpytest("-k", "beta").assert_outcomes(passed=1, deselected=1)
    pytester.runpytest().assert_outcomes(passed=1, failed=1)
    result = pytester.runpytest("--lf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])


def test_pdb_post_mortem_on_async_failure(suite):
    pytester = suite(
        {
            "recorder.py": """
                class Recorder:
                    quitting = False

                    def __init__(self, *args, **kwargs):
                        pass

                    def reset(self):
                        pass

                    def interaction(self, frame, tb_or_exc):
                        # Python 3.13 passes the exception, older ones its traceback
                        tb = getattr(tb_or_exc, "__traceback__", tb_or_exc)
                        print("post-mortem entered at", tb.tb_frame.f_code.co_name)
            """,
            "test_pdb.py": """
                import pytest

                @pytest.mark.asyncio
                async def test_broken():
                    assert False
            """,
        }
    )
    pytester.syspathinsert()
    result = pytester.runpytest("--pdb", "--pdbcls=recorder:Recorder", "-s")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["post-mortem entered at*"])


def test_xdist_runs_async_tests_on_workers(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module")
        async def shared():
            return asyncio.get_running_loop()

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(6))
        async def test_n(n, shared):
            assert asyncio.get_running_loop() is shared
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=6)


def test_unused_port_fixtures(suite):
    pytester = suite(
        """
        import asyncio, socket, pytest

        @pytest.mark.asyncio
        async def test_tcp(unused_tcp_port):
            server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", unused_tcp_port)
            server.close()
            await server.wait_closed()

        def test_udp(unused_udp_port):
            with socket.socket(type=socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", unused_udp_port))

        def test_factories_never_repeat(unused_tcp_port_factory, unused_udp_port_factory):
            assert len({unused_tcp_port_factory() for _ in range(5)}) == 5
            assert len({unused_udp_port_factory() for _ in range(5)}) == 5
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def with_bystanders(tests: str) -> str:
    """A test module: ``tests`` in a batch with three tests that overlap, then a check that
    they did."""
    return (
        """
import asyncio, pytest

in_flight = set()
most_in_flight = 0


async def hold(name, seconds=0.2):
    global most_in_flight
    in_flight.add(name)
    most_in_flight = max(most_in_flight, len(in_flight))
    await asyncio.sleep(seconds)
    in_flight.discard(name)
"""
        + tests
        + """

@pytest.mark.asyncio
@pytest.mark.parametrize("n", range(3))
async def test_bystander(n):
    await hold(n)


def test_bystanders_overlapped():
    assert most_in_flight >= 3
"""
    )


@pytest.mark.parametrize(
    "args, mark",
    [
        (["--timeout=0.5", "--timeout-method=signal"], ""),
        (["--timeout=0.5", "--timeout-method=thread"], ""),
        ([], "@pytest.mark.timeout(0.5)"),
    ],
    ids=["signal", "thread", "marker"],
)
def test_pytest_timeout_fails_a_hanging_concurrent_test_alone(suite, args, mark):
    # pytest-timeout's alarm is one per process (and its thread method ends the process)
    pytester = suite(
        with_bystanders(
            f"""
@pytest.mark.asyncio
{mark}
async def test_hangs():
    await asyncio.sleep(60)
"""
        )
    )
    result = pytester.runpytest_subprocess(
        "--asyncio-concurrency=4", "-p", "no:randomly", *args, timeout=60
    )
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(
        ["*TestTimeout: test_suite.py::test_hangs: timed out after 0.5 s (pytest-timeout)"]
    )


def test_pytest_timeout_func_only_counts_the_test_function_alone(suite):
    pytester = suite(
        with_bystanders(
            """
@pytest.fixture
async def slow_setup():
    await asyncio.sleep(0.5)


@pytest.mark.asyncio
@pytest.mark.timeout(0.3, func_only=True)
async def test_quick_after_a_slow_setup(slow_setup):
    await hold("quick", 0.1)


@pytest.mark.asyncio
@pytest.mark.timeout(0.3, func_only=True)
async def test_hangs():
    await asyncio.sleep(60)
"""
        )
    )
    result = pytester.runpytest_subprocess(
        "--asyncio-concurrency=5", "-p", "no:randomly", timeout=60
    )
    result.assert_outcomes(passed=5, failed=1)
    result.stdout.fnmatch_lines(["*test_hangs: timed out after 0.3 s (pytest-timeout)"])


def test_flaky_mark_reruns_a_concurrent_test_alone(suite):
    pytester = suite(
        with_bystanders(
            """
attempts = []


@pytest.mark.asyncio
@pytest.mark.flaky(reruns=2)
async def test_flaky():
    attempts.append(set(in_flight))
    await hold("flaky", 0.05)
    assert len(attempts) == 3


def test_every_attempt_ran_alone():
    assert attempts == [set(), set(), set()]
"""
        )
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly")
    assert result.parseoutcomes() == {"passed": 6, "rerun": 2}
    result.stdout.fnmatch_lines(["*1  reruns (pytest-rerunfailures)"])


def test_reruns_option_with_concurrency(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(3))
        async def test_passes(n):
            await asyncio.sleep(0.05)

        @pytest.mark.asyncio
        async def test_fails():
            await asyncio.sleep(0.05)
            assert False
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "--reruns=2")
    assert result.parseoutcomes() == {"passed": 3, "failed": 1, "rerun": 2}
    result.stdout.fnmatch_lines(["*4  reruns (pytest-rerunfailures)"])


def test_coverage_measures_concurrent_tests_with_greenlet_concurrency(suite):
    pytester = suite(
        {
            ".coveragerc": """
                [run]
                concurrency = greenlet, thread
            """,
            "conftest.py": """
                import asyncio, pytest

                @pytest.fixture(scope="module")
                async def connection():
                    await asyncio.sleep(0.05)
                    yield "connection"

                @pytest.fixture
                def account(request):
                    # other tests run while this waits for the module's connection
                    connection = request.getfixturevalue("connection")
                    name = f"account on {connection}"
                    return name
            """,
            "test_suite.py": """
                import asyncio, pytest

                @pytest.mark.asyncio(loop_scope="module")
                @pytest.mark.parametrize("n", range(4))
                async def test_account(n, account):
                    await asyncio.sleep(0.01)
                    done = account.startswith("account")
                    assert done
            """,
        }
    )
    result = pytester.runpytest_subprocess(
        "--asyncio-concurrency=4", "--cov=.", "--cov-report=term-missing", timeout=60
    )
    result.assert_outcomes(passed=4)
    result.stdout.re_match_lines(
        [r"conftest\.py\s+\d+\s+0\s+100%", r"test_suite\.py\s+\d+\s+0\s+100%"]
    )
