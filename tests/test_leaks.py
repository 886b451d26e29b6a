"""--asyncio-leaks: what a test leaves behind is reported against it, with where it comes from."""

import gc
import warnings

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
    # The next test's check starts from where test_descriptor's ended: not blamed again.
    result.stdout.no_fnmatch_line("*test_unretrieved: file descriptor*")


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


GARBAGE = """
import asyncio, gc, socket, pytest

async def fetch():
    return 1

class Holder:
    def __init__(self, resource):
        self.resource = resource
        self.me = self  # a reference cycle: only the garbage collector frees it

@pytest.mark.asyncio
async def test_forgets_to_await():
    fetch()

@pytest.mark.asyncio
async def test_coroutine_in_a_cycle():
    Holder(fetch())

@pytest.mark.asyncio
async def test_unclosed_socket_in_a_cycle():
    Holder(socket.socket())

served = []

@pytest.mark.asyncio
async def test_unclosed_transport_in_a_cycle():
    loop = asyncio.get_running_loop()
    server = await asyncio.start_server(lambda r, w: served.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
    Holder(transport)
    await asyncio.sleep(0.01)
    server.close()

@pytest.mark.asyncio
async def test_clean():
    await fetch()
"""


@pytest.fixture
def quiet_leftovers():
    """Free what in-process runs leave (pytester keeps their modules until its teardown, which
    runs before this one's), quietly: not in whichever test of this suite collects next."""
    yield
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gc.collect()


def test_garbage_that_warns_is_reported_against_the_test_that_made_it(quiet_leftovers, suite):
    pytester = suite(GARBAGE)
    result = pytester.runpytest("-p", "no:randomly")
    # filterwarnings = error: none of it went through Python's warnings
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines(
        [
            "leaks: test_suite.py::test_forgets_to_await: coroutine fetch was never awaited, "
            "created at test_suite.py:14 in test_forgets_to_await",
            "leaks: test_suite.py::test_coroutine_in_a_cycle: coroutine fetch was never awaited, "
            "created at test_suite.py:18 in test_coroutine_in_a_cycle",
            "leaks: test_suite.py::test_unclosed_socket_in_a_cycle: unclosed <socket.socket *>",
            # its loop still held it: the loop is closed instead of reused, and a full
            # collection then frees it
            "leaks: test_suite.py::test_unclosed_transport_in_a_cycle: unclosed transport <*> "
            "(freed by a garbage "
            "collection of older objects during or after this test: left by it or by an earlier "
            "one)",
        ]
    )
    result.stdout.no_fnmatch_line("*test_clean: coroutine*")
    result = pytester.runpytest("-p", "no:randomly", "--asyncio-leaks=error")
    result.assert_outcomes(passed=5, errors=3)  # a full collection's findings only warn
    result = pytester.runpytest("-p", "no:randomly", "--asyncio-leaks=off", "-k", "await")
    result.assert_outcomes(failed=1, deselected=4)  # Python's warning, an error here


