"""Which loop each test and fixture runs on."""


def test_function_scope_gives_each_test_a_fresh_looking_loop(suite):
    pytester = suite(
        """
        import asyncio, pytest

        seen = []

        @pytest.mark.asyncio
        async def test_leaves_state():
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda loop, context: None)
            loop.call_later(3600, print, "never")
            seen.append(loop)

        @pytest.mark.asyncio
        async def test_gets_clean_state():
            loop = asyncio.get_running_loop()
            assert loop.get_exception_handler() is None
            assert not [h for h in loop._scheduled if not h.cancelled()]
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_module_scope_shares_one_loop(suite):
    pytester = suite(
        {
            "test_one.py": """
                import asyncio, pytest

                pytestmark = pytest.mark.asyncio(loop_scope="module")
                loops = []

                async def test_a():
                    loops.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))

                async def test_b():
                    assert not loops[0].done()  # the loop, and its task, outlived test_a
            """,
            "test_two.py": """
                import asyncio, pytest
                from test_one import loops

                @pytest.mark.asyncio(loop_scope="module")
                async def test_other_module():
                    assert loops[0].done()  # the first module's loop was closed
            """,
        }
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_class_scope_shares_a_loop_per_class(suite):
    pytester = suite(
        """
        import asyncio, pytest

        loops = {}

        @pytest.mark.asyncio(loop_scope="class")
        class TestA:
            async def test_1(self):
                loops["a"] = asyncio.get_running_loop().create_task(asyncio.sleep(3600))

            async def test_2(self):
                assert not loops["a"].done()

        @pytest.mark.asyncio(loop_scope="class")
        class TestB:
            async def test_1(self):
                assert loops["a"].done()  # TestA's loop was closed
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_session_and_package_scopes(suite):
    pytester = suite(
        {
            "pkg/__init__.py": "",
            "pkg/test_a.py": """
                import asyncio, pytest
                import shared

                def keepalive():
                    return asyncio.get_running_loop().create_task(asyncio.sleep(3600))

                @pytest.mark.asyncio(loop_scope="session")
                async def test_session():
                    shared.tasks["session"] = keepalive()

                @pytest.mark.asyncio(loop_scope="package")
                async def test_package():
                    shared.tasks["package"] = keepalive()
            """,
            "pkg/test_b.py": """
                import asyncio, pytest
                import shared

                @pytest.mark.asyncio(loop_scope="session")
                async def test_session():
                    assert not shared.tasks["session"].done()

                @pytest.mark.asyncio(loop_scope="package")
                async def test_package():
                    assert not shared.tasks["package"].done()
            """,
            "shared.py": "tasks = {}\n",
        }
    )
    pytester.syspathinsert()
    pytester.runpytest().assert_outcomes(passed=4)


def test_default_test_loop_scope_from_ini(suite):
    pytester = suite(
        """
        import asyncio, pytest

        loops = []

        @pytest.mark.asyncio
        async def test_a():
            loops.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))

        @pytest.mark.asyncio
        async def test_b():
            assert not loops[0].done()  # the module loop, and its task, outlived test_a
        """,
        ini="asyncio_default_test_loop_scope = module",
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_test_follows_its_module_scoped_fixture_loop(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module")
        async def pool():
            queue = asyncio.Queue()
            await queue.put("connection")
            yield queue, asyncio.get_running_loop()

        @pytest.mark.asyncio
        async def test_first(pool):
            queue, loop = pool
            assert asyncio.get_running_loop() is loop
            await queue.put(await queue.get())

        @pytest.mark.asyncio
        async def test_second(pool):
            queue, loop = pool
            assert asyncio.get_running_loop() is loop
            assert await queue.get() == "connection"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_function_fixture_shares_the_test_loop_when_the_test_is_widened(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="session")
        async def engine():
            return asyncio.get_running_loop()

        @pytest_asyncio.fixture
        async def session(engine):
            yield asyncio.get_running_loop()

        @pytest.mark.asyncio
        async def test_all_one_loop(engine, session):
            assert asyncio.get_running_loop() is engine is session
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_module_fixture_depending_on_session_fixture_uses_its_loop(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="session")
        async def engine():
            return asyncio.get_running_loop()

        @pytest_asyncio.fixture(scope="module")
        async def repository(engine):
            return asyncio.get_running_loop()

        @pytest.mark.asyncio
        async def test_one_loop(repository, engine):
            assert asyncio.get_running_loop() is repository is engine
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_explicit_contradicting_loop_scopes_name_fixture_test_and_fix(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def pool():
            return 1

        @pytest.mark.asyncio(loop_scope="function")
        async def test_contradicts(pool):
            pass

        @pytest.mark.asyncio
        async def test_fine(pool):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_contradicts: @pytest.mark.asyncio(loop_scope='function') contradicts fixture "
            "'pool', which declares its loop_scope and runs on the module loop*mark the test "
            "loop_scope='module'*"
        ]
    )


def test_explicit_test_scope_with_implicit_fixture_scope_runs_like_pytest_asyncio(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module")
        async def config():
            return {"loop": asyncio.get_running_loop()}

        @pytest.mark.asyncio(loop_scope="function")
        async def test_own_loop(config):
            assert asyncio.get_running_loop() is not config["loop"]
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_fixture_loop_scope_default_from_ini_widened_to_fixture_scope(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        setups = []

        @pytest_asyncio.fixture(scope="module")
        async def once():
            setups.append(1)
            return asyncio.get_running_loop()

        @pytest.mark.asyncio
        async def test_a(once):
            assert asyncio.get_running_loop() is once

        @pytest.mark.asyncio
        async def test_b(once):
            assert asyncio.get_running_loop() is once and setups == [1]
        """,
        ini="asyncio_default_fixture_loop_scope = function",
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_sync_code_sees_the_test_loop_as_current_and_not_running(suite):
    pytester = suite(
        """
        import asyncio, pytest, pytest_asyncio

        @pytest.fixture
        def prepared():
            loop = asyncio.get_event_loop()
            assert not loop.is_running()
            return loop.run_until_complete(asyncio.sleep(0, result=loop))

        @pytest.fixture
        def via_asyncio_run():
            return asyncio.run(asyncio.sleep(0, result="ran"))

        @pytest.mark.asyncio
        async def test_same_loop(prepared):
            assert prepared is asyncio.get_running_loop()

        @pytest.mark.asyncio
        async def test_asyncio_run_in_sync_fixture(via_asyncio_run):
            assert via_asyncio_run == "ran"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)
