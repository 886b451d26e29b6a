"""Configuration: options, ini values and markers, validated once into plain values.

pytest-asyncio's names (``asyncio_mode``, ``asyncio_debug``, the two default loop scopes, the
``asyncio`` marker) are accepted verbatim with the same meaning. aiotempo's own knobs are
``--asyncio-<name>`` options with an ``asyncio_<name>`` ini twin, and per-test arguments on the
separate ``@pytest.mark.aiotempo(...)`` marker, so that ``-p no:aiotempo`` leaves a suite valid
for pytest-asyncio.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import pytest

ScopeName = Literal["function", "class", "module", "package", "session"]

#: Loop scopes from narrowest to widest.
SCOPES: tuple[ScopeName, ...] = ("function", "class", "module", "package", "session")

#: ``asyncio_default_fixture_loop_scope`` value meaning "the fixture's own caching scope".
FIXTURE_SCOPE = "fixture-scope"

ASYNCIO_MARKER_ARGS = ("loop_scope", "scope", "loop_factories")

#: Arguments of ``@pytest.mark.aiotempo``.
AIOTEMPO_MARKER_ARGS = (
    "clock",
    "patch_time",
    "concurrent",
    "exclusive",
    "resources",
    "timeout",
    "leaks",
    "allow_leaks",
    "blocking",
)
#: Levels of a diagnostic check.
LEVELS = ("off", "warn", "error")

CLOCKS = ("real", "virtual")


class Mode(str, enum.Enum):
    STRICT = "strict"
    AUTO = "auto"


class Settings(NamedTuple):
    """The run-wide settings, read and validated once in ``pytest_configure``."""

    mode: Mode
    debug: bool
    #: ``None`` means: each fixture's loop scope is its own caching scope.
    default_fixture_loop_scope: ScopeName | None
    default_test_loop_scope: ScopeName
    #: ``"real"`` or ``"virtual"``.
    clock: str
    #: Whether ``time.monotonic()`` and friends follow the virtual clock inside tests.
    patch_time: bool
    #: Tests in flight at most; 1 runs tests one at a time.
    concurrency: int
    #: Real seconds a test may take from the start of its setup; ``None``: no limit.
    timeout: float | None
    #: Runs of each async test with a perturbed interleaving (0: no exploration).
    explore: int
    #: The seed of the perturbation; ``None``: asyncio's own order.
    seed: int | None
    #: What to do about what a test leaves behind: off, warn or error.
    leaks: str
    #: What to do about a loop blocked by a test: off, warn or error.
    blocking: str
    #: Real seconds the loop must not turn for to count as blocked.
    blocking_threshold: float
    #: Whether blockbuster fails blocking calls at the call (``blockbuster_layer``).
    blockbuster: bool
    #: Where to write the timeline report (``timeline``); ``None``: no report.
    report: Path | None


def add_options(parser: pytest.Parser, *, shared: bool) -> None:
    """Register aiotempo's options; ``shared`` adds the ones pytest-asyncio also registers.

    pytest-asyncio's names are left out when its plugin already registered them: argparse
    refuses an option string registered twice.
    """
    group = parser.getgroup("asyncio")
    _add_option_and_ini(
        parser,
        "clock",
        "'virtual': sleeps and timeouts take no real time; 'real' (default): they do",
        default="real",
    )
    _add_option_and_ini(
        parser,
        "concurrency",
        "run up to N independent async tests at once on one loop (default 1: one at a time)",
        default="1",
    )
    _add_option_and_ini(
        parser,
        "timeout",
        "fail a test that takes longer than SECONDS (real time from the start of its setup), "
        "showing every task's await chain; 0 (default): no limit",
        default="0",
    )
    _add_option_and_ini(
        parser,
        "explore",
        "run each async test N times, each with another seeded interleaving of its tasks, "
        "to find races (0, default: off)",
        default="0",
    )
    _add_option_and_ini(
        parser,
        "seed",
        "perturb the interleaving of tasks with this seed (replays a run of --asyncio-explore)",
        default="",
    )
    _add_option_and_ini(
        parser,
        "leaks",
        "report what a test leaves behind (tasks, timers, threads, file descriptors, "
        "unretrieved exceptions): off, warn (default: in the summary) or error (fail it)",
        default="warn",
    )
    _add_option_and_ini(
        parser,
        "blocking",
        "report a test that blocks its loop (a blocking call or a CPU hog): off, warn "
        "(default: in the summary) or error (fail it)",
        default="warn",
    )
    _add_option_and_ini(
        parser,
        "blocking_threshold",
        "seconds the loop must not turn for to count as blocked (default 0.1)",
        default="0.1",
    )
    _add_option_and_ini(
        parser,
        "blockbuster",
        "fail a blocking call (time.sleep, file, socket, os calls) in an async test at the call, "
        "with the blockbuster package; needs --asyncio-blocking=error",
        flag=True,
    )
    parser.addini(
        "asyncio_blockbuster_allow",
        "file.py:function lines: blocking calls made inside these functions are allowed by "
        "--asyncio-blockbuster",
        type="linelist",
    )
    _add_option_and_ini(
        parser,
        "patch_time",
        "make time.monotonic(), time.perf_counter() and time.time() follow the virtual clock "
        "inside tests",
        flag=True,
    )
    _add_option_and_ini(
        parser, "report", "write a timeline of the run to this HTML file (see docs/report.md)"
    )
    if not shared:
        return
    group.addoption(
        "--asyncio-mode",
        dest="asyncio_mode",
        default=None,
        metavar="MODE",
        help="'auto' runs every async test and fixture; 'strict' (default) only marked ones",
    )
    group.addoption(
        "--asyncio-debug",
        dest="asyncio_debug",
        action="store_true",
        default=None,
        help="enable asyncio debug mode on the test loops",
    )
    parser.addini("asyncio_mode", "default value for --asyncio-mode", default="strict")
    parser.addini("asyncio_debug", "enable asyncio debug mode", type="bool", default=False)
    parser.addini(
        "asyncio_default_fixture_loop_scope",
        "default loop scope of async fixtures (default: the fixture's own scope)",
        default=None,
    )
    parser.addini(
        "asyncio_default_test_loop_scope",
        "default loop scope of async tests",
        default="function",
    )


def _add_option_and_ini(
    parser: pytest.Parser, name: str, help: str, default: str = "", flag: bool = False
) -> None:
    """``--asyncio-<name>`` with its ini twin ``asyncio_<name>``; the option wins."""
    option = "--asyncio-" + name.replace("_", "-")
    if flag:
        parser.getgroup("asyncio").addoption(
            option, dest=f"asyncio_{name}", action="store_true", default=None, help=help
        )
        parser.addini(f"asyncio_{name}", help, type="bool", default=False)
    else:
        parser.getgroup("asyncio").addoption(
            option, dest=f"asyncio_{name}", default=None, metavar=name.upper(), help=help
        )
        parser.addini(f"asyncio_{name}", help, default=default)


def _option_or_ini(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"asyncio_{name}")
    return config.getini(f"asyncio_{name}") if value is None else value


def read_settings(config: pytest.Config) -> Settings:
    """Read and validate the settings; bad values raise one clear ``UsageError`` line."""
    mode_value = config.getoption("asyncio_mode") or config.getini("asyncio_mode")
    try:
        mode = Mode(mode_value)
    except ValueError:
        raise pytest.UsageError(
            f"asyncio_mode = {mode_value!r} is not valid; use 'strict' or 'auto' "
            "(set by --asyncio-mode or the asyncio_mode ini option)"
        ) from None
    debug = _option_or_ini(config, "debug")
    if isinstance(debug, str):  # an unset ini's default, as pytest-asyncio registered it
        debug = debug.strip().lower() in ("true", "1", "yes", "on")
    clock = _option_or_ini(config, "clock")
    if clock not in CLOCKS:
        raise pytest.UsageError(
            f"asyncio_clock = {clock!r} is not valid; use 'real' or 'virtual' "
            "(set by --asyncio-clock or the asyncio_clock ini option)"
        )
    fixture_scope = config.getini("asyncio_default_fixture_loop_scope") or None
    if fixture_scope == FIXTURE_SCOPE:
        fixture_scope = None
    return Settings(
        mode=mode,
        debug=bool(debug),
        default_fixture_loop_scope=_ini_scope(
            "asyncio_default_fixture_loop_scope", fixture_scope, extra=(FIXTURE_SCOPE,)
        ),
        default_test_loop_scope=_ini_scope(
            "asyncio_default_test_loop_scope", config.getini("asyncio_default_test_loop_scope")
        )
        or "function",
        clock=clock,
        patch_time=_flag(config, "patch_time"),
        concurrency=_whole_number(
            _option_or_ini(config, "concurrency"),
            "asyncio_concurrency",
            "tests in flight",
            least=1,
            note=" (1 runs tests one at a time)",
        ),
        timeout=_timeout(_option_or_ini(config, "timeout"), "asyncio_timeout"),
        explore=_whole_number(_option_or_ini(config, "explore"), "asyncio_explore", "runs"),
        seed=_seed(_option_or_ini(config, "seed")),
        leaks=_level(_option_or_ini(config, "leaks"), "asyncio_leaks"),
        blocking=_level(_option_or_ini(config, "blocking"), "asyncio_blocking"),
        blocking_threshold=_positive_seconds(
            _option_or_ini(config, "blocking_threshold"), "asyncio_blocking_threshold"
        ),
        blockbuster=_flag(config, "blockbuster"),
        report=_report_path(config),
    )


def _report_path(config: pytest.Config) -> Path | None:
    """The option is relative to where pytest was started, the ini value to the rootdir."""
    value = config.getoption("asyncio_report", None)
    if value:
        return Path(config.invocation_params.dir, value)
    value = config.getini("asyncio_report")
    return Path(config.rootpath, value) if value else None


def _flag(config: pytest.Config, name: str) -> bool:
    """A flag or its ini twin; pytest's error for a bad ini value (a ``ValueError`` in pytest
    8, a ``UsageError`` in 9) names neither the option nor the fix."""
    try:
        return bool(_option_or_ini(config, name))
    except (ValueError, pytest.UsageError) as error:
        raise pytest.UsageError(
            f"asyncio_{name} in the ini file is not valid ({error}); use true or false"
        ) from None


def _positive_seconds(value: str, name: str) -> float:
    seconds = _timeout(value, name)
    if seconds is None:
        raise pytest.UsageError(f"{name} = {value!r} is not valid; use a number of seconds > 0")
    return seconds


def _level(value: str, name: str) -> str:
    if value not in LEVELS:
        raise pytest.UsageError(f"{name} = {value!r} is not valid; use one of: off, warn, error")
    return value


def _whole_number(value: str, name: str, what: str, least: int = 0, note: str = "") -> int:
    try:
        number = int(value)
    except ValueError:
        number = least - 1
    if number < least:
        raise pytest.UsageError(
            f"{name} = {value!r} is not valid; use a whole number of {what}, {least} or more" + note
        )
    return number


def _seed(value: str) -> int | None:
    if value in ("", None):
        return None
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(
            f"asyncio_seed = {value!r} is not valid; use a whole number, e.g. the seed a "
            "failing run of --asyncio-explore printed"
        ) from None


def _timeout(value: Any, where: str) -> float | None:
    """Seconds from an option or marker value; 0 or ``None`` mean no limit."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise pytest.UsageError(
            f"{where} = {value!r} is not valid; use a number of seconds, 0 for no limit"
        )
    return seconds or None


