"""Loop reuse: a function-scoped loop is reused only when it is as good as new."""


def test_clean_loop_is_reused_and_reset(suite):
    pytester = suite(
        """
        import asyncio, pytest

        seen = []

        @pytest.mark.asyncio
        async def test_first():
            loop = asyncio.get_running_loop()
            seen.append(loop)
            loop.set_task_factory(lambda loop, coro, **kw: asyncio.Task(coro, loop=loop, **kw))
            loop.create_task(asyncio.sleep(3600))  # left pending: cancelled at teardown

            async def agen():
                yield 1
                yield 2
            gen = agen()
            await gen.__anext__()
            seen.append(gen)  # suspended: finalized before the loop is reused

        @pytest.mark.asyncio
        async def test_second():
            loop = asyncio.get_running_loop()
            assert loop is seen[0]
            assert loop.get_task_factory() is None
            assert asyncio.all_tasks(loop) == {asyncio.current_task()}
            assert seen[1].ag_frame is None  # the generator was closed

            async def agen():
                yield 1
            assert [x async for x in agen()] == [1]
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_loop_with_a_registered_reader_is_replaced(suite):
    pytester = suite(
        """
        import asyncio, socket, pytest

        seen = []

        @pytest.mark.asyncio
        async def test_leaves_reader_registered():
            loop = asyncio.get_running_loop()
            pair = socket.socketpair()
            loop.add_reader(pair[0], lambda: None)
            seen.extend([loop, pair])

        @pytest.mark.asyncio
        async def test_gets_new_loop():
            loop, pair = seen
            for sock in pair:
                sock.close()
            assert asyncio.get_running_loop() is not loop
            assert loop.is_closed()
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_module_loop_closes_after_its_module_is_torn_down(suite):
    pytester = suite(
        {
            "test_a.py": """
                import asyncio, pytest
                loops = []

                @pytest.mark.asyncio(loop_scope="module")
                async def test_a():
                    loops.append(asyncio.get_running_loop())
            """,
            "test_b.py": """
                from test_a import loops

                def test_closed():
                    assert loops[0].is_closed()
            """,
        }
    )
    pytester.syspathinsert()
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_objects_frozen_before_aiotempo_loads_do_not_keep_it_from_freezing_the_session(suite):
    # Python 3.12 starts with a few hundred of its own tuples frozen.
    pytester = suite(
        {
            "test_frozen.py": """
                import gc, os

                def test_frozen():
                    assert gc.get_freeze_count() > int(os.environ["FROZEN_BEFORE"])
            """,
            "run.py": """
                import gc, os, sys

                gc.freeze()
                os.environ["FROZEN_BEFORE"] = str(gc.get_freeze_count())
                import pytest

                sys.exit(pytest.main(["-p", "no:randomly", "test_frozen.py"]))
            """,
        }
    )
    result = pytester.runpython(pytester.path / "run.py")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 passed*"])


def test_the_collected_session_is_kept_from_the_garbage_collector_until_pytest_is_done(suite):
    # pytest's own final collections (for unraisable exceptions, at unconfigure and in its
    # clean-ups) need not traverse the collected session either.
    pytester = suite(
        {
            "conftest.py": """
                import gc, pytest

                @pytest.hookimpl(tryfirst=True)
                def pytest_configure(config):  # so its clean-up runs after every other
                    config.add_cleanup(lambda: print("frozen at the end:", gc.get_freeze_count()))

                @pytest.hookimpl(trylast=True)
                def pytest_unconfigure(config):
                    print("frozen at unconfigure:", gc.get_freeze_count() > 0)
            """,
            "test_frozen.py": """
                import gc

                def test_frozen():
                    assert gc.get_freeze_count() > 0
            """,
        }
    )
    result = pytester.runpytest_subprocess()  # in-process, the outer run's heap is frozen
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["frozen at unconfigure: True", "frozen at the end: 0"])
