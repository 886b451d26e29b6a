"""Suites written for older pytest-asyncio: the event_loop fixture and event_loop_policy."""


def test_event_loop_fixture_is_the_running_loop_with_a_notice(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_async(event_loop):
            assert asyncio.get_running_loop() is event_loop

        def test_sync(event_loop):
            assert event_loop.run_until_complete(asyncio.sleep(0, result=5)) == 5
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*the event_loop fixture is deprecated*test_async*test_sync*"])


def test_overridden_session_event_loop_runs_every_async_test(suite):
    pytester = suite(
        {
            "conftest.py": """
                import asyncio, pytest

                @pytest.fixture(scope="session")
                def event_loop():
                    loop = asyncio.new_event_loop()
                    loop.custom = True
                    yield loop
                    loop.close()
            """,
            "test_a.py": """
                import asyncio, pytest, pytest_asyncio

                @pytest_asyncio.fixture(scope="module")
                async def shared():
                    return asyncio.get_running_loop()

                @pytest.mark.asyncio
                async def test_one(shared):
                    assert asyncio.get_running_loop() is shared
                    assert asyncio.get_running_loop().custom

                @pytest.mark.asyncio
                async def test_two():
                    assert asyncio.get_running_loop().custom
            """,
        }
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*the event_loop fixture is overridden*conftest.event_loop*"])


def test_overridden_function_event_loop_gives_each_test_its_loop(suite):
    pytester = suite(
        """
        import asyncio, pytest

        loops = []

        @pytest.fixture
        def event_loop():
            loop = asyncio.new_event_loop()
            loops.append(loop)
            yield loop
            loop.close()

        @pytest.mark.asyncio
        async def test_one():
            assert asyncio.get_running_loop() is loops[-1]

        @pytest.mark.asyncio
        async def test_two():
            assert asyncio.get_running_loop() is loops[-1] and len(loops) == 2
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_overridden_event_loop_policy_creates_the_loops(suite):
    pytester = suite(
        """
        import asyncio, pytest

        class MarkingPolicy(asyncio.DefaultEventLoopPolicy):
            def new_event_loop(self):
                loop = super().new_event_loop()
                loop.marked = True
                return loop

        @pytest.fixture(scope="session")
        def event_loop_policy():
            return MarkingPolicy()

        @pytest.mark.asyncio
        async def test_policy_loop():
            assert asyncio.get_running_loop().marked

        @pytest.mark.asyncio(loop_scope="module")
        async def test_policy_module_loop():
            assert asyncio.get_running_loop().marked
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*the event_loop_policy fixture is overridden*"])


def test_loop_factories_hook_runs_each_test_per_factory(suite):
    pytester = suite(
        {
            "conftest.py": """
                import asyncio

                class Marked(asyncio.SelectorEventLoop):
                    pass

                def pytest_asyncio_loop_factories(config, item):
                    return {"default": asyncio.new_event_loop, "marked": Marked}
            """,
            "test_a.py": """
                import asyncio, pytest

                @pytest.mark.asyncio
                async def test_each(request):
                    kind = type(asyncio.get_running_loop()).__name__
                    assert ("Marked" in kind) == request.node.name.endswith("[marked]")

                @pytest.mark.asyncio(loop_factories=["marked"])
                async def test_selected():
                    assert type(asyncio.get_running_loop()).__name__ == "Marked"

                @pytest.mark.asyncio(loop_factories=["uvloop"])
                async def test_unavailable():
                    pass
            """,
        }
    )
    result = pytester.runpytest("-v", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(
        ["*test_each?default? PASSED*", "*test_each?marked? PASSED*"], consecutive=False
    )
    result.stdout.fnmatch_lines(["*loop factory 'uvloop' is not available; available: default*"])


def test_loop_factories_marker_without_hook_is_one_clear_line(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio(loop_factories=["uvloop"])
        async def test_selected():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_selected: @pytest.mark.asyncio(loop_factories=...) needs a "
            "pytest_asyncio_loop_factories hook implementation*"
        ]
    )
