"""The virtual clock under real libraries: HTTP clients and servers, and retry loops.

Every suite runs in a subprocess with a timeout: a clock that waits in real time, or never
wakes up, must fail the test rather than hang the run.
"""

import pytest

#: An aiohttp server on the test's own loop, whose handler sleeps ``?sleep=`` seconds.
AIOHTTP_SERVER = """
    import asyncio

    import pytest_asyncio
    from aiohttp import web


    async def sleepy(request):
        seconds = float(request.query["sleep"])
        await asyncio.sleep(seconds)
        return web.Response(text=f"slept {seconds:g}")


    @pytest_asyncio.fixture
    async def url():
        app = web.Application()
        app.router.add_get("/", sleepy)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
        await runner.cleanup()
"""


def test_aiohttp_client_and_server_in_the_loop(suite):
    pytester = suite(
        {
            "conftest.py": AIOHTTP_SERVER,
            "test_aiohttp.py": """
                import asyncio, time

                import aiohttp, pytest

                pytestmark = pytest.mark.asyncio
                TIMEOUT = aiohttp.ClientTimeout(total=5)

                async def test_reply_within_the_timeout(url):
                    loop, wall = asyncio.get_running_loop(), time.perf_counter()
                    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                        async with session.get(url, params={"sleep": 2}) as response:
                            assert await response.text() == "slept 2"
                    assert loop.time() == pytest.approx(2)
                    assert time.perf_counter() - wall < 1  # virtual seconds, not real ones

                async def test_reply_after_the_timeout(url):
                    loop, wall = asyncio.get_running_loop(), time.perf_counter()
                    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                        with pytest.raises(asyncio.TimeoutError):
                            async with session.get(url, params={"sleep": 10}) as response:
                                await response.text()
                    assert loop.time() == pytest.approx(5)
                    assert time.perf_counter() - wall < 2.5
            """,
        }
    )
    result = pytester.runpytest_subprocess("--asyncio-clock=virtual", timeout=60)
    result.assert_outcomes(passed=2)


def test_httpx_client_against_a_server_in_the_loop(suite):
    pytest.importorskip("httpx")
    pytester = suite(
        {
            "conftest.py": AIOHTTP_SERVER,
            "test_httpx.py": """
                import asyncio, time

                import httpx, pytest

                pytestmark = pytest.mark.asyncio

                async def test_reply_within_the_timeout(url):
                    loop = asyncio.get_running_loop()
                    async with httpx.AsyncClient(timeout=5) as client:
                        wall = time.perf_counter()
                        response = await client.get(url, params={"sleep": 2})
                    assert response.text == "slept 2"
                    assert loop.time() == pytest.approx(2)
                    assert time.perf_counter() - wall < 1  # virtual seconds, not real ones

                async def test_reply_after_the_timeout(url):
                    loop = asyncio.get_running_loop()
                    async with httpx.AsyncClient(timeout=5) as client:
                        wall = time.perf_counter()
                        with pytest.raises(httpx.ReadTimeout):
                            await client.get(url, params={"sleep": 10})
                    assert loop.time() == pytest.approx(5)
                    assert time.perf_counter() - wall < 2.5
            """,
        }
    )
    result = pytester.runpytest_subprocess("--asyncio-clock=virtual", timeout=60)
    result.assert_outcomes(passed=2)


def test_tenacity_stop_after_delay_with_patched_time(suite):
    pytest.importorskip("tenacity")
    pytester = suite(
        """
        import asyncio

        import pytest
        from tenacity import retry, stop_after_delay, wait_fixed

        @pytest.mark.asyncio
        async def test_retries_for_one_virtual_second():
            loop, attempts = asyncio.get_running_loop(), []

            @retry(stop=stop_after_delay(1), wait=wait_fixed(0.3), reraise=True)
            async def connect():
                attempts.append(loop.time())
                raise ConnectionError("still down")

            with pytest.raises(ConnectionError):
                await connect()
            # stop_after_delay reads time.monotonic(), which follows the virtual clock
            assert 3 <= len(attempts) <= 5
            assert attempts == pytest.approx([0.3 * n for n in range(len(attempts))])
        """
    )
    result = pytester.runpytest_subprocess(
        "--asyncio-clock=virtual", "--asyncio-patch-time", timeout=60
    )
    result.assert_outcomes(passed=1)


def test_request_to_a_server_thread_started_before_the_test(suite):
    pytester = suite(
        """
        import asyncio, http.server, threading, time

        import aiohttp, pytest

        class SlowHandler(http.server.BaseHTTPRequestHandler):
            # Buffered: the reply goes out in one write, so that the test does not depend on
            # how the clock treats a reply from outside the loop that arrives in parts.
            wbufsize = 65536

            def do_GET(self):
                time.sleep(0.3)
                body = b"slow hello"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        @pytest.fixture(scope="session")
        def server_url():
            server = http.server.HTTPServer(("127.0.0.1", 0), SlowHandler)
            thread = threading.Thread(target=server.serve_forever, name="http-server")
            thread.start()
            yield f"http://127.0.0.1:{server.server_address[1]}/"
            server.shutdown()
            thread.join()
            server.server_close()

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", [1, 2])
        async def test_request(server_url, n):
            loop = asyncio.get_running_loop()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.get(server_url) as response:
                    assert await response.text() == "slow hello"
            # the clock followed real time while the thread worked (about 0.3 s: it counts
            # the real time it spent waiting), instead of jumping to the 5 s timeout
            assert 0.2 < loop.time() < 1
            # and the server thread, idle again, does not hold the clock back
            before, wall = loop.time(), time.perf_counter()
            await asyncio.sleep(10)
            assert loop.time() - before == pytest.approx(10)
            assert time.perf_counter() - wall < 2
        """
    )
    result = pytester.runpytest_subprocess("--asyncio-clock=virtual", timeout=60)
    result.assert_outcomes(passed=2)