def _ini_scope(name: str, value: str | None, extra: Sequence[str] = ()) -> ScopeName | None:
    if value is None or value in SCOPES:
        return value
    valid = ", ".join((*SCOPES, *extra))
    raise pytest.UsageError(f"{name} = {value!r} is not a valid loop scope; use one of: {valid}")


def widest(scopes: Sequence[ScopeName]) -> ScopeName:
    return max(scopes, key=SCOPES.index)


def is_wider(scope: ScopeName, than: ScopeName) -> bool:
    return SCOPES.index(scope) > SCOPES.index(than)


class MarkerError(Exception):
    """A marker on a test is misused; the message names the test and the fix."""


class AsyncioMarker(NamedTuple):
    loop_scope: ScopeName | None
    loop_factories: tuple[str, ...] | None


def parse_asyncio_marker(mark: pytest.Mark, test: str) -> tuple[AsyncioMarker, bool]:
    """Validate ``@pytest.mark.asyncio(...)``; also say if the deprecated ``scope=`` was used."""
    _check_arguments(mark, ASYNCIO_MARKER_ARGS, test)
    kwargs = mark.kwargs
    if "scope" in kwargs and "loop_scope" in kwargs:
        raise MarkerError(
            f"{test}: @pytest.mark.asyncio got both 'scope' and 'loop_scope'; keep 'loop_scope'"
        )
    loop_scope = kwargs.get("loop_scope", kwargs.get("scope"))
    if loop_scope is not None and loop_scope not in SCOPES:
        raise MarkerError(
            f"{test}: @pytest.mark.asyncio(loop_scope={loop_scope!r}) is not a loop scope; "
            f"use one of: {', '.join(SCOPES)}"
        )
    factories = kwargs.get("loop_factories")
    if factories is not None and (
        isinstance(factories, str)
        or not isinstance(factories, Sequence)
        or not factories
        or not all(isinstance(name, str) and name for name in factories)
    ):
        raise MarkerError(
            f"{test}: @pytest.mark.asyncio(loop_factories=...) must be a non-empty list of "
            "factory names, e.g. loop_factories=['uvloop']"
        )
    parsed = AsyncioMarker(loop_scope, tuple(factories) if factories is not None else None)
    return parsed, "scope" in kwargs


