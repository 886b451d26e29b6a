"""The virtual clock: sleeps and timeouts take no real time, unless real work is pending."""

import sys

import pytest


def test_long_sleeps_and_timeouts_complete_at_once(suite):
    pytester = suite(
        """
        import asyncio, pytest

        pytestmark = pytest.mark.asyncio

        async def test_an_hour():
            loop = asyncio.get_running_loop()
            await asyncio.sleep(3600)
            assert loop.time() == 3600

        async def test_wait_for_times_out_at_its_deadline():
            loop = asyncio.get_running_loop()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.sleep(10), 5)
            assert loop.time() == pytest.approx(5)
        """
    )
    # In a subprocess with a timeout: a broken clock would otherwise wait an hour.
    result = pytester.runpytest_subprocess("--asyncio-clock=virtual", timeout=60)
    result.assert_outcomes(passed=2)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout came in 3.11")
def test_asyncio_timeout(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_timeout():
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(30):
                    await asyncio.sleep(60)
            assert asyncio.get_running_loop().time() == pytest.approx(30)
        """
    )
    pytester.runpytest("--asyncio-clock=virtual").assert_outcomes(passed=1)


def test_timers_fire_in_real_time_order(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_order():
            loop, fired = asyncio.get_running_loop(), []
            for delay in (3, 1, 2, 1.5):
                loop.call_later(delay, fired.append, delay)
            await asyncio.sleep(4)
            assert fired == [1, 1.5, 2, 3]
        """
    )
    pytester.runpytest("--asyncio-clock=virtual").assert_outcomes(passed=1)


def test_each_test_starts_at_zero_and_fixtures_share_the_clock(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def warmed_up():
            await asyncio.sleep(50)
            yield
            await asyncio.sleep(50)

        @pytest.mark.asyncio
        async def test_first(warmed_up):
            assert asyncio.get_running_loop().time() == 50

        @pytest.mark.asyncio
        async def test_second():
            assert asyncio.get_running_loop().time() == 0
        """
    )
    pytester.runpytest("--asyncio-clock=virtual", "-p", "no:randomly").assert_outcomes(passed=2)


def test_work_outside_the_loop_runs_at_real_speed(suite):
    pytester = suite(
        """
        import asyncio, subprocess, sys, threading, time, pytest

        pytestmark = pytest.mark.asyncio

        async def test_executor_job_inside_wait_for():
            await asyncio.wait_for(asyncio.to_thread(time.sleep, 0.2), 5)

        async def test_thread_started_by_the_test():
            loop = asyncio.get_running_loop()
            done = loop.create_future()

            def work():
                time.sleep(0.2)
                loop.call_soon_threadsafe(done.set_result, "done")

            threading.Thread(target=work).start()
            assert await asyncio.wait_for(done, 5) == "done"

        async def test_subprocess():
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import time; time.sleep(0.2)"
            )
            assert await asyncio.wait_for(proc.wait(), 5) == 0

        SERVER = '''
        import socket, time
        server = socket.create_server(("127.0.0.1", 0))
        print(server.getsockname()[1], flush=True)
        conn, _ = server.accept()
        conn.recv(100)
        time.sleep(0.3)
        conn.sendall(b"reply")
        time.sleep(30)
        '''

        async def test_request_to_a_server_outside_the_loop():
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER.replace("\\\\n        ", "\\\\n")],
                stdout=subprocess.PIPE, text=True,
            )
            try:
                port = int(server.stdout.readline())
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"request")
                assert await asyncio.wait_for(reader.read(5), 5) == b"reply"
                loop = asyncio.get_running_loop()
                before = loop.time()
                await asyncio.sleep(100)  # the idle keep-alive connection does not hold time
                assert loop.time() - before == pytest.approx(100, abs=1)
                writer.close()
            finally:
                server.kill()
                server.wait()
                server.stdout.close()
        """
    )
    result = pytester.runpytest_subprocess("--asyncio-clock=virtual", timeout=60)
    result.assert_outcomes(passed=4)


def test_waiting_for_what_can_never_happen_fails_at_once(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_waits_forever():
            await asyncio.Event().wait()

        @pytest.mark.asyncio
        async def test_next_runs():
            await asyncio.sleep(1)
        """
    )
    result = pytester.runpytest("--asyncio-clock=virtual")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*Deadlock: the test waits for something that can never happen*", "*test_suite.py:6*"]
    )


