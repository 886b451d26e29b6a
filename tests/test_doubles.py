"""aiotempo.doubles: loopback HTTP and TCP servers with injectable faults, and an in-memory
aiosqlite database; per test and shared, under concurrency and the virtual clock."""

import textwrap

import pytest

#: Every double is checked for leaks: a clean shutdown is part of the contract.
DOUBLES = ("--asyncio-leaks=error",)
#: The virtual clock, alone and with concurrency, under a real-time limit that a wait in real
#: time (a virtual minute taking a real one) would exceed.
VIRTUAL = ("--asyncio-clock=virtual", "--asyncio-timeout=20")
CONCURRENT = (*VIRTUAL, "--asyncio-concurrency=8")
FAST = pytest.mark.parametrize("options", [VIRTUAL, CONCURRENT], ids=["virtual", "concurrent"])

AUTO = "asyncio_mode = auto"

HEADER = """
    import asyncio

    import aiohttp
    import pytest
    from aiohttp import web


    async def fetch(url, method="GET", **kwargs):
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, **kwargs) as response:
                return response.status, await response.read()
"""


def code(*parts: str) -> str:
    return "".join(textwrap.dedent(part) for part in parts)


def write(suite, source: str, header: str = "") -> pytest.Pytester:
    return suite(code(HEADER, header, source), AUTO)


def run(suite, source: str, *args: str, header: str = "") -> pytest.RunResult:
    return write(suite, source, header).runpytest(*DOUBLES, *args)


# -- HTTP: routes -------------------------------------------------------------------------------


def test_http_routes_answer_canned_replies_and_handlers(suite):
    result = run(
        suite,
        """
        async def test_routes(http_server):
            server = await http_server()
            assert server.url.startswith("http://127.0.0.1:")
            server.route("GET", "/items", json=[{"id": 1}])
            server.route("GET", "/health", text="ok", headers={"X-Served-By": "double"})
            server.route("GET", "/blob", body=b"\\x00\\x01", status=206)

            async def create(request):
                return web.json_response(await request.json(), status=201)

            server.route("POST", "/items", create)
            server.route("GET", "/items/{id}", lambda request: {"id": request.match_info["id"]})
            server.route("*", "/any", lambda request: request.method)
            server.route("DELETE", "/items/{id}", lambda request: None)

            assert await fetch(server.url + "/items") == (200, b'[{"id": 1}]')
            assert await fetch(server.url + "/health") == (200, b"ok")
            assert await fetch(server.url + "/blob") == (206, b"\\x00\\x01")
            assert await fetch(server.url + "/items", "POST", json={"a": 1}) == (201, b'{"a": 1}')
            assert await fetch(server.url + "/items/7") == (200, b'{"id": "7"}')
            assert await fetch(server.url + "/any", "PUT") == (200, b"PUT")
            assert await fetch(server.url + "/items/7", "DELETE") == (204, b"")
            status, body = await fetch(server.url + "/missing")
            assert status == 404 and b"no route for GET /missing" in body

            assert [(r.method, r.path) for r in server.requests][:4] == [
                ("GET", "/items"), ("GET", "/health"), ("GET", "/blob"), ("POST", "/items"),
            ]
            assert server.requests[3].json() == {"a": 1}
        """,
    )
    result.assert_outcomes(passed=1)


def test_http_newest_route_answers_and_routes_can_be_removed(suite):
    result = run(
        suite,
        """
        async def test_override(http_server):
            server = await http_server()
            server.route("GET", "/v", text="first")
            with server.route("GET", "/v", text="second") as second:
                assert await fetch(server.url + "/v") == (200, b"second")
            assert second.hits == 1
            assert await fetch(server.url + "/v") == (200, b"first")
            assert server.routes[0].hits == 1
        """,
    )
    result.assert_outcomes(passed=1)