def test_a_full_collection_finds_what_outlived_its_test(suite):
    pytester = suite(
        """
        import socket, pytest

        class Holder:
            def __init__(self, resource):
                self.resource = resource
                self.me = self

        kept = []

        @pytest.mark.asyncio
        async def test_keeps_a_socket():
            kept.append(Holder(socket.socket()))

        @pytest.mark.asyncio
        async def test_drops_it():
            kept.clear()  # garbage now, in an older generation than this test's check collects
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--asyncio-leaks=error")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "leaks: test_suite.py::test_keeps_a_socket: file descriptor * still open (socket:*)",
            "leaks: test_suite.py::test_drops_it: unclosed <socket.socket *> (freed by a "
            "garbage collection of older objects during or after this test: left by it or by an "
            "earlier one)",
        ]
    )


def test_under_concurrency_each_test_is_checked_for_what_it_created(suite):
    pytester = suite(
        """
        import asyncio, pytest

        async def forever():
            await asyncio.sleep(3600)

        async def boom():
            raise ValueError("lost")

        @pytest.mark.asyncio
        async def test_leaks_a_task():
            asyncio.get_running_loop().create_task(forever(), name="left")
            await asyncio.sleep(0.05)

        @pytest.mark.asyncio
        async def test_leaks_a_timer():
            asyncio.get_running_loop().call_later(60, print, "late")
            await asyncio.sleep(0.1)

        @pytest.mark.asyncio
        async def test_loses_an_exception():
            task = asyncio.get_running_loop().create_task(boom(), name="boom")
            await asyncio.sleep(0.1)
            del task

        @pytest.mark.asyncio
        async def test_still_running_beside():
            task = asyncio.create_task(forever(), name="mine")  # pending as the others end
            handle = asyncio.get_running_loop().call_later(60, print, "mine")
            await asyncio.sleep(0.3)
            task.cancel()
            handle.cancel()
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=4", "-p", "no:randomly")
    result.assert_outcomes(passed=4)
    lines = [line for line in result.outlines if line.startswith("leaks: ")]
    assert sorted(lines) == [
        "leaks: test_suite.py::test_leaks_a_task: task 'left' (forever) still pending, "
        "suspended at test_suite.py:5",
        "leaks: test_suite.py::test_leaks_a_timer: timer <built-in function print> still scheduled",
        "leaks: test_suite.py::test_loses_an_exception: exception never retrieved from "
        "'boom' (boom): ValueError('lost')",
    ]


def test_on_a_module_scoped_loop_a_test_leaks_what_it_created_not_its_fixtures(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        async def forever():
            await asyncio.sleep(3600)

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def server():
            task = asyncio.get_running_loop().create_task(forever(), name="server")
            asyncio.get_running_loop().call_later(60, print, "keepalive")
            yield
            task.cancel()

        @pytest.mark.asyncio(loop_scope="module")
        async def test_uses_the_server(server):
            asyncio.get_running_loop().create_task(forever(), name="stray")

        @pytest.mark.asyncio(loop_scope="module")
        async def test_clean(server):
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--asyncio-leaks=error")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_suite.py::test_uses_the_server left behind (--asyncio-leaks=error):",
            "  task 'stray' (forever) still pending, suspended at test_suite.py:5",
        ]
    )
    result.stdout.no_fnmatch_line("*server' (forever)*")
    result.stdout.no_fnmatch_line("*keepalive*")
    result.stdout.no_fnmatch_line("*test_clean left behind*")


def test_on_a_shared_loop_tasks_made_by_the_tests_own_task_factory_are_checked(suite):
    pytester = suite(
        """
        import asyncio, pytest

        async def forever():
            await asyncio.sleep(3600)

        def factory(loop, coro, **kwargs):
            return asyncio.Task(coro, loop=loop, **kwargs)

        @pytest.mark.asyncio(loop_scope="module")
        async def test_sets_a_factory_and_leaks():
            loop = asyncio.get_running_loop()
            loop.set_task_factory(factory)
            assert loop.get_task_factory() is factory  # its own, not aiotempo's wrapper
            loop.create_task(forever(), name="stray")

        @pytest.mark.asyncio(loop_scope="module")
        async def test_resets_it():
            loop = asyncio.get_running_loop()
            assert loop.get_task_factory() is factory
            loop.set_task_factory(None)
            assert loop.get_task_factory() is None
            with pytest.raises(TypeError):
                loop.set_task_factory(42)
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--asyncio-leaks=error")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "test_suite.py::test_sets_a_factory_and_leaks left behind (--asyncio-leaks=error):",
            "  task 'stray' (forever) still pending, suspended at test_suite.py:5",
        ]
    )


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_collections_at_any_allocation_leave_context_variables_intact(suite, concurrency):
    # aiotempo's hook on Python's collections once set a context variable: a collection that
    # started inside another context variable update corrupted memory (a crash).
    pytester = suite(
        {
            "conftest.py": """
                import gc

                def pytest_collection_finish(session):
                    gc.set_threshold(1, 1, 1)  # collections at nearly every allocation
            """,
            "test_suite.py": """
                import asyncio, contextvars, pytest

                var = contextvars.ContextVar("var")

                @pytest.mark.asyncio
                @pytest.mark.parametrize("n", range(8))
                async def test_sets(n):
                    for i in range(200):
                        var.set([i, n])
                        await asyncio.sleep(0)
            """,
        }
    )
    result = pytester.runpytest_subprocess(f"--asyncio-concurrency={concurrency}")
    result.assert_outcomes(passed=8)


def test_under_concurrency_a_coroutine_never_awaited_is_named_by_its_definition(suite):
    pytester = suite(
        """
        import asyncio, pytest

        async def fetch():
            await asyncio.sleep(0)

        @pytest.mark.asyncio
        @pytest.mark.parametrize("forget", [False, True])
        async def test_fetches(forget):
            coroutine = fetch()
            await asyncio.sleep(0.01)
            if not forget:
                await coroutine
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=2", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "leaks: test_suite.py::test_fetches[True]: coroutine fetch was never awaited, "
            "defined at test_suite.py:4"
        ]
    )
    result.stdout.no_fnmatch_line("*test_fetches?False?: coroutine*")
