"""pytest-xdist: each worker runs the tests it holds concurrently, with correct results."""

import pytest

SUITE = {
    "test_one.py": """
        import asyncio, pytest, pytest_asyncio

        @pytest_asyncio.fixture(scope="module", loop_scope="module")
        async def shared():
            await asyncio.sleep(0.01)
            return object()

        @pytest.mark.asyncio(loop_scope="module")
        @pytest.mark.parametrize("n", range(6))
        async def test_one(n, shared):
            print(f"output of one {n}")
            await asyncio.sleep(0.05)
            assert n != 3
    """,
    "test_two.py": """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(6))
        async def test_two(n):
            print(f"output of two {n}")
            await asyncio.sleep(0.05)

        def test_sync():
            pass
    """,
}


@pytest.mark.parametrize("dist", ["load", "loadscope", "loadfile", "loadgroup", "worksteal"])
@pytest.mark.parametrize("workers", ["2", "4"])
def test_every_dist_mode_gives_correct_results(suite, dist, workers):
    pytester = suite(SUITE)
    result = pytester.runpytest_subprocess(
        "-n", workers, "--dist", dist, "--asyncio-concurrency=4", "-rf", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=12, failed=1)
    result.stdout.fnmatch_lines(["*test_one.py::test_one[[]3[]]*"])
    text = result.stdout.str()
    failure = text.split("_ test_one[3] _")[1].split("short test summary")[0]
    assert "output of one 3" in failure
    assert "output of one 2" not in failure and "output of two" not in failure
