"""The end of a run says how long tests waited and ran, what concurrency and the virtual clock
saved, and, when they are off, what they would save and for which tests."""

import re

SLEEPERS = """
    import asyncio, pytest

    @pytest.mark.asyncio
    @pytest.mark.parametrize("n", range({n}))
    async def test_sleeps(n):
        await asyncio.sleep({seconds})

    def test_sync():
        pass
"""


def summary(result, label):
    """The text of the summary line ``label``, and the seconds it names, in order."""
    line = next(line for line in result.outlines if line.startswith(f"{label}: "))
    return line, [float(number) for number in re.findall(r"(\d+\.\d+) s\b", line)]


def test_sequential_sleeps_show_both_estimates_and_the_tests(suite):
    pytester = suite(SLEEPERS.format(n=3, seconds=0.2))
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=4)
    line, (wall, summed, waiting, timers, running) = summary(result, "time")
    assert line.startswith("time: 4 tests, ")
    assert 0.6 <= waiting <= wall <= summed + 0.05 and 0.55 <= timers <= waiting
    assert running == round(wall - waiting, 2)
    line, (saved, *per_test) = summary(result, "virtual clock")
    assert line.startswith("virtual clock: off; --asyncio-clock=virtual would save an estimated")
    assert 0.55 <= saved <= 1.0 and len(per_test) == 3
    assert all(f"test_suite.py::test_sleeps[{n}] (0." in line for n in range(3))
    line, (saved, *_) = summary(result, "concurrency")
    # Three waits of 0.2 s at once take 0.2 s instead of 0.6 s.
    assert line.startswith("concurrency: off; --asyncio-concurrency=3 would save an estimated")
    assert 0.35 <= saved <= 0.5
    assert "test_suite.py::test_sleeps[0]" in line and "test_sync" not in line


def test_virtual_clock_says_what_it_skipped(suite):
    pytester = suite(SLEEPERS.format(n=3, seconds=10))
    result = pytester.runpytest("--asyncio-clock=virtual")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(
        ["virtual clock: on; saved 30.0* s (the waits for timers it skipped)"]
    )
    _, (_, _, waiting, *_) = summary(result, "time")
    assert waiting < 1


def test_concurrency_says_what_overlapping_waits_saved(suite):
    pytester = suite(SLEEPERS.format(n=4, seconds=0.2))
    result = pytester.runpytest("--asyncio-concurrency=4")
    result.assert_outcomes(passed=5)
    line, (saved,) = summary(result, "concurrency")
    assert line.startswith("concurrency: on (up to 4 at once); saved at least")
    assert 0.45 <= saved <= 0.65  # 0.8 s of waits in about 0.2 s
    _, (wall, *_) = summary(result, "time")
    assert wall < 0.6
    # The waits overlapped: the clock would skip them once, not four times.
    _, (clock_saved, *_) = summary(result, "virtual clock")
    assert 0.15 <= clock_saved <= 0.35


def test_tests_that_would_not_gain_are_not_counted(suite):
    pytester = suite(
        """
        import asyncio, time, pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", range(2))
        async def test_timer(n):
            await asyncio.sleep(0.2)

        @pytest.mark.asyncio
        async def test_thread():
            await asyncio.get_running_loop().run_in_executor(None, time.sleep, 0.3)

        @pytest.mark.asyncio
        @pytest.mark.aiotempo(clock="real")
        async def test_real_time():
            await asyncio.sleep(0.2)

        @pytest.mark.asyncio
        async def test_patches(monkeypatch):
            await asyncio.sleep(0.2)
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=5)
    _, (_, _, waiting, timers, _) = summary(result, "time")
    assert waiting >= 1.05 and 0.75 <= timers <= waiting - 0.25  # the thread's wait is I/O
    line, (saved, *_) = summary(result, "virtual clock")
    # The timers of test_timer and test_patches; not the thread, nor the test marked real.
    assert 0.35 <= saved <= 0.6 and "test_real_time" not in line and "test_thread" not in line
    line, _ = summary(result, "concurrency")
    assert line.endswith("(not counted: 1 waiting tests that cannot run concurrently)")
    assert "test_patches" not in line


def test_nothing_to_overlap_is_said_briefly(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        async def test_quick():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "time: 1 tests, * s of wall time (* s summed): waiting 0.00 s (0.00 s for timers), "
            "running * s",
            "virtual clock: off; --asyncio-clock=virtual would save an estimated 0.00 s",
            "concurrency: off; nothing to overlap (tests waited 0.00 s)",
        ]
    )