def test_http_serves_a_given_application_with_faults(suite):
    result = run(
        suite,
        """
        async def test_app(make_http_server):
            async def hello(request):
                return web.Response(text="hi")

            app = web.Application()
            app.router.add_get("/hello", hello)
            async with make_http_server(app) as server:
                server.fault(path="/hello", status=503, times=1)
                assert await fetch(server.url + "/hello") == (503, b"503 (injected)")
                assert await fetch(server.url + "/hello") == (200, b"hi")
                with pytest.raises(TypeError, match="add routes to it"):
                    server.route("GET", "/other", text="no")
        """,
    )
    result.assert_outcomes(passed=1)


# -- HTTP: faults -------------------------------------------------------------------------------


def test_http_status_faults_fail_the_first_requests_then_let_them_through(suite):
    result = run(
        suite,
        """
        async def test_flaky(http_server):
            server = await http_server()
            server.route("GET", "/items", json=[])
            flaky = server.fault(
                "GET", "/items", status=503, headers={"Retry-After": "1"}, times=2
            )
            other = server.fault("POST", "/items", status=500)
            statuses = []
            async with aiohttp.ClientSession() as session:
                for _ in range(3):
                    async with session.get(server.url + "/items") as response:
                        statuses.append((response.status, response.headers.get("Retry-After")))
            assert statuses == [(503, "1"), (503, "1"), (200, None)]
            assert (flaky.hits, flaky.active, other.hits) == (2, False, 0)
        """,
    )
    result.assert_outcomes(passed=1)


def test_http_dropped_connections_and_cut_bodies_reach_the_client(suite):
    result = run(
        suite,
        """
        async def test_drops(http_server, caplog):
            server = await http_server()
            server.route("GET", "/items", json=list(range(100)))
            with server.fault(drop=True):
                with pytest.raises(aiohttp.ServerDisconnectedError):
                    await fetch(server.url + "/items")
            with server.fault(drop_after=10):
                with pytest.raises(aiohttp.ClientPayloadError):
                    await fetch(server.url + "/items")
            assert await fetch(server.url + "/items") == (200, str(list(range(100))).encode())
            assert not [r for r in caplog.records if r.levelname == "ERROR"]  # quiet drops
        """,
    )
    result.assert_outcomes(passed=1)


@FAST
def test_http_latency_and_trickle_follow_the_loop_clock(suite, options):
    result = run(
        suite,
        """
        async def test_slow(http_server):
            loop = asyncio.get_running_loop()
            server = await http_server()
            server.route("GET", "/report", text="x" * 40)
            server.fault(latency=30, trickle=2, chunk_size=10, times=1)
            start = loop.time()
            assert await fetch(server.url + "/report") == (200, b"x" * 40)
            assert loop.time() - start == pytest.approx(30 + 4 * 2, abs=0.5)

            server.fault(latency=10)
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                with pytest.raises(asyncio.TimeoutError):
                    await session.get(server.url + "/report")
        """,
        *options,
    )
    result.assert_outcomes(passed=1)


def test_http_raised_fault_is_answered_500(suite):
    result = run(
        suite,
        """
        async def test_raises(http_server):
            server = await http_server()
            server.route("GET", "/", text="fine")
            server.fault(raises=RuntimeError("database is down"), times=1)
            status, _ = await fetch(server.url + "/")
            assert status == 500
            assert await fetch(server.url + "/") == (200, b"fine")
            assert server.errors == []  # injected: not a handler bug
        """,
    )
    result.assert_outcomes(passed=1)


def test_http_fault_arguments_are_checked(suite):
    result = run(
        suite,
        """
        async def test_bad_faults(http_server):
            server = await http_server()
            with pytest.raises(ValueError, match="latency cannot be negative"):
                server.fault(latency=-1)
            with pytest.raises(ValueError, match="status must be an HTTP status code"):
                server.fault(status=42)
            with pytest.raises(ValueError, match="choose one of status, drop"):
                server.fault(status=503, drop=True)
            with pytest.raises(ValueError, match="times must be a whole number of at least 1"):
                server.fault(times=0)
            with pytest.raises(ValueError, match="a path starts with '/'"):
                server.route("GET", "items", text="")
            with pytest.raises(TypeError, match="not both"):
                server.route("GET", "/", lambda request: "", text="")
            assert server.faults == []
        """,
    )
    result.assert_outcomes(passed=1)


