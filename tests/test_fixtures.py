"""Async fixtures: every kind, every scope, their context and their teardown."""

import pytest


def test_coroutine_and_asyncgen_fixtures_at_every_scope(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio
        import aiotempo

        events = []

        @pytest_asyncio.fixture(scope="session")
        async def session_fix():
            events.append("session up")
            yield "s"
            events.append("session down")

        @aiotempo.fixture(scope="package")
        async def package_fix():
            return "p"

        @pytest_asyncio.fixture(scope="module")
        async def module_fix():
            yield "m"

        @pytest_asyncio.fixture(scope="class")
        async def class_fix():
            await asyncio.sleep(0)
            return "c"

        @pytest_asyncio.fixture
        async def function_fix():
            yield "f"
            events.append("function down")

        class TestAll:
            @pytest.mark.asyncio
            async def test_all(self, session_fix, package_fix, module_fix, class_fix, function_fix):
                values = (session_fix, package_fix, module_fix, class_fix, function_fix)
                assert values == tuple("spmcf")

        def test_teardown_ran():
            assert events == ["session up", "function down"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_plain_pytest_fixture_works_in_strict_mode_for_asyncio_tests(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.fixture
        async def value():
            await asyncio.sleep(0)
            return 42

        @pytest.fixture
        async def resource():
            yield "open"

        @pytest.mark.asyncio
        async def test_uses_plain_fixtures(value, resource):
            assert (value, resource) == (42, "open")
        """,
        ini="asyncio_mode = strict",
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_sync_test_can_request_async_fixture(suite):
    pytester = suite(
        """
        import asyncio, pytest_asyncio

        @pytest_asyncio.fixture
        async def value():
            await asyncio.sleep(0)
            return asyncio.get_running_loop()

        def test_sync(value):
            assert not value.is_running() and not value.is_closed()
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_fixture_defined_in_test_class_is_bound_to_instance(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        class TestWithFixture:
            factor = 3

            @pytest_asyncio.fixture
            async def tripled(self):
                return 2 * self.factor

            @pytest.mark.asyncio
            async def test_uses_it(self, tripled):
                assert tripled == 6
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_contextvars_set_in_fixtures_reach_the_test_and_are_reset(suite):
    pytester = suite(
        """
        import contextvars, pytest, pytest_asyncio

        var = contextvars.ContextVar("var", default="unset")
        other = contextvars.ContextVar("other", default="unset")

        @pytest_asyncio.fixture
        async def sets_var():
            token = var.set("from yield fixture")
            yield
            var.reset(token)  # same context as setup: the token is valid

        @pytest_asyncio.fixture
        async def sets_other():
            other.set("from coroutine fixture")

        @pytest.mark.asyncio
        async def test_sees_them(sets_var, sets_other):
            assert var.get() == "from yield fixture"
            assert other.get() == "from coroutine fixture"

        def test_sync_sees_them(sets_var):
            assert var.get() == "from yield fixture"

        def test_reset_afterwards():
            assert var.get() == "unset" and other.get() == "unset"
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def test_async_teardown_runs_before_its_loop_closes(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module")
        async def server():
            loop = asyncio.get_running_loop()
            yield loop
            await asyncio.sleep(0)
            assert not loop.is_closed()
            print("teardown on open loop")

        @pytest.mark.asyncio(loop_scope="module")
        async def test_uses(server):
            assert asyncio.get_running_loop() is server
        """
    )
    result = pytester.runpytest("-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*teardown on open loop*"])


def test_fixture_error_errors_the_tests_that_need_it(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def broken():
            raise RuntimeError("cannot connect")

        @pytest.mark.asyncio
        async def test_needs_it(broken):
            pass

        @pytest.mark.asyncio
        async def test_independent():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: cannot connect*"])


def test_fixture_teardown_error_is_reported(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def flaky_close():
            yield
            raise RuntimeError("close failed")

        @pytest.mark.asyncio
        async def test_passes(flaky_close):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: close failed*"])


def test_fixture_that_yields_twice_is_named(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def greedy():
            yield 1
            yield 2

        @pytest.mark.asyncio
        async def test_a(greedy):
            pass

        @pytest.mark.asyncio
        async def test_b():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*fixture 'greedy' yielded twice; an async generator fixture must yield exactly once*"]
    )


def test_fixture_that_never_yields_is_named(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture
        async def empty():
            if False:
                yield

        @pytest.mark.asyncio
        async def test_a(empty):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'empty' returned without yielding*"])


def test_parametrized_async_fixture(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture(params=[1, 2], scope="module")
        async def number(request):
            yield request.param * 10

        @pytest.mark.asyncio
        async def test_number(number):
            assert number in (10, 20)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_fixture_override_requesting_the_overridden_one(suite):
    pytester = suite(
        {
            "conftest.py": """
                import pytest_asyncio

                @pytest_asyncio.fixture
                async def value():
                    return 1
            """,
            "test_override.py": """
                import pytest, pytest_asyncio

                @pytest_asyncio.fixture
                async def value(value):
                    return value + 1

                @pytest.mark.asyncio
                async def test_value(value):
                    assert value == 2
            """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_autouse_async_fixture_in_auto_mode(suite):
    pytester = suite(
        """
        import pytest

        calls = []

        @pytest.fixture(autouse=True)
        async def record():
            calls.append("setup")
            yield
            calls.append("teardown")

        async def test_first():
            assert calls == ["setup"]

        def test_second():
            assert calls == ["setup", "teardown", "setup"]
        """,
        ini="asyncio_mode = auto",
    )
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_async_fixture_for_anyio_test_is_left_to_anyio(suite, mode):
    pytest.importorskip("anyio")
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.fixture
        async def fixture_loop():
            return asyncio.get_running_loop()

        @pytest.mark.anyio
        async def test_on_anyio(fixture_loop):
            assert asyncio.get_running_loop() is fixture_loop  # both run by anyio
        """,
        ini=f"asyncio_mode = {mode}",
    )
    pytester.runpytest().assert_outcomes(passed=1)
