"""With pytest-asyncio installed, aiotempo takes over; -p no:aiotempo gives it back."""

import pytest
import pytest_asyncio

TWO_TESTS = """
import asyncio, pytest, pytest_asyncio

runs = []

@pytest_asyncio.fixture
async def value():
    return 1

@pytest.mark.asyncio
async def test_once(value):
    runs.append(1)
    assert runs == [1] and value == 1

def test_ran_once():
    assert runs == [1]
"""


def test_header_says_aiotempo_replaces_pytest_asyncio(suite):
    pytester = suite(TWO_TESTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [f"aiotempo * (replacing pytest-asyncio {pytest_asyncio.__version__}; -p no:aiotempo*"]
    )
    result.stdout.no_fnmatch_line("asyncio: mode=*")


@pytest.mark.parametrize("plugin", ["asyncio", "pytest_asyncio"])
def test_pytest_asyncio_loaded_first_is_taken_over_without_a_crash(suite, plugin):
    pytester = suite(TWO_TESTS)
    # In a subprocess: in-process, "-p asyncio" would try to rewrite the imported stdlib asyncio.
    result = pytester.runpytest_subprocess("-p", plugin, "--asyncio-mode=strict")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["aiotempo *"])


def test_no_aiotempo_gives_pytest_asyncio_back(suite):
    pytester = suite(TWO_TESTS, ini="asyncio_default_fixture_loop_scope = function")
    result = pytester.runpytest("-p", "no:aiotempo")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["asyncio: mode=*"])
    result.stdout.no_fnmatch_line("aiotempo *")


def test_is_async_test_recipe_moves_tests_to_the_session_loop(suite):
    pytester = suite(
        {
            "conftest.py": """
                import pytest
                from pytest_asyncio import is_async_test

                def pytest_collection_modifyitems(items):
                    marker = pytest.mark.asyncio(loop_scope="session")
                    for item in items:
                        if is_async_test(item):
                            item.add_marker(marker, append=False)
            """,
            "test_a.py": """
                import asyncio, pytest
                loops = []

                @pytest.mark.asyncio
                async def test_a():
                    # a task that outlives the test only if the loop does
                    loops.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))

                def test_sync_is_not_async():
                    pass
            """,
            "test_b.py": """
                import asyncio, pytest
                from test_a import loops

                @pytest.mark.asyncio
                async def test_b():
                    assert not loops[0].done()
                    assert loops[0].get_loop() is asyncio.get_running_loop()
            """,
        }
    )
    pytester.syspathinsert()
    pytester.runpytest().assert_outcomes(passed=3)


def test_is_async_test_is_restored_after_the_run(suite):
    original = pytest_asyncio.is_async_test
    pytester = suite(TWO_TESTS)
    pytester.runpytest().assert_outcomes(passed=2)
    assert pytest_asyncio.is_async_test is original


def test_aiotempo_is_async_test_is_public(suite):
    pytester = suite(
        {
            "conftest.py": """
                import aiotempo

                def pytest_collection_modifyitems(items):
                    for item in items:
                        print(item.name, aiotempo.is_async_test(item))
            """,
            "test_a.py": """
                import pytest

                @pytest.mark.asyncio
                async def test_marked():
                    pass

                async def test_unmarked_in_strict():
                    pass

                def test_sync():
                    pass
            """,
        }
    )
    result = pytester.runpytest("-s", "-p", "no:randomly")
    result.stdout.fnmatch_lines(
        ["test_marked True", "test_unmarked_in_strict False", "test_sync False"]
    )


@pytest.mark.parametrize("plugin", ["asyncio", "pytest_asyncio"])
def test_pytest_asyncio_loaded_first_leaves_none_of_its_fixtures(suite, plugin):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_closure(request):
            assert "event_loop_policy" not in request.fixturenames  # its autouse fixture

        def test_its_runner_fixture_is_gone(request):
            with pytest.raises(pytest.FixtureLookupError):
                request.getfixturevalue("_function_scoped_runner")
        """
    )
    result = pytester.runpytest_subprocess("-p", plugin)
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*fixture is overridden*")
