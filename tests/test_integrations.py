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
