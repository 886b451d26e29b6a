"""--asyncio-explore and --asyncio-seed: find a race by perturbing interleavings, replay it."""

import re

import pytest

RACE = """
import asyncio, pytest

async def deposit(account, wait, lock):
    for _ in range(wait):
        await asyncio.sleep(0)
    async with lock:
        balance = account["balance"]  # read ...
        await asyncio.sleep(0)         # ... await ...
        account["balance"] = balance + 1  # ... write: a lost update if another task ran

class NoLock:
    async def __aenter__(self):
        pass

    async def __aexit__(self, *exc_info):
        pass

@pytest.mark.asyncio
async def test_lost_update():
    account = {"balance": 0}
    await asyncio.gather(deposit(account, 0, NoLock()), deposit(account, 2, NoLock()))
    assert account["balance"] == 2

@pytest.mark.asyncio
async def test_guarded_by_a_lock():
    account, lock = {"balance": 0}, asyncio.Lock()
    await asyncio.gather(deposit(account, 0, lock), deposit(account, 2, lock))
    assert account["balance"] == 2
"""


def test_the_race_passes_under_plain_scheduling(suite):
    suite(RACE).runpytest().assert_outcomes(passed=2)


def test_exploration_finds_the_race_and_prints_how_to_replay_it(suite):
    pytester = suite(RACE)
    result = pytester.runpytest("--asyncio-explore=20", "-p", "no:randomly")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] >= 1 and outcomes["passed"] == 40 - outcomes["failed"]
    result.stdout.no_fnmatch_line("FAILED *test_guarded_by_a_lock*")
    result.stdout.fnmatch_lines(
        [
            "*perturbed interleaving failed (a race?); replay it with: "
            "pytest 'test_suite.py::test_lost_update' --asyncio-seed=*"
        ]
    )


def test_replaying_a_failing_seed_fails_every_time(suite):
    pytester = suite(RACE)
    explored = pytester.runpytest("--asyncio-explore=20", "-p", "no:randomly")
    seed = re.search(r"--asyncio-seed=(\d+)", explored.stdout.str()).group(1)
    for _ in range(10):
        replay = pytester.runpytest("test_suite.py::test_lost_update", f"--asyncio-seed={seed}")
        replay.assert_outcomes(failed=1)


def test_each_run_rebuilds_its_fixtures(suite):
    pytester = suite(
        """
        import pytest, pytest_asyncio

        built = []

        @pytest_asyncio.fixture
        async def resource():
            built.append(object())
            yield built[-1]

        @pytest.mark.asyncio
        async def test_uses(resource):
            assert resource is built[-1]

        def test_count():
            assert len(built) == 5
        """
    )
    result = pytester.runpytest("--asyncio-explore=5", "-p", "no:randomly", "-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*test_uses?seed=0? PASSED*", "*test_uses?seed=4? PASSED*"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--asyncio-explore=-2", "asyncio_explore = '-2' is not valid"),
        ("--asyncio-seed=lucky", "asyncio_seed = 'lucky' is not valid"),
    ],
)
def test_invalid_values_are_one_clear_line(suite, option, message):
    pytester = suite("def test_x():\n    pass\n")
    result = pytester.runpytest(option)
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {message}*"])


INTERLEAVED = """
import asyncio, pytest

order = []

@pytest.mark.asyncio
@pytest.mark.parametrize("name", "abc")
async def test_steps(name):
    for step in range(4):
        order.append(f"{name}{step}")
        await asyncio.sleep(0)

def test_show_order():
    print("order:", " ".join(order))
"""


def test_a_seed_fixes_how_concurrent_tests_interleave(suite):
    pytester = suite(INTERLEAVED)

    def order(*args: str) -> str:
        result = pytester.runpytest("--asyncio-concurrency=3", "-rP", "-p", "no:randomly", *args)
        result.assert_outcomes(passed=4)
        return re.search(r"order: (.*)", result.stdout.str()).group(1)

    plain = order()
    assert plain == order()  # deterministic without a seed too
    seeded = [order(f"--asyncio-seed={seed}") for seed in range(4)]
    assert any(interleaving != plain for interleaving in seeded)
    assert order("--asyncio-seed=2") == seeded[2]  # the replay


def test_a_failing_concurrent_test_replays_with_the_whole_run(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_x(n):
            await asyncio.sleep(0)
            assert n == 0
        """
    )
    result = pytester.runpytest("--asyncio-concurrency=2", "--asyncio-seed=5", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*replay it with: pytest --asyncio-concurrency=2 -p no:randomly *--asyncio-seed=5"]
    )