def test_http_handler_bug_answers_500_and_fails_the_test_at_teardown(suite):
    result = run(
        suite,
        """
        async def test_bug(http_server):
            server = await http_server()
            server.route("GET", "/", lambda request: 1 / 0)
            status, body = await fetch(server.url + "/")
            assert status == 500 and b"ZeroDivisionError" in body

        async def test_bug_allowed(http_server):
            server = await http_server(check_errors=False)
            server.route("GET", "/", lambda request: 1 / 0)
            assert (await fetch(server.url + "/"))[0] == 500
            assert isinstance(server.errors[0], ZeroDivisionError)
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ZeroDivisionError: division by zero",
            "*The above exception was the direct cause*",
            "*HandlerError: <HttpServer http://127.0.0.1:*>: its handler raised an error*",
        ]
    )


def test_http_server_closes_with_a_request_in_flight(suite):
    result = run(
        suite,
        """
        import gc

        async def test_abandoned_request(http_server):
            server = await http_server()
            server.route("GET", "/", text="late")
            server.fault(latency=3600)
            request = asyncio.ensure_future(fetch(server.url + "/"))
            await asyncio.sleep(0.05)
            request.cancel()

        async def test_nothing_left():
            gc.collect()
            assert asyncio.all_tasks() == {asyncio.current_task()}
        """,
        "-p",
        "no:randomly",
    )
    result.assert_outcomes(passed=2)


# -- HTTP: scopes, concurrency, clock -------------------------------------------------------------


@FAST
def test_http_per_test_servers_under_concurrency_and_the_virtual_clock(suite, options):
    result = run(
        suite,
        """
        ports = set()

        @pytest.mark.parametrize("n", range(8))
        async def test_own_server(http_server, n):
            server = await http_server()
            server.route("GET", "/n", text=str(n))
            server.fault(latency=60)
            ports.add(server.port)
            loop = asyncio.get_running_loop()
            start = loop.time()
            assert await fetch(server.url + "/n") == (200, str(n).encode())
            assert loop.time() - start == pytest.approx(60, abs=0.5)

        def test_each_had_its_own():
            assert len(ports) == 8
        """,
        *options,
    )
    result.assert_outcomes(passed=9)


@FAST
def test_http_shared_server_from_a_module_fixture(suite, options):
    result = run(
        suite,
        """
        @pytest.fixture(scope="module")
        async def api(make_http_server):
            async with make_http_server() as server:
                server.route("GET", "/health", text="ok")
                yield server

        @pytest.mark.parametrize("n", range(4))
        @pytest.mark.asyncio(loop_scope="module")
        async def test_shared(api, n):
            assert await fetch(api.url + "/health") == (200, b"ok")

        def test_all_requests_reached_one_server(api):
            assert len(api.requests) == 4
        """,
        *options,
    )
    result.assert_outcomes(passed=5)


def test_http_double_says_when_aiohttp_is_missing(suite):
    result = run(
        suite,
        """
        import sys

        from aiotempo.doubles import HttpServer

        def test_missing(monkeypatch):
            monkeypatch.setitem(sys.modules, "aiohttp", None)
            with pytest.raises(ImportError, match="needs aiohttp.*pip install aiohttp"):
                HttpServer()
        """,
    )
    result.assert_outcomes(passed=1)


# -- TCP ------------------------------------------------------------------------------------------

TCP_HEADER = """
    async def upper(reader, writer):
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()


    class Upper(asyncio.Protocol):  # upper() as a protocol
        def connection_made(self, transport):
            self.transport, self.received = transport, b""

        def data_received(self, data):
            self.received += data
            if b"\\n" in self.received:
                self.transport.write(self.received.upper())
                self.transport.close()


    async def ask(address, line=b"ping\\n"):
        reader, writer = await asyncio.open_connection(*address)
        writer.write(line)
        try:
            return await reader.read()
        except ConnectionResetError:
            return "reset"
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
"""


def test_tcp_server_calls_the_handler_and_closes_the_connection_after_it(suite):
    result = run(
        suite,
        """
        async def test_upper(tcp_server):
            server = await tcp_server(upper)
            assert server.address == ("127.0.0.1", server.port)
            assert await ask(server.address) == b"PING\\n"  # then EOF: the handler returned
            assert await ask(server.address, b"pong\\n") == b"PONG\\n"
            assert server.connections == 2
        """,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=1)


@FAST
@pytest.mark.parametrize("serves", ["upper", "protocol=Upper"])
def test_tcp_faults_drop_cut_and_trickle(suite, options, serves):
    result = run(
        suite,
        f"""
        async def test_faults(tcp_server):
            loop = asyncio.get_running_loop()
            server = await tcp_server({serves})
            server.fault(drop=True, times=1)
            assert await ask(server.address) in (b"", "reset")
            with server.fault(drop_after=2) as cut:
                assert await ask(server.address) == b"PI"
            assert cut.hits == 1
            server.fault(latency=5, trickle=1, chunk_size=2, times=1)
            start = loop.time()
            assert await ask(server.address) == b"PING\\n"
            assert loop.time() - start == pytest.approx(5 + 3 * 1, abs=0.5)
            assert await ask(server.address) == b"PING\\n"
            assert server.connections == 4
        """,
        *options,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=1)


def test_tcp_trickled_writes_keep_their_order_and_end_of_file(suite):
    result = run(
        suite,
        """
        async def test_half_close(tcp_server):
            async def report(reader, writer):
                writer.writelines([b"one ", b"two ", b"three"])
                writer.write_eof()  # after the trickled bytes, not before them
                assert await reader.read() == b"thanks"
            server = await tcp_server(report)
            server.fault(trickle=0.5, chunk_size=3)
            reader, writer = await asyncio.open_connection(*server.address)
            assert await reader.read() == b"one two three"
            writer.write(b"thanks")
            writer.close()
            await writer.wait_closed()
        """,
        *VIRTUAL,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=1)


def test_tcp_protocol_gets_every_event_and_its_connections_close_with_the_server(suite):
    result = run(
        suite,
        """
        import contextlib

        events = []

        class Recorder(asyncio.Protocol):
            def connection_made(self, transport):
                self.transport = transport
                events.append("made")

            def data_received(self, data):
                events.append(data)

            def eof_received(self):
                events.append("eof")
                self.transport.write(b"bye")
                return True  # keeps the connection open: the server closes it

            def connection_lost(self, exc):
                events.append("lost")

        async def end_of(reader):
            try:
                return await reader.read()
            except ConnectionResetError:  # aborted
                return b""

        async def test_events(make_tcp_server):
            async with make_tcp_server(protocol=Recorder) as server:
                reader, writer = await asyncio.open_connection(*server.address)
                writer.write(b"hello")
                writer.write_eof()
                assert await reader.readexactly(3) == b"bye"
                server.fault(latency=5, times=1)
                start = asyncio.get_running_loop().time()
                slow_reader, slow_writer = await asyncio.open_connection(*server.address)
                slow_writer.write(b"early")  # kept until the protocol has the connection
                slow_writer.write_eof()
                assert await slow_reader.readexactly(3) == b"bye"
                assert asyncio.get_running_loop().time() - start >= 5
                server.fault(latency=60)
                late_reader, late_writer = await asyncio.open_connection(*server.address)
                await asyncio.sleep(1)
                assert server.connections == 3
                assert events == ["made", b"hello", "eof", "made", b"early", "eof"]
            # Closed with the server; the late one never reached a protocol.
            assert events == ["made", b"hello", "eof", "made", b"early", "eof", "lost", "lost"]
            for each in (reader, slow_reader, late_reader):
                assert await end_of(each) == b""
            assert asyncio.all_tasks() == {asyncio.current_task()}
            for closing in (writer, slow_writer, late_writer):
                closing.close()
                with contextlib.suppress(ConnectionError):
                    await closing.wait_closed()
        """,
        *VIRTUAL,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=1)


def test_tcp_protocol_bug_fails_the_test_at_teardown(suite):
    result = run(
        suite,
        """
        class Broken(asyncio.Protocol):
            def data_received(self, data):
                raise ValueError(f"bad frame {data!r}")

        async def test_bug(tcp_server):
            server = await tcp_server(protocol=Broken)
            assert await ask(server.address) in (b"", "reset")  # the connection is aborted
            assert [str(error) for error in server.errors] == ["bad frame b'ping\\\\n'"]

        async def test_factory_bug(tcp_server):
            def factory():
                raise LookupError("no protocol")
            server = await tcp_server(protocol=factory, check_errors=False)
            assert await ask(server.address) in (b"", "reset")
            assert [type(error) for error in server.errors] == [LookupError]
        """,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ValueError: bad frame b'ping\\n'",
            "*HandlerError: <TcpServer 127.0.0.1:*>: its handler*",
        ]
    )


def test_tcp_arguments_are_checked(suite):
    result = run(
        suite,
        """
        from aiotempo.doubles import TcpServer

        async def test_bad_arguments(tcp_server):
            with pytest.raises(TypeError, match="pass one of them"):
                TcpServer()
            with pytest.raises(TypeError, match="pass one of them"):
                TcpServer(upper, protocol=Upper)
            server = await tcp_server(upper)
            with pytest.raises(TypeError, match="a TcpServer fault takes no status, method"):
                server.fault("GET", status=503)
            with pytest.raises(TypeError, match="a TcpServer fault takes no raises"):
                server.fault(raises=OSError)
            with pytest.raises(ValueError, match="latency cannot be negative"):
                server.fault(latency=-1)
            assert server.faults == []
        """,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=1)


def test_tcp_handler_bug_fails_the_test_at_teardown_but_a_client_leaving_does_not(suite):
    result = run(
        suite,
        """
        async def test_bug(tcp_server):
            async def broken(reader, writer):
                raise ValueError("bad frame")
            server = await tcp_server(broken)
            assert await ask(server.address) in (b"", "reset")

        async def test_client_leaves(tcp_server):
            async def chatty(reader, writer):
                for _ in range(1000):
                    writer.write(b"x" * 1000)
                    await writer.drain()
            server = await tcp_server(chatty)
            reader, writer = await asyncio.open_connection(*server.address)
            await reader.readexactly(10)
            writer.transport.abort()
            await asyncio.sleep(0.05)
        """,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ValueError: bad frame", "*HandlerError: <TcpServer 127.0.0.1:*>: its handler raised*"]
    )


def test_tcp_pending_handlers_are_cancelled_at_close(suite):
    result = run(
        suite,
        """
        cancelled = []

        async def test_hanging_handler(tcp_server):
            async def forever(reader, writer):
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cancelled.append(True)
                    raise
            server = await tcp_server(forever)
            reader, writer = await asyncio.open_connection(*server.address)
            await asyncio.sleep(0.01)
            writer.close()

        async def test_nothing_left():
            assert cancelled == [True]
            assert asyncio.all_tasks() == {asyncio.current_task()}
        """,
        "-p",
        "no:randomly",
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=2)


@FAST
def test_tcp_shared_server_under_concurrency(suite, options):
    result = run(
        suite,
        """
        @pytest.fixture(scope="module")
        async def service(make_tcp_server):
            async with make_tcp_server(upper) as server:
                yield server

        @pytest.mark.parametrize("n", range(8))
        @pytest.mark.asyncio(loop_scope="module")
        async def test_shared(service, n):
            line = f"client {n}\\n".encode()
            assert await ask(service.address, line) == line.upper()
        """,
        *options,
        header=TCP_HEADER,
    )
    result.assert_outcomes(passed=8)


# -- SQLite ---------------------------------------------------------------------------------------

SQLITE_HEADER = """
    import asyncio
    import threading

    import aiosqlite
    import pytest

    SCHEMA = '''
        CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
        INSERT INTO users (email) VALUES ('ada@example.com'), ('grace@example.com');
    '''


    def sqlite_threads():
        return [t for t in threading.enumerate() if "connection_worker" in t.name]
"""


def test_sqlite_db_has_its_schema_and_is_private_to_the_test(suite):
    pytester = write(
        suite,
        """
        @pytest.mark.parametrize("n", range(4))
        async def test_private(sqlite_db, n):
            db = await sqlite_db(SCHEMA)
            await db.execute("INSERT INTO users (email) VALUES (?)", (f"user{n}@example.com",))
            await db.commit()
            async with db.execute("SELECT COUNT(*) FROM users") as cursor:
                assert await cursor.fetchone() == (3,)
            with pytest.raises(aiosqlite.IntegrityError, match="UNIQUE"):
                await db.execute("INSERT INTO users (email) VALUES ('ada@example.com')")

        async def test_empty_without_schema(sqlite_db):
            db = await sqlite_db()
            async with db.execute("SELECT name FROM sqlite_master") as cursor:
                assert await cursor.fetchall() == []

        def test_no_thread_left():
            assert sqlite_threads() == []
        """,
        header=SQLITE_HEADER,
    )
    pytester.runpytest(*DOUBLES, "-p", "no:randomly").assert_outcomes(passed=6)
    pytester.runpytest(*DOUBLES, "-p", "no:randomly", *CONCURRENT).assert_outcomes(passed=6)


@FAST
def test_sqlite_queries_hold_the_virtual_clock_while_they_run(suite, options):
    # A query takes real time in aiosqlite's thread: the clock must wait for it rather than jump
    # to the wait_for timeout (which would fail the query) or report a deadlock.
    result = run(
        suite,
        """
        HEAVY = '''
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300000)
            SELECT SUM(i) FROM n
        '''

        async def test_slow_query(sqlite_db):
            db = await sqlite_db(SCHEMA)
            await asyncio.sleep(60)  # virtual: the connection's idle thread does not hold it
            rows = await asyncio.wait_for(db.execute_fetchall(HEAVY), timeout=5)
            assert rows == [(300000 * 300001 // 2,)]
            assert asyncio.get_running_loop().time() < 65
        """,
        *options,
        header=SQLITE_HEADER,
    )
    result.assert_outcomes(passed=1)


def test_sqlite_shared_database_from_a_module_fixture(suite):
    shared = """
        @pytest.fixture(scope="module")
        async def db(make_sqlite_db):
            async with make_sqlite_db(SCHEMA) as connection:
                yield connection

        @pytest.mark.asyncio(loop_scope="module")
        async def test_writes(db):
            await db.execute("INSERT INTO users (email) VALUES ('alan@example.com')")
            await db.commit()

        @pytest.mark.asyncio(loop_scope="module")
        async def test_sees_the_write(db):
            assert await db.execute_fetchall("SELECT COUNT(*) FROM users") == [(3,)]
    """
    after = """
        def test_closed_with_its_module():
            assert sqlite_threads() == []
    """
    files = {"test_a.py": code(SQLITE_HEADER, shared), "test_b.py": code(SQLITE_HEADER, after)}
    pytester = suite(files, AUTO)
    pytester.runpytest(*DOUBLES, "-p", "no:randomly").assert_outcomes(passed=3)
