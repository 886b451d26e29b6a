"""Async tests selected by the asyncio marker (strict mode) or by auto mode."""

import pytest


def test_marked_async_test_runs(suite):
    pytester = suite(
        """
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_sleeps():
            await asyncio.sleep(0)
            assert asyncio.get_running_loop().is_running()

        @pytest.mark.asyncio
        async def test_fails():
            await asyncio.sleep(0)
            assert False, "ran"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: ran*"])


def test_unmarked_async_test_is_not_run_in_strict_mode(suite):
    pytester = suite(
        """
        async def test_unmarked():
            assert False, "ran"
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*async def functions are not natively supported*"])
    result.stdout.no_fnmatch_line("*AssertionError: ran*")


def test_auto_mode_runs_unmarked_async_tests(suite):
    pytester = suite(
        """
        import asyncio

        async def test_auto():
            await asyncio.sleep(0)

        def test_sync():
            pass
        """,
        ini="asyncio_mode = auto",
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_mode_from_command_line_wins_over_ini(suite):
    pytester = suite("async def test_auto():\n    pass\n", ini="asyncio_mode = strict")
    pytester.runpytest("--asyncio-mode=auto").assert_outcomes(passed=1)


def test_marker_on_class_and_pytestmark(suite):
    pytester = suite(
        """
        import asyncio, pytest

        pytestmark = pytest.mark.asyncio

        async def test_module_marked():
            await asyncio.sleep(0)

        @pytest.mark.asyncio
        class TestMarked:
            async def test_method(self):
                await asyncio.sleep(0)

            @staticmethod
            async def test_static():
                await asyncio.sleep(0)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_parametrized_async_test(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        @pytest.mark.parametrize("n", [1, 2, 3])
        async def test_param(n):
            assert n in (1, 2, 3)
        """
    )
    pytester.runpytest().assert_outcomes(passed=3)


def test_asyncio_marker_on_sync_test_warns_like_pytest_asyncio(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio
        def test_sync():
            pass
        """,
        ini="filterwarnings = default",
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*is marked with '@pytest.mark.asyncio' but it is not an async*"])


def test_unknown_marker_argument_errors_that_test_only(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio(loop_scop="module")
        async def test_typo():
            pass

        @pytest.mark.asyncio
        async def test_fine():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_typo*@pytest.mark.asyncio got unknown argument(s) loop_scop; "
            "accepted: loop_scope, loop_factories*"
        ]
    )


def test_positional_marker_argument_errors(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio("module")
        async def test_positional():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_positional*takes keyword arguments only*"])


def test_invalid_loop_scope_value_errors(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio(loop_scope="modul")
        async def test_bad_scope():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*loop_scope='modul') is not a loop scope; use one of: function*"])


def test_unknown_aiotempo_marker_argument_errors(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.aiotempo(turbo=True)
        @pytest.mark.asyncio
        async def test_knob():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.aiotempo got unknown argument(s) turbo*"])


def test_deprecated_scope_argument_works_with_a_notice(suite):
    pytester = suite(
        """
        import asyncio, pytest

        loops = []

        @pytest.mark.asyncio(scope="module")
        async def test_a():
            loops.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))

        @pytest.mark.asyncio(scope="module")
        async def test_b():
            assert not loops[0].done()  # the loop, and its task, outlived test_a
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*asyncio(scope=...) is deprecated; write loop_scope=...*"])


def test_scope_and_loop_scope_together_error(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.asyncio(scope="module", loop_scope="module")
        async def test_both():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*got both 'scope' and 'loop_scope'; keep 'loop_scope'*"])


def test_strict_markers_and_strict_config_pass(suite):
    pytester = suite(
        """
        import pytest

        @pytest.mark.aiotempo
        @pytest.mark.asyncio(loop_scope="module")
        async def test_ok():
            pass
        """,
        ini="asyncio_mode = strict\nasyncio_debug = true\nasyncio_default_fixture_loop_scope = "
        "function\nasyncio_default_test_loop_scope = function",
    )
    pytester.runpytest("--strict-markers", "--strict-config").assert_outcomes(passed=1)


def test_invalid_mode_is_one_clear_line(suite):
    pytester = suite("def test_x():\n    pass\n", ini="asyncio_mode = autp")
    result = pytester.runpytest()
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: asyncio_mode = 'autp' is not valid; use 'strict' or 'auto'*"]
    )


def test_invalid_default_loop_scope_is_one_clear_line(suite):
    pytester = suite("def test_x():\n    pass\n", ini="asyncio_default_test_loop_scope = modul")
    result = pytester.runpytest()
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: asyncio_default_test_loop_scope = 'modul' is not a valid loop scope*"]
    )


@pytest.mark.parametrize(
    ("args", "ini", "debug"),
    [((), "", False), (("--asyncio-debug",), "", True), ((), "asyncio_debug = true", True)],
)
def test_debug_mode_from_option_and_ini(suite, args, ini, debug):
    pytester = suite(
        f"""
        import asyncio, pytest

        @pytest.mark.asyncio
        async def test_debug():
            assert asyncio.get_running_loop().get_debug() is {debug}
        """,
        ini=ini,
    )
    pytester.runpytest(*args).assert_outcomes(passed=1)