def test_clock_fixture_advances_time(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_advance(clock):
            fired = []
            asyncio.get_running_loop().call_later(10, fired.append, "due")
            assert clock.time == 0
            await clock.advance(9)
            assert fired == []
            await clock.advance(1)
            assert fired == ["due"] and clock.time == 10

        @pytest.mark.asyncio
        async def test_run_until_idle(clock):
            events = []

            async def worker():
                for n in range(3):
                    events.append(n)
                    await asyncio.sleep(0)

            asyncio.get_running_loop().create_task(worker())
            await clock.run_until_idle()
            assert events == [0, 1, 2] and clock.time == 0
        """
    )
    pytester.runpytest("--asyncio-clock=virtual").assert_outcomes(passed=2)


def test_clock_fixture_needs_the_virtual_clock(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_real(clock):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_real: the clock fixture needs the virtual clock*"])


def test_marker_selects_the_clock_per_test(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.aiotempo(clock="virtual")
        @pytest.mark.asyncio
        async def test_virtual():
            await asyncio.sleep(1000)
            assert asyncio.get_running_loop().time() == 1000

        @pytest.mark.asyncio
        async def test_real():
            loop = asyncio.get_running_loop()
            assert loop.time() > 1000 or loop.time() != 1000  # a real monotonic clock

        @pytest.mark.aiotempo(clock="sundial")
        @pytest.mark.asyncio
        async def test_bad():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_bad: @pytest.mark.aiotempo(clock='sundial') is not a clock*"]
    )


def test_invalid_clock_option_is_one_clear_line(suite):
    pytester = suite("def test_x():\n    pass\n")
    result = pytester.runpytest("--asyncio-clock=fast")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: asyncio_clock = 'fast' is not valid; use 'real' or*"])


def test_patch_time_makes_retry_loops_follow_the_clock(suite):
    pytester = suite(
        """
        import asyncio, time, pytest

        @pytest.mark.asyncio
        async def test_retry_for_one_second():
            start, attempts = time.monotonic(), 0
            while time.monotonic() - start < 1:  # what tenacity's stop_after_delay(1) does
                attempts += 1
                await asyncio.sleep(0.3)
            assert attempts == 4
            wall = time.time()
            await asyncio.sleep(60)
            assert time.time() - wall == pytest.approx(60, abs=0.5)

        def test_time_is_real_again():
            assert abs(time.time() - time.perf_counter() - (time.time() - time.perf_counter())) < 1
        """
    )
    pytester.runpytest(
        "--asyncio-clock=virtual", "--asyncio-patch-time", "-p", "no:randomly"
    ).assert_outcomes(passed=2)


def test_uvloop_gets_a_clear_error(suite):
    pytest.importorskip("uvloop")
    pytester = suite(
        {
            "conftest.py": """
                import uvloop

                def pytest_asyncio_loop_factories(config, item):
                    return {"uvloop": uvloop.new_event_loop}
            """,
            "test_a.py": """
                import pytest

                @pytest.mark.asyncio
                async def test_on_uvloop():
                    pass
            """,
        }
    )
    result = pytester.runpytest("--asyncio-clock=virtual")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*test_on_uvloop: the virtual clock needs asyncio's default selector loop, not Loop*"]
    )


def test_a_reply_arriving_in_parts_holds_the_clock_until_it_is_complete(suite):
    pytester = suite(
        """
        import asyncio, subprocess, sys, pytest

        PEER = '''
        import socket, time
        server = socket.create_server(("127.0.0.1", 0))
        print(server.getsockname()[1], flush=True)
        conn, _ = server.accept()
        conn.recv(100)
        conn.sendall(b"head")
        time.sleep(0.1)
        conn.sendall(b"body")
        time.sleep(30)
        '''

        @pytest.mark.asyncio
        async def test_reply_in_two_parts():
            source = PEER.replace("\\\\n        ", "\\\\n")
            command = [sys.executable, "-c", source]
            peer = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            try:
                port = int(peer.stdout.readline())
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"request")
                assert await reader.readexactly(4) == b"head"
                assert await asyncio.wait_for(reader.readexactly(4), 5) == b"body"
                writer.close()
            finally:
                peer.kill()
                peer.wait()
                peer.stdout.close()
        """
    )
    result = pytester.runpytest_subprocess("--asyncio-clock=virtual", timeout=60)
    result.assert_outcomes(passed=1)


def test_patched_time_leaves_pytests_own_timing_real(suite):
    pytester = suite(
        """
        import asyncio, time, pytest

        @pytest.mark.asyncio
        async def test_sleeps_an_hour():
            start = time.time()
            await asyncio.sleep(3600)
            assert time.time() - start == pytest.approx(3600, abs=1)
        """
    )
    result = pytester.runpytest_subprocess(
        "--asyncio-clock=virtual",
        "--asyncio-patch-time",
        "--junitxml=out.xml",
        "--durations=1",
        "--durations-min=0",
        timeout=60,
    )
    result.assert_outcomes(passed=1)
    import xml.etree.ElementTree as ET

    case = next(ET.parse(pytester.path / "out.xml").getroot().iter("testcase"))
    assert float(case.get("time")) < 60  # real seconds, not the virtual hour
    result.stdout.no_fnmatch_line("*36[0-9][0-9].*s call*")