class AiotempoMarker(NamedTuple):
    """A test's ``aiotempo`` marker, parsed (an empty one for a test without)."""

    clock: str | None = None
    patch_time: bool | None = None
    #: ``True``/``False`` opts the test in or out of concurrency; ``None`` follows the option.
    concurrent: bool | None = None
    #: Run the test alone: the tests in flight drain first and nothing starts beside it.
    exclusive: bool = False
    #: Named resources: tests sharing one never overlap.
    resources: tuple[str, ...] = ()
    #: Seconds, overriding ``--asyncio-timeout`` (0: no limit); ``None`` follows the option.
    timeout: float | None = None
    #: The leak check's level for this test; ``None`` follows the option.
    leaks: str | None = None
    #: Texts of findings to ignore (known, benign leaks).
    allow_leaks: tuple[str, ...] = ()
    #: The blocking check's level for this test; ``None`` follows the option.
    blocking: str | None = None


def parse_aiotempo_marker(mark: pytest.Mark, test: str) -> AiotempoMarker:
    """Validate ``@pytest.mark.aiotempo(...)``."""
    _check_arguments(mark, AIOTEMPO_MARKER_ARGS, test)
    clock = mark.kwargs.get("clock")
    if clock is not None and clock not in CLOCKS:
        raise MarkerError(
            f"{test}: @pytest.mark.aiotempo(clock={clock!r}) is not a clock; use 'real' or "
            "'virtual'"
        )
    flags = {name: mark.kwargs.get(name) for name in ("patch_time", "concurrent", "exclusive")}
    for name, value in flags.items():
        if value is not None and not isinstance(value, bool):
            raise MarkerError(
                f"{test}: @pytest.mark.aiotempo({name}={value!r}) must be True or False"
            )
    resources = mark.kwargs.get("resources", ())
    if isinstance(resources, str):
        resources = (resources,)
    if not isinstance(resources, (list, tuple, set, frozenset)) or not all(
        isinstance(name, str) and name for name in resources
    ):
        raise MarkerError(
            f"{test}: @pytest.mark.aiotempo(resources={resources!r}) must name resources, "
            "e.g. resources=['database']"
        )
    if flags["exclusive"] and flags["concurrent"]:
        raise MarkerError(
            f"{test}: @pytest.mark.aiotempo(exclusive=True, concurrent=True) contradict each "
            "other; keep one"
        )
    timeout = mark.kwargs.get("timeout")
    if timeout is not None:
        try:
            timeout = _timeout(timeout, f"{test}: @pytest.mark.aiotempo(timeout=...)") or 0.0
        except pytest.UsageError as error:
            raise MarkerError(str(error)) from None
    leaks = _marker_level(mark.kwargs.get("leaks"), "leaks", test)
    allow = mark.kwargs.get("allow_leaks", ())
    if isinstance(allow, str):
        allow = (allow,)
    if not isinstance(allow, (list, tuple)) or not all(isinstance(a, str) for a in allow):
        raise MarkerError(
            f"{test}: @pytest.mark.aiotempo(allow_leaks={allow!r}) must be texts of findings "
            "to ignore, e.g. allow_leaks=['heartbeat']"
        )
    return AiotempoMarker(
        clock,
        flags["patch_time"],
        flags["concurrent"],
        bool(flags["exclusive"]),
        tuple(sorted(resources)),
        timeout,
        leaks,
        tuple(allow),
        _marker_level(mark.kwargs.get("blocking"), "blocking", test),
    )


def _marker_level(value: str | None, name: str, test: str) -> str | None:
    if value is not None and value not in LEVELS:
        raise MarkerError(
            f"{test}: @pytest.mark.aiotempo({name}={value!r}) is not a level; use one of: "
            "off, warn, error"
        )
    return value


def _check_arguments(mark: pytest.Mark, known: Sequence[str], test: str) -> None:
    accepted = ", ".join(a for a in known if a != "scope") or "none yet"
    if mark.args:
        raise MarkerError(
            f"{test}: @pytest.mark.{mark.name} takes keyword arguments only "
            f"(got {mark.args!r}); accepted: {accepted}"
        )
    unknown = sorted(set(mark.kwargs) - set(known))
    if unknown:
        raise MarkerError(
            f"{test}: @pytest.mark.{mark.name} got unknown argument(s) {', '.join(unknown)}; "
            f"accepted: {accepted}"
        )
