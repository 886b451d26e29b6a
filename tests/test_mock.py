"""aiotempo.mock: test doubles for async iteration, async context managers, slow, flaky and
hanging calls, await order, and autospec of async-shaped classes."""

import pytest

# -- AsyncIterMock -----------------------------------------------------------------------------


def test_async_iter_mock_yields_its_items_from_the_mock_and_from_a_call(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock

        @pytest.mark.asyncio
        async def test_items():
            stream = AsyncIterMock([1, 2, 3])
            assert [item async for item in stream] == [1, 2, 3]
            assert [item async for item in stream("topic")] == [1, 2, 3]
            stream.assert_called_once_with("topic")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_starts_over_on_each_pass(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock

        @pytest.mark.asyncio
        async def test_twice():
            stream = AsyncIterMock(item for item in "ab")  # a generator is copied up front
            first = stream()
            assert await anext(first) == "a"
            assert [item async for item in stream()] == ["a", "b"]
            assert [item async for item in first] == ["b"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_waits_its_delay_before_each_item(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from aiotempo.mock import AsyncIterMock

        @pytest.mark.asyncio
        async def test_delay():
            loop = asyncio.get_running_loop()
            stream = AsyncIterMock(["a", "b"], delay=0.05)
            start = loop.time()
            arrivals = [(item, loop.time() - start) async for item in stream]
            assert arrivals[0][1] >= 0.05 and arrivals[1][1] >= 0.1
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_raises_after_its_items(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock

        @pytest.mark.asyncio
        async def test_connection_drops():
            stream = AsyncIterMock([1, 2], raises=ConnectionResetError("peer left"))
            received = []
            with pytest.raises(ConnectionResetError, match="peer left"):
                async for item in stream():
                    received.append(item)
            assert received == [1, 2]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_stops_for_good_after_raising(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock

        @pytest.mark.asyncio
        async def test_after_the_error():
            items = AsyncIterMock([1], raises=ConnectionError)()
            assert await anext(items) == 1
            with pytest.raises(ConnectionError):
                await anext(items)
            assert [item async for item in items] == []
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_aclose_stops_a_pass(suite):
    pytester = suite(
        """
        import contextlib, pytest
        from aiotempo.mock import AsyncIterMock

        @pytest.mark.asyncio
        async def test_aclosing():
            async with contextlib.aclosing(AsyncIterMock([1, 2, 3])()) as items:
                assert await anext(items) == 1
            assert [item async for item in items] == []
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_settings_can_change_later(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock

        @pytest.mark.asyncio
        async def test_reconfigure():
            stream = AsyncIterMock()
            assert [item async for item in stream] == []
            stream.items = (1, 2)
            stream.raises = KeyError
            assert stream.items == [1, 2] and stream.delay == 0
            with pytest.raises(KeyError):
                [item async for item in stream]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_side_effect_argument_replaces_the_items(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock

        def test_call_fails():
            stream = AsyncIterMock([1], side_effect=PermissionError("no access"))
            with pytest.raises(PermissionError):
                stream("topic")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_iter_mock_attributes_are_plain_mocks(suite):
    pytester = suite(
        """
        from unittest.mock import AsyncMock, MagicMock
        from aiotempo.mock import AsyncIterMock

        def test_children():
            stream = AsyncIterMock([1])
            assert isinstance(stream.close, MagicMock)
            assert not isinstance(stream.close, AsyncIterMock)
            assert isinstance(stream.__aenter__, AsyncMock)
            assert not isinstance(stream.__aiter__, (AsyncMock, AsyncIterMock))
            assert type(stream).__module__ == "aiotempo.mock"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# -- AsyncContextMock --------------------------------------------------------------------------


def test_async_context_mock_enters_with_its_result_also_when_called(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncContextMock

        @pytest.mark.asyncio
        async def test_enter():
            get = AsyncContextMock(enter_result="response")
            async with get("https://example.invalid") as response:
                assert response == "response"
            async with get as response:
                assert response == "response"
            get.assert_called_once_with("https://example.invalid")
            assert get.enter_count == get.exit_count == 2
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_context_mock_records_the_exit_arguments(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncContextMock

        @pytest.mark.asyncio
        async def test_exits():
            transaction = AsyncContextMock()
            async with transaction:
                pass
            with pytest.raises(KeyError):
                async with transaction:
                    raise KeyError("missing")
            (clean, failed) = transaction.exit_args
            assert clean == (None, None, None)
            assert failed[0] is KeyError and isinstance(failed[1], KeyError)
            transaction.__aexit__.assert_awaited()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_context_mock_can_raise_on_enter(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncContextMock

        @pytest.mark.asyncio
        async def test_refused():
            connect = AsyncContextMock(raises=ConnectionRefusedError)
            with pytest.raises(ConnectionRefusedError):
                async with connect():
                    pytest.fail("the body ran")
            assert (connect.enter_count, connect.exit_count) == (1, 0)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_context_mock_enters_with_a_child_mock_by_default(suite):
    pytester = suite(
        """
        import pytest
        from unittest.mock import Mock
        from aiotempo.mock import AsyncContextMock

        @pytest.mark.asyncio
        async def test_default():
            lock = AsyncContextMock()
            async with lock as first:
                pass
            async with lock as second:
                pass
            assert isinstance(first, Mock) and first is second is lock.enter_result
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_async_context_mock_settings_can_change_later(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncContextMock

        @pytest.mark.asyncio
        async def test_reconfigure():
            connect = AsyncContextMock(raises=OSError)
            connect.raises = None
            connect.enter_result = "connection"
            async with connect() as connection:
                assert connection == "connection"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_reset_mock_keeps_the_settings(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncContextMock, AsyncIterMock

        @pytest.mark.asyncio
        async def test_reset():
            stream, connect = AsyncIterMock([1]), AsyncContextMock("connection")
            [item async for item in stream()]
            async with connect() as connection:
                pass
            stream.reset_mock()
            connect.reset_mock()
            assert stream.call_count == connect.call_count == connect.enter_count == 0
            assert [item async for item in stream()] == [1]
            async with connect() as connection:
                assert connection == "connection"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# -- delayed, flaky, hang ----------------------------------------------------------------------


def test_delayed_answers_after_its_delay(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from unittest.mock import AsyncMock
        from aiotempo.mock import delayed

        @pytest.mark.asyncio
        async def test_slow():
            loop = asyncio.get_running_loop()
            fetch = AsyncMock(side_effect=delayed(0.05, "page"))
            start = loop.time()
            assert await fetch("/") == "page"
            assert loop.time() - start >= 0.05
            fetch.assert_awaited_once_with("/")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_delayed_leaves_the_answer_to_the_mock_by_default(suite):
    pytester = suite(
        """
        import pytest
        from unittest.mock import AsyncMock
        from aiotempo.mock import delayed

        @pytest.mark.asyncio
        async def test_default():
            fetch = AsyncMock(side_effect=delayed(0.01), return_value="page")
            assert await fetch() == "page"
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_delayed_can_raise(suite):
    pytester = suite(
        """
        import pytest
        from unittest.mock import AsyncMock
        from aiotempo.mock import delayed

        @pytest.mark.asyncio
        async def test_slow_failure():
            fetch = AsyncMock(side_effect=delayed(0.01, raises=TimeoutError("upstream")))
            with pytest.raises(TimeoutError, match="upstream"):
                await fetch()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_flaky_fails_the_first_calls_then_keeps_succeeding(suite):
    pytester = suite(
        """
        import pytest
        from unittest.mock import AsyncMock
        from aiotempo.mock import flaky

        @pytest.mark.asyncio
        async def test_retries():
            fetch = AsyncMock(side_effect=flaky(2, ConnectionError("down"), "page"))
            for _ in range(2):
                with pytest.raises(ConnectionError, match="down"):
                    await fetch()
            assert [await fetch() for _ in range(3)] == ["page"] * 3
            assert fetch.await_count == 5
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_flaky_with_no_failures_never_fails(suite):
    pytester = suite(
        """
        import pytest
        from unittest.mock import AsyncMock
        from aiotempo.mock import flaky

        @pytest.mark.asyncio
        @pytest.mark.parametrize("failures", [0, 1])
        async def test_attempts(failures):
            fetch = AsyncMock(side_effect=flaky(failures, OSError), return_value="page")
            for _ in range(failures):
                with pytest.raises(OSError):
                    await fetch()
            assert await fetch() == "page"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_hang_never_completes_until_cancelled(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from unittest.mock import AsyncMock
        from aiotempo.mock import hang

        @pytest.mark.asyncio
        async def test_timeout():
            fetch = AsyncMock(side_effect=hang())
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(fetch("/"), timeout=0.01)
            fetch.assert_awaited_once_with("/")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# -- AwaitRecorder -----------------------------------------------------------------------------


def test_recorder_tells_start_order_from_completion_order(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from unittest.mock import AsyncMock, call
        from aiotempo.mock import AwaitRecorder, delayed

        @pytest.mark.asyncio
        async def test_order():
            recorder = AwaitRecorder()
            slow = recorder.track(AsyncMock(side_effect=delayed(0.05, "slow")), "slow")
            fast = recorder.track(AsyncMock(side_effect=delayed(0.01, "fast")), "fast")
            assert await asyncio.gather(slow(1), fast(2)) == ["slow", "fast"]
            recorder.assert_awaited_in_order("slow", "fast")
            recorder.assert_completed_in_order(call.fast(2), call.slow(1))
            assert recorder.started == [call.slow(1), call.fast(2)]
            slow.assert_awaited_once_with(1)
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_recorder_order_failure_shows_both_orders(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from unittest.mock import AsyncMock, call
        from aiotempo.mock import AwaitRecorder, delayed

        @pytest.mark.asyncio
        async def test_order():
            recorder = AwaitRecorder()
            slow = recorder.track(AsyncMock(side_effect=delayed(0.05)), "slow")
            fast = recorder.track(AsyncMock(side_effect=delayed(0.01)), "fast")
            await asyncio.gather(slow(), fast("x"))
            recorder.assert_completed_in_order("slow", call.fast("x"))
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E *AssertionError: awaits completed in another order than expected",
            "E *Expected: slow, call.fast('x')",
            "E *Actual:   call.fast('x'), call.slow()",
        ]
    )


def test_recorder_keeps_cancelled_awaits_apart(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from unittest.mock import AsyncMock, call
        from aiotempo.mock import AwaitRecorder, hang

        @pytest.mark.asyncio
        async def test_cancelled():
            recorder = AwaitRecorder()
            fetch = recorder.track(AsyncMock(side_effect=hang()), "fetch")
            save = recorder.track(AsyncMock(side_effect=OSError), "save")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(fetch(), timeout=0.01)
            with pytest.raises(OSError):
                await save()
            recorder.assert_awaited_in_order("fetch", "save")
            recorder.assert_completed_in_order("save")
            assert recorder.cancelled == [call.fetch()]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_recorder_tracks_patched_and_autospecced_mocks(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from unittest.mock import create_autospec
        from aiotempo.mock import AwaitRecorder

        class Client:
            async def fetch(self, url): ...

        async def save(item): ...

        @pytest.mark.asyncio
        async def test_tracked(mocker):
            recorder = AwaitRecorder()
            fetch = recorder.track(mocker.patch.object(Client, "fetch"), "fetch")
            store = recorder.track(create_autospec(save), "save")
            await asyncio.gather(Client().fetch("/"), store("page"))
            with pytest.raises(TypeError):
                await store()  # raised by the call before Python 3.13, by the await since
            recorder.assert_awaited_in_order("fetch", "save")
            fetch.assert_awaited_once_with("/")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_recorder_tracks_context_manager_entries(suite):
    pytester = suite(
        """
        import asyncio, pytest
        from unittest.mock import AsyncMock
        from aiotempo.mock import AsyncContextMock, AwaitRecorder

        @pytest.mark.asyncio
        async def test_lock_then_write():
            recorder = AwaitRecorder()
            lock = AsyncContextMock()
            recorder.track(lock.__aenter__, "acquire")
            recorder.track(lock.__aexit__, "release")
            write = recorder.track(AsyncMock(), "write")
            async with lock:
                await write("data")
            recorder.assert_awaited_in_order("acquire", "write", "release")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# -- create_autospec ---------------------------------------------------------------------------

CLIENT = """
    import contextlib, functools
    from collections.abc import AsyncIterator
    from contextlib import AbstractAsyncContextManager

    class Client:
        async def fetch(self, url: str) -> bytes: ...

        async def stream(self, topic: str, *, limit: int = 10):
            yield b""

        @contextlib.asynccontextmanager
        async def transaction(self, name: str) -> AsyncIterator[str]:
            yield name

        def lines(self, path: str) -> AsyncIterator[str]: ...

        def session(self) -> AbstractAsyncContextManager[str]: ...

        @property
        def messages(self) -> AsyncIterator[str]: ...

        @functools.cached_property
        def events(self) -> AsyncIterator[str]: ...

        async def subscribe(self, topic: str) -> AsyncIterator[str]: ...

        @staticmethod
        async def ticks(every: float):
            yield 0

        @classmethod
        @contextlib.asynccontextmanager
        async def pooled(cls, size: int):
            yield cls()

        def close(self) -> None: ...
"""


def test_autospec_async_methods_are_async_mocks_with_signature_checks(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import pytest
                from unittest.mock import AsyncMock, MagicMock
                from aiotempo.mock import create_autospec
                from client import Client

                @pytest.mark.asyncio
                async def test_fetch():
                    client = create_autospec(Client, instance=True)
                    assert isinstance(client.fetch, AsyncMock)
                    assert type(client.close) is not AsyncMock
                    client.fetch.return_value = b"page"
                    assert await client.fetch("/") == b"page"
                    with pytest.raises(TypeError):
                        client.fetch("/", "extra")
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_async_generator_method_is_an_async_iter_mock(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import inspect, pytest
                from aiotempo.mock import AsyncIterMock, create_autospec
                from client import Client

                @pytest.mark.asyncio
                async def test_stream():
                    client = create_autospec(Client, instance=True)
                    assert isinstance(client.stream, AsyncIterMock)
                    client.stream.items = [b"a", b"b"]
                    chunks = [chunk async for chunk in client.stream("news", limit=2)]
                    assert chunks == [b"a", b"b"]
                    client.stream.assert_called_once_with("news", limit=2)
                    signature = str(inspect.signature(client.stream))
                    assert signature == "(topic: str, *, limit: int = 10)"
                    with pytest.raises(TypeError):
                        client.stream("news", 2)
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_asynccontextmanager_method_is_an_async_context_mock(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import pytest
                from unittest.mock import call
                from aiotempo.mock import AsyncContextMock, create_autospec
                from client import Client

                @pytest.mark.asyncio
                async def test_transaction():
                    client = create_autospec(Client, instance=True)
                    assert isinstance(client.transaction, AsyncContextMock)
                    client.transaction.enter_result = "tx"
                    async with client.transaction("write") as tx:
                        assert tx == "tx"
                    assert client.transaction.exit_args == [(None, None, None)]
                    assert client.mock_calls[0] == call.transaction("write")
                    with pytest.raises(TypeError):
                        client.transaction()
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_reads_return_annotations_of_methods_and_properties(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import pytest
                from aiotempo.mock import AsyncContextMock, AsyncIterMock, create_autospec
                from client import Client

                @pytest.mark.asyncio
                async def test_annotated():
                    client = create_autospec(Client, instance=True)
                    assert isinstance(client.lines, AsyncIterMock)
                    assert isinstance(client.session, AsyncContextMock)
                    assert isinstance(client.messages, AsyncIterMock)
                    assert isinstance(client.events, AsyncIterMock)
                    client.messages.items = ["hello"]
                    assert [message async for message in client.messages] == ["hello"]
                    with pytest.raises(TypeError):
                        client.lines()
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_async_method_returning_an_async_iterator(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import pytest
                from unittest.mock import AsyncMock
                from aiotempo.mock import AsyncIterMock, create_autospec
                from client import Client

                @pytest.mark.asyncio
                async def test_subscribe():
                    client = create_autospec(Client, instance=True)
                    assert isinstance(client.subscribe, AsyncMock)
                    client.subscribe.return_value.items = ["event"]
                    subscription = await client.subscribe("news")
                    assert isinstance(subscription, AsyncIterMock)
                    assert [event async for event in subscription] == ["event"]
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_static_and_class_methods_keep_their_signatures(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import inspect
                from aiotempo.mock import AsyncContextMock, AsyncIterMock, create_autospec
                from client import Client

                def test_signatures():
                    client = create_autospec(Client, instance=True)
                    assert isinstance(client.ticks, AsyncIterMock)
                    assert isinstance(client.pooled, AsyncContextMock)
                    assert str(inspect.signature(client.ticks)) == "(every: float)"
                    assert str(inspect.signature(client.pooled)) == "(size: int)"
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_of_the_class_upgrades_its_instances(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import pytest
                from unittest.mock import call
                from aiotempo.mock import AsyncIterMock, create_autospec
                from client import Client

                @pytest.mark.asyncio
                async def test_class():
                    client_class = create_autospec(Client)
                    client_class.return_value.stream.items = [1]
                    assert [item async for item in client_class().stream("news")] == [1]
                    assert isinstance(client_class.stream, AsyncIterMock)
                    assert client_class.mock_calls == [call(), call().stream("news")]
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_spec_set_still_allows_the_mock_settings(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import pytest
                from aiotempo.mock import create_autospec
                from client import Client

                @pytest.mark.asyncio
                async def test_spec_set():
                    client = create_autospec(Client, spec_set=True, instance=True)
                    client.stream.items = [1]
                    client.stream.delay = 0.01
                    client.transaction.enter_result = "tx"
                    with pytest.raises(AttributeError):
                        client.no_such_method
                    assert [item async for item in client.stream("news")] == [1]
                """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autospec_of_an_async_generator_function(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock, create_autospec

        async def read_lines(path, encoding="utf-8"):
            yield ""

        @pytest.mark.asyncio
        async def test_function():
            lines = create_autospec(read_lines)
            assert isinstance(lines, AsyncIterMock)
            lines.items = ["first"]
            assert [line async for line in lines("a.txt")] == ["first"]
            with pytest.raises(TypeError):
                lines()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


# -- patch and mocker --------------------------------------------------------------------------


def test_mocker_patch_object_with_an_async_iter_mock(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import AsyncIterMock

        class Client:
            async def stream(self, topic):
                raise AssertionError("the real stream ran")
                yield

        async def first_two(client):
            return [item async for item in client.stream("news")][:2]

        @pytest.mark.asyncio
        async def test_patched(mocker):
            stream = mocker.patch.object(Client, "stream", new=AsyncIterMock([1, 2, 3]))
            assert await first_two(Client()) == [1, 2]
            stream.assert_called_once_with("news")

        @pytest.mark.asyncio
        async def test_restored():
            with pytest.raises(AssertionError, match="the real stream ran"):
                await first_two(Client())
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_mocker_patch_with_new_callable_async_context_mock(suite):
    pytester = suite(
        {
            "service.py": """
                class Session:
                    def get(self, url):
                        raise AssertionError("the real session ran")

                async def status(session, url):
                    async with session.get(url) as response:
                        return response
            """,
            "test_suite.py": """
                import pytest
                import service
                from aiotempo.mock import AsyncContextMock

                @pytest.mark.asyncio
                async def test_patched(mocker):
                    get = mocker.patch(
                        "service.Session.get", new_callable=AsyncContextMock, enter_result=200
                    )
                    assert await service.status(service.Session(), "/") == 200
                    get.assert_called_once_with("/")
                    assert get.exit_count == 1
            """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_mocker_patch_object_with_a_flaky_side_effect(suite):
    pytester = suite(
        """
        import pytest
        from aiotempo.mock import flaky

        class Client:
            async def fetch(self):
                raise AssertionError("the real fetch ran")

        async def fetch_with_retries(client, attempts):
            for attempt in range(attempts):
                try:
                    return await client.fetch()
                except ConnectionError:
                    if attempt == attempts - 1:
                        raise

        @pytest.mark.asyncio
        async def test_retried(mocker):
            fetch = mocker.patch.object(
                Client, "fetch", side_effect=flaky(2, ConnectionError, "page")
            )
            assert await fetch_with_retries(Client(), attempts=3) == "page"
            assert fetch.await_count == 3
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_mocker_patch_with_a_create_autospec_class(suite):
    pytester = suite(
        {
            "client.py": CLIENT,
            "test_suite.py": """
                import pytest
                import client
                from aiotempo.mock import create_autospec

                async def headlines():
                    async with client.Client().transaction("read"):
                        return [line async for line in client.Client().lines("news")]

                @pytest.mark.asyncio
                async def test_patched(mocker):
                    client_class = mocker.patch(
                        "client.Client", new=create_autospec(client.Client)
                    )
                    client_class.return_value.lines.items = ["one", "two"]
                    assert await headlines() == ["one", "two"]
                    assert client_class.return_value.transaction.exit_count == 1
            """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_unittest_patch_decorator_and_context_manager(suite):
    pytester = suite(
        """
        import pytest
        from unittest.mock import patch
        from aiotempo.mock import AsyncContextMock, AsyncIterMock

        class Client:
            def connect(self):
                raise AssertionError("the real connect ran")

            async def stream(self):
                raise AssertionError("the real stream ran")
                yield

        @pytest.mark.asyncio
        @patch.object(Client, "stream", new_callable=AsyncIterMock, items=["a"])
        async def test_decorator(stream):
            assert [item async for item in Client().stream()] == ["a"]
            stream.assert_called_once_with()

        @pytest.mark.asyncio
        async def test_context_manager():
            with patch.object(Client, "connect", new=AsyncContextMock("connection")):
                async with Client().connect() as connection:
                    assert connection == "connection"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


# -- bad arguments -----------------------------------------------------------------------------

BAD_ARGUMENTS = {
    "iter-negative-delay": (
        "AsyncIterMock([1], delay=-1)",
        "ValueError: AsyncIterMock: delay cannot be negative (got -1); pass 0 for no delay",
    ),
    "iter-delay-not-a-number": (
        "AsyncIterMock([1], delay='1')",
        "TypeError: AsyncIterMock: delay must be a number of seconds, got '1'",
    ),
    "iter-infinite-delay": (
        "AsyncIterMock([1], delay=float('inf'))",
        "ValueError: AsyncIterMock: delay must be finite (got inf); "
        "for an await that never completes, use aiotempo.mock.hang()",
    ),
    "iter-delay-set-later": (
        "AsyncIterMock([1]).delay = -0.5",
        "ValueError: AsyncIterMock: delay cannot be negative (got -0.5); pass 0 for no delay",
    ),
    "iter-items-not-iterable": (
        "AsyncIterMock(42)",
        "TypeError: AsyncIterMock: items must be an iterable such as a list, got int 42; "
        "to yield a single item, wrap it in a list: [[]42[]]",
    ),
    "iter-items-async-iterable": (
        "AsyncIterMock(numbers())",
        "TypeError: AsyncIterMock: items must be an iterable such as a list, "
        "got async_generator *; "
        "an async iterable cannot be copied up front; pass a list of its items",
    ),
    "iter-items-a-string": (
        "AsyncIterMock('line')",
        "TypeError: AsyncIterMock: items is a str, which would yield it piece by piece; "
        "pass a list of the items to yield, such as [[]'line'[]]",
    ),
    "iter-raises-not-an-exception": (
        "AsyncIterMock([1], raises='boom')",
        "TypeError: AsyncIterMock: raises must be an exception class or instance, such as "
        "ConnectionError or ConnectionError('reset'), got 'boom'",
    ),
    "context-raises-not-an-exception": (
        "AsyncContextMock(raises=404)",
        "TypeError: AsyncContextMock: raises must be an exception class or instance, * got 404",
    ),
    "delayed-negative-seconds": (
        "delayed(-2, 'page')",
        "ValueError: delayed(): seconds cannot be negative (got -2); pass 0 for no delay",
    ),
    "delayed-result-and-exception": (
        "delayed(1, 'page', raises=OSError)",
        "TypeError: delayed(): pass return_value or raises, not both",
    ),
    "delayed-raises-not-an-exception": (
        "delayed(1, raises='timeout')",
        "TypeError: delayed(): raises must be an exception class or instance, * got 'timeout'",
    ),
    "flaky-negative-failures": (
        "flaky(-1, ConnectionError)",
        "ValueError: flaky(): failures cannot be negative (got -1); "
        "pass 0 for a side effect that never fails",
    ),
    "flaky-failures-not-a-count": (
        "flaky(1.5, ConnectionError)",
        "TypeError: flaky(): failures must be a whole number of calls, got 1.5",
    ),
    "flaky-exception-not-an-exception": (
        "flaky(2, 'ConnectionError')",
        "TypeError: flaky(): exception must be an exception class or instance, * "
        "got 'ConnectionError'",
    ),
    "track-not-an-async-mock": (
        "AwaitRecorder().track(MagicMock(), 'fetch')",
        "TypeError: AwaitRecorder.track(): 'fetch' must be an AsyncMock (or a mock with an async "
        "spec), got MagicMock; create it with AsyncMock(...)",
    ),
    "track-without-a-name": (
        "AwaitRecorder().track(AsyncMock(), '')",
        "TypeError: AwaitRecorder.track(): name must be a non-empty str, got ''",
    ),
    "order-of-something-else": (
        "AwaitRecorder().assert_awaited_in_order(AsyncMock())",
        "TypeError: expected awaits are names or calls such as call.fetch(1), got <AsyncMock *>",
    ),
}


@pytest.mark.parametrize(("statement", "message"), BAD_ARGUMENTS.values(), ids=list(BAD_ARGUMENTS))
def test_bad_argument_is_a_clear_error(suite, statement, message):
    pytester = suite(
        f"""
        from unittest.mock import AsyncMock, MagicMock
        from aiotempo.mock import *

        async def numbers():
            yield 1

        def test_construct():
            {statement}
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"E *{message}"])
