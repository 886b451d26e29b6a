#!/usr/bin/env python3
"""Drop-in proof: run real asyncio projects' test suites under pytest-asyncio and aiotempo.

For every project in ``PROJECTS`` this script

1. downloads the pinned source distribution from PyPI
   (``pip download --no-binary :all: --no-deps``) into the work directory,
2. extracts it and creates one virtual environment for the project
   (with ``uv`` when it can be found, else ``venv`` + ``pip``),
3. installs the project from that sdist, its extra test dependencies, pinned
   pytest and pytest-asyncio, and aiotempo from this repository (editable),
4. runs the suite twice in the same environment:

   * ``pytest -p no:aiotempo ...``  -> plain pytest-asyncio,
   * ``pytest ...``                 -> aiotempo (which blocks pytest-asyncio's
     plugin; the ``pytest_asyncio`` package stays importable),

5. compares pass/fail/skip/xfail/xpass/error counts, the per-test outcomes
   (from ``--junitxml``) and the effective mode/debug settings, prints a
   Markdown table with both columns and wall times side by side plus a verdict
   per project, and writes the table to ``compat/results.md``.

Exit status: 0 when every project matches; 1 on any mismatch (or when
pytest-asyncio's own outcomes change between rounds); 2 when a project could
not be set up or ``aiotempo.plugin`` cannot be imported (its row then reads
"pending", with the pytest-asyncio column filled in).

Standard library only.  Usage::

    python compat/run.py                      # every project
    python compat/run.py --only janus         # one project (repeatable)
    python compat/run.py --workdir /tmp/cw    # somewhere else than compat/work
    python compat/run.py --rounds 3           # alternate 3 times, fastest times
    python compat/run.py --aa                 # pytest-asyncio against itself
    python compat/run.py --list               # show the table of projects

See docs/compat.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent

# Versions of the tools every project is run with.  pytest-asyncio is the
# reference implementation; aiotempo comes from this checkout.
PYTEST = "pytest==9.0.3"
PYTEST_ASYNCIO = "pytest-asyncio==1.5.0"

# Arguments added to every run.  ``-p no:cacheprovider`` keeps the sdist tree
# clean and makes runs independent of each other (no --lf/--ff state).
COMMON_ARGS = ["-p", "no:cacheprovider", "-rfE", "--color=no"]


@dataclasses.dataclass(frozen=True)
class Project:
    name: str  # PyPI name
    version: str  # pinned version
    deps: tuple[str, ...] = ()  # extra test dependencies, pinned (pip requirement strings)
    tests: tuple[str, ...] = ("tests",)  # test paths inside the extracted sdist
    args: tuple[str, ...] = ()  # extra pytest args (e.g. replace coverage addopts)
    why: str = ""  # one line for the docs
    max_python: tuple[int, int] | None = None  # newest Python its pinned deps support

    @property
    def key(self) -> str:
        return self.name.lower().replace("_", "-")


# The projects.  Their own ``addopts`` mostly switch on coverage
# (pytest-cov); we replace ``addopts`` with ``-o addopts=...`` keeping every
# option that changes collection or outcomes, and dropping only coverage and
# reporting flags.  No test here needs the internet: the aiohttp tests use a
# test server on 127.0.0.1.
PROJECTS: tuple[Project, ...] = (
    Project(
        name="aiostream",
        version="0.8.1",
        args=("-o", "addopts=--strict-markers"),
        why="strict mode, explicit @pytest.mark.asyncio, async generators, "
        "time-based operators (timeout, debounce, interval)",
    ),
    Project(
        name="async-lru",
        version="2.4.0",
        deps=("pytest-timeout==2.4.0",),
        args=("-o", "addopts=--keep-duplicates"),
        why="auto mode, filterwarnings=error, xfail_strict, pytest-timeout, "
        "TTL tests that sleep, thread-safety tests with their own loops",
    ),
    Project(
        name="aiojobs",
        version="1.4.0",
        deps=("aiohttp==3.14.5", "pytest-aiohttp==1.1.1"),
        # the sdist ships no pytest config; upstream runs in auto mode
        args=("-o", "asyncio_mode=auto"),
        why="auto mode, async fixtures from pytest-aiohttp (itself built on "
        "pytest_asyncio.fixture and its event-loop machinery), aiohttp test server",
    ),
    Project(
        name="janus",
        version="2.0.0",
        # tests/test_benchmarks.py needs a `benchmark` fixture (upstream:
        # pytest-codspeed); pytest-benchmark provides it, run once each
        deps=("pytest-benchmark==5.3.1",),
        args=("-o", "addopts=--benchmark-disable"),
        why="strict mode, filterwarnings=error, sync/async queues across "
        "threads, loop-scope function",
    ),
    Project(
        name="aiolimiter",
        version="1.3.0",
        deps=("dunamai==1.26.5", "typing-extensions==4.16.0"),
        # test_version compares __version__ with `git describe`: no git in an sdist
        args=("-o", "addopts=", "--deselect", "tests/test_aiolimiter.py::test_version"),
        why="auto mode with session-scoped default fixture loop, timing-sensitive rate limiting",
    ),
    Project(
        name="asgi-lifespan",
        version="2.1.0",
        # within the ranges of the sdist's requirements.txt (newer starlette
        # and httpx changed the APIs the tests use)
        # trio 0.22 does not import on Python 3.13, and newer trio fails its tests
        max_python=(3, 12),
        deps=(
            "starlette==0.26.1",
            "httpx==0.23.3",
            "trio==0.22.2",
            "pytest-trio==0.8.0",
            "attrs>=19.2",
        ),
        args=("-o", "addopts=-rxXs"),
        why="strict mode where the asyncio mark comes from a parametrized "
        "fixture's params, side by side with pytest-trio",
    ),
    Project(
        name="aiosmtplib",
        version="5.1.3",
        deps=("aiosmtpd==1.4.6", "trustme==1.2.1", "hypothesis==6.170.17"),
        # the header/address-injection tests need the stdlib email fixes of
        # CPython 3.11.10+/3.12.6+ (strict parseaddr, email.errors.HeaderWriteError)
        args=("-k", "not injection and not smuggle"),
        why="auto mode, pytest_asyncio.fixture, pytest_asyncio_loop_factories hook, "
        "session-scoped fixtures, SMTP/TLS servers on 127.0.0.1, hypothesis, "
        "--import-mode=importlib",
    ),
    Project(
        name="aiofiles",
        version="25.1.0",
        # test_access expects chmod 000 to deny access, which root ignores
        args=("--deselect", "tests/test_os.py::test_access"),
        why="auto mode, file I/O through the default executor, many parametrized tests",
    ),
)

OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "errors")
SUMMARY_RE = re.compile(
    r"(\d+) (passed|failed|skipped|xfailed|xpassed|errors?|warnings?|deselected)"
)
TIME_RE = re.compile(r" in ([\d.]+)s")


# --------------------------------------------------------------------------- utils


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def clean_env() -> dict[str, str]:
    """The environment for installs and runs: nothing that steers pytest or imports."""
    env = dict(os.environ)
    for var in (
        "PYTHONPATH",
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
        "PYTEST_CURRENT_TEST",
        "PYTHONASYNCIODEBUG",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
    ):
        env.pop(var, None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    logfile: Path | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    log("    $ " + " ".join(cmd))
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=clean_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    if logfile is not None:
        logfile.write_text(proc.stdout)
    return proc


def must(proc: subprocess.CompletedProcess[str], what: str) -> None:
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise SetupError(f"{what} failed (exit {proc.returncode}):\n{tail}")


class SetupError(Exception):
    pass


# --------------------------------------------------------------------------- setup


def fetch_sdist(project: Project, downloads: Path) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    stem_names = {project.name.lower(), project.name.lower().replace("-", "_")}

    def find() -> Path | None:
        for p in downloads.iterdir():
            low = p.name.lower()
            if any(low.startswith(f"{s}-{project.version}.") for s in stem_names):
                return p
        return None

    found = find()
    if found is not None:
        return found
    must(
        run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                "--quiet",
                "-d",
                str(downloads),
                f"{project.name}=={project.version}",
            ]
        ),
        f"pip download {project.name}",
    )
    found = find()
    if found is None:
        raise SetupError(f"sdist of {project.name}=={project.version} not found in {downloads}")
    return found


def extract(sdist: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            zf.extractall(dest)
    else:
        with tarfile.open(sdist) as tf:
            if sys.version_info >= (3, 12):
                tf.extractall(dest, filter="data")
            else:
                tf.extractall(dest)
    (top,) = [p for p in dest.iterdir() if p.is_dir()]
    return top


def find_uv() -> str | None:
    """uv on PATH, or next to the interpreter running this script (e.g. in .venv/bin)."""
    beside = Path(sys.executable).parent / "uv"
    return shutil.which("uv") or (str(beside) if beside.is_file() else None)


def make_venv(venv: Path, python: str) -> Path:
    vpy = venv / "bin" / "python"
    marker = venv / ".compat-python"
    if vpy.exists() and marker.exists() and marker.read_text() == python:
        return vpy
    if venv.exists():
        shutil.rmtree(venv)
    uv = find_uv()
    if uv:
        must(run([uv, "venv", "--quiet", "--python", python, str(venv)]), "uv venv")
    else:
        must(run([python, "-m", "venv", str(venv)]), "python -m venv")
    marker.write_text(python)
    return vpy


def install(vpy: Path, reqs: list[str], logfile: Path) -> None:
    uv = find_uv()
    if uv:
        cmd = [uv, "pip", "install", "--python", str(vpy), *reqs]
    else:
        cmd = [str(vpy), "-m", "pip", "install", "--quiet", *reqs]
    must(run(cmd, logfile=logfile, timeout=1200), "install")


# --------------------------------------------------------------------------- running


@dataclasses.dataclass
class Result:
    counts: dict[str, int]
    outcomes: dict[str, str]  # nodeid-ish -> outcome, from junit xml
    wall: float  # seconds, whole pytest process
    exit_code: int
    summary: str  # pytest's last line
    plugins: str  # pytest's "plugins:" header line
    log: Path
    asyncio_header: bool  # pytest-asyncio's own report header was printed
    settings: dict[str, str]  # effective mode/debug from the report header

    def cell(self) -> str:
        parts = [f"{self.counts[k]} {k}" for k in OUTCOMES if self.counts.get(k)]
        if self.counts.get("warnings"):
            parts.append(f"{self.counts['warnings']} warnings")
        return ", ".join(parts) or "no tests"


def parse_summary(text: str) -> tuple[dict[str, int], str]:
    counts = dict.fromkeys(OUTCOMES, 0)
    line = ""
    for candidate in reversed(text.splitlines()):
        if TIME_RE.search(candidate) and (
            SUMMARY_RE.search(candidate) or "no tests ran" in candidate
        ):
            line = candidate.strip(" =")
            break
    for num, word in SUMMARY_RE.findall(line):
        if word in ("error", "errors"):
            counts["errors"] += int(num)
        elif word in ("warning", "warnings"):
            counts["warnings"] = int(num)
        elif word in counts:
            counts[word] = int(num)
    return counts, line


def parse_settings(text: str, plugin: str) -> dict[str, str]:
    """The effective mode and debug flag from the plugin's report header line.

    pytest-asyncio prints ``asyncio: mode=Mode.STRICT, debug=False, ...``;
    aiotempo prints ``aiotempo X (...): mode=strict, debug=False, ...``.
    Both plugins read the same ini options, so these must agree.
    """
    prefix = "asyncio: mode=" if plugin == "pytest-asyncio" else "aiotempo "
    for line in text.splitlines():
        if line.startswith(prefix) and "mode=" in line:
            found = dict(re.findall(r"\b(mode|debug)=([\w.]+)", line))
            if "mode" in found:
                found["mode"] = found["mode"].removeprefix("Mode.").lower()
            return found
    return {}


def parse_junit(path: Path) -> dict[str, str]:
    """Per-test outcome from a junit xml file.

    A test reported with a setup/teardown error next to its call outcome gets
    "<outcome>+error".
    """
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        tid = f"{case.get('classname', '')}::{case.get('name', '')}"
        kinds = []
        for child in case:
            if child.tag in ("failure",):
                kinds.append("failed")
            elif child.tag == "error":
                kinds.append("error")
            elif child.tag == "skipped":
                kinds.append("xfailed" if child.get("type") == "pytest.xfail" else "skipped")
        outcome = "+".join(kinds) or "passed"
        # the same id can appear twice (call + teardown error); merge
        if tid in out and out[tid] != outcome:
            outcome = f"{out[tid]}+{outcome}"
        out[tid] = outcome
    return out


def has_pytest_config(srcdir: Path) -> bool:
    """Whether the sdist has a pytest configuration file of its own at its top."""
    if (srcdir / "pytest.ini").is_file() or (srcdir / ".pytest.ini").is_file():
        return True
    for name, sections in (
        ("pyproject.toml", ("[tool.pytest.ini_options]", "[tool.pytest]")),
        ("tox.ini", ("[pytest]",)),
        ("setup.cfg", ("[tool:pytest]",)),
    ):
        path = srcdir / name
        if path.is_file():
            lines = {line.strip() for line in path.read_text(errors="replace").splitlines()}
            if any(section in lines for section in sections):
                return True
    return False


def config_args(srcdir: Path, pdir: Path) -> list[str]:
    """Keep pytest's configuration inside the sdist.

    Without a configuration file of its own, pytest would walk up from the sdist and
    find the one of the enclosing checkout (this repository's pyproject.toml when the
    work directory is compat/work).  Such a project gets an empty ini file from
    outside its tree and its own directory as rootdir, as if it were checked out alone.
    """
    if has_pytest_config(srcdir):
        return []
    empty = pdir / "empty-pytest.ini"
    empty.write_text("[pytest]\n")
    return ["-c", str(empty), f"--rootdir={srcdir}"]


def run_suite(
    project: Project,
    vpy: Path,
    srcdir: Path,
    logdir: Path,
    plugin: str,
    timeout: float,
    label: str | None = None,
) -> Result:
    """Run the suite once; plugin is "pytest-asyncio" or "aiotempo"."""
    label = label or plugin
    junit = logdir / f"{label}.xml"
    logfile = logdir / f"{label}.log"
    if junit.exists():
        junit.unlink()
    cmd = [str(vpy), "-m", "pytest"]
    if plugin == "pytest-asyncio":
        cmd += ["-p", "no:aiotempo"]
    cmd += [*COMMON_ARGS, *config_args(srcdir, logdir.parent)]
    cmd += [f"--junitxml={junit}", *project.args, *project.tests]
    start = time.perf_counter()
    try:
        proc = run(cmd, cwd=srcdir, logfile=logfile, timeout=timeout)
        text, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout
        text = (
            out.decode() if isinstance(out, bytes) else out or ""
        ) + f"\nTIMEOUT after {timeout}s\n"
        logfile.write_text(text)
        code = -1
    wall = time.perf_counter() - start
    counts, summary = parse_summary(text)
    plugins = next((ln for ln in text.splitlines() if ln.startswith("plugins:")), "")
    rootdir = next(
        (ln[len("rootdir: ") :] for ln in text.splitlines() if ln.startswith("rootdir: ")), ""
    )
    if rootdir and Path(rootdir).resolve() != srcdir.resolve():
        summary = f"rootdir {rootdir} is outside the sdist; {summary}"
        counts["errors"] += 1  # never a silent match on someone else's configuration
    # pytest-asyncio's pytest_report_header prints "asyncio: mode=Mode.…"; under
    # aiotempo that line must be absent (pytest-asyncio's plugin is blocked).
    asyncio_header = any(ln.startswith("asyncio: mode=Mode.") for ln in text.splitlines())
    return Result(
        counts,
        parse_junit(junit),
        wall,
        code,
        summary,
        plugins,
        logfile,
        asyncio_header,
        parse_settings(text, plugin),
    )


# --------------------------------------------------------------------------- report


@dataclasses.dataclass
class Row:
    project: Project
    ref: Result | None = None
    new: Result | None = None
    note: str = ""
    detail: str = ""
    ref_label: str = "pytest-asyncio"
    new_label: str = "aiotempo"
    ref_flaky: bool = False  # the reference's outcomes changed between rounds
    not_run: bool = False  # not supported on this Python

    @property
    def verdict(self) -> str:
        if self.not_run:
            return "not run"
        if self.ref is None:
            return "SETUP FAILED"
        if self.new is None:
            return "pending"
        if self.ref_flaky:
            return "FLAKY"
        if self.plugin_leak or self.reference_broken or self.settings_diff():
            return "MISMATCH"
        if (
            _outcome_counts(self.ref) == _outcome_counts(self.new)
            and self.ref.outcomes == self.new.outcomes
        ):
            return "match"
        return "MISMATCH"

    def settings_diff(self) -> list[str]:
        """Effective settings both plugins report, where they differ."""
        if self.ref is None or self.new is None:
            return []
        a, b = self.ref.settings, self.new.settings
        return [
            f"{k}: {self.ref_label}={a[k]} {self.new_label}={b[k]}"
            for k in sorted(set(a) & set(b))
            if a[k] != b[k]
        ]

    @property
    def reference_broken(self) -> bool:
        """pytest-asyncio did not run in the reference (`-p no:aiotempo`) run."""
        return self.ref is not None and not self.ref.asyncio_header

    @property
    def plugin_leak(self) -> bool:
        """pytest-asyncio's plugin ran in the aiotempo run (it must be blocked)."""
        return self.new_label == "aiotempo" and self.new is not None and self.new.asyncio_header

    def diff(self) -> list[str]:
        if self.ref is None or self.new is None:
            return []
        lines = []
        for tid in sorted(set(self.ref.outcomes) | set(self.new.outcomes)):
            a = self.ref.outcomes.get(tid, "absent")
            b = self.new.outcomes.get(tid, "absent")
            if a != b:
                lines.append(f"{tid}: {self.ref_label}={a} {self.new_label}={b}")
        return lines


def _outcome_counts(r: Result) -> dict[str, int]:
    return {k: r.counts.get(k, 0) for k in OUTCOMES}


def _same(a: Result, b: Result) -> bool:
    return _outcome_counts(a) == _outcome_counts(b) and a.outcomes == b.outcomes


def combine_rounds(row: Row, refs: list[Result], news: list[Result]) -> None:
    """Pick what the table shows from several rounds of each plugin.

    The reference is pytest-asyncio's first round; if its outcomes change between
    rounds the suite is flaky here and the verdict says so.  The aiotempo column
    shows the first round that differs from the reference (so one bad round is a
    mismatch), else the first round.  Each time is the fastest of the rounds with
    the outcomes shown.
    """
    ref = refs[0]
    new = next((r for r in news if not _same(ref, r)), news[0])
    row.ref_flaky = any(not _same(ref, r) for r in refs[1:])
    ref.wall = min(r.wall for r in refs if _same(ref, r))
    new.wall = min(r.wall for r in news if _same(new, r))
    row.ref, row.new = ref, new
    if row.ref_flaky:
        row.detail = f"{row.ref_label}: outcomes changed between rounds (flaky suite)"
    elif any(not _same(news[0], r) for r in news[1:]):
        row.detail = f"{row.new_label}: outcomes changed between rounds"


def _show_path(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def fmt_time(r: Result | None) -> str:
    return "—" if r is None else f"{r.wall:.1f} s"


def table(rows: list[Row]) -> str:
    a = rows[0].ref_label if rows else "pytest-asyncio"
    b = rows[0].new_label if rows else "aiotempo"
    out = [
        f"| project | version | {a} | {b} | time {a} | time {b} | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        p = row.project
        ref = row.ref.cell() if row.ref else (row.note if row.not_run else "setup failed")
        new = row.new.cell() if row.new else (row.note or "pending")
        out.append(
            f"| {p.name} | {p.version} | {ref} | {new} | {fmt_time(row.ref)} | "
            f"{fmt_time(row.new)} | {row.verdict} |"
        )
    done = [r for r in rows if r.ref is not None and r.new is not None]
    if len(done) > 1:
        verdicts = {r.verdict for r in rows} - {"not run"}
        out.append(
            f"| **total** ({len(done)} projects) | | {_total_cell([r.ref for r in done])} | "
            f"{_total_cell([r.new for r in done])} | "
            f"{sum(r.ref.wall for r in done):.1f} s | {sum(r.new.wall for r in done):.1f} s | "
            f"{'match' if verdicts == {'match'} else 'MISMATCH'} |"
        )
    return "\n".join(out)


def _total_cell(results: list[Result | None]) -> str:
    totals = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        if r is not None:
            for k in OUTCOMES:
                totals[k] += r.counts.get(k, 0)
    return ", ".join(f"{v} {k}" for k, v in totals.items() if v) or "no tests"


def write_results(
    rows: list[Row], path: Path, python: str, versions: str, command: str, rounds: int
) -> None:
    timing = "Times are wall-clock seconds for the whole pytest process" + (
        f", the fastest of {rounds} alternating rounds." if rounds > 1 else "."
    )
    parts = [
        "# Compat results",
        "",
        f"Generated by `{command}` on {time.strftime('%Y-%m-%d')}; "
        f"Python {python}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {versions}.",
        "",
        "Counts come from pytest's summary line; a project matches when the counts "
        "and every test's outcome (from `--junitxml`) are the same under both plugins, "
        "and both report the same effective `asyncio_mode` and debug setting. " + timing,
        "",
        table(rows),
        "",
    ]
    details = [r for r in rows if r.verdict != "match" or r.detail]
    for row in details:
        parts.append(f"## {row.project.name}: {row.verdict}")
        parts.append("")
        for text in (row.note, row.detail):
            if text and text != row.verdict:
                parts.append(text)
                parts.append("")
        for res, label in ((row.ref, row.ref_label), (row.new, row.new_label)):
            if res is not None:
                parts.append(
                    f"- {label}: exit {res.exit_code}, `{res.summary}`, "
                    f"`{res.plugins}`, log `{_show_path(res.log)}`"
                )
        for line in row.settings_diff():
            parts.append(f"- effective setting differs: {line}")
        if row.reference_broken:
            parts.append(
                "- pytest-asyncio's report header is missing from the `-p no:aiotempo` run: "
                "pytest-asyncio did not run there"
            )
        if row.plugin_leak:
            parts.append(
                "- pytest-asyncio's report header (`asyncio: mode=...`) was printed "
                "in the aiotempo run: its plugin was not blocked"
            )
        d = row.diff()
        if d:
            parts.append("")
            parts.append("Tests whose outcome differs:")
            parts.append("")
            parts.extend(f"- `{line}`" for line in d[:50])
            if len(d) > 50:
                parts.append(f"- … and {len(d) - 50} more")
        parts.append("")
    path.write_text("\n".join(parts))


# --------------------------------------------------------------------------- main


def venv_python(vpy: Path) -> tuple[int, ...]:
    proc = subprocess.run(
        [str(vpy), "-c", "import sys; print(*sys.version_info[:3])"],
        env=clean_env(),
        text=True,
        capture_output=True,
        check=True,
    )
    return tuple(int(x) for x in proc.stdout.split())


def venv_versions(vpy: Path) -> str:
    code = (
        "import importlib.metadata as m\n"
        "print(', '.join(f'{d} {m.version(d)}' for d in ('pytest','pytest-asyncio','aiotempo')))"
    )
    proc = subprocess.run(
        [str(vpy), "-c", code], env=clean_env(), text=True, capture_output=True, check=False
    )
    return proc.stdout.strip()


def aiotempo_importable(vpy: Path) -> tuple[bool, str]:
    proc = subprocess.run(
        [str(vpy), "-c", "import aiotempo.plugin"],
        env=clean_env(),
        text=True,
        capture_output=True,
        check=False,
    )
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return proc.returncode == 0, last


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this project (repeatable)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=HERE / "work",
        help="where sdists, venvs and logs go (default: compat/work)",
    )
    ap.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter for the venvs (default: the one running this script)",
    )
    ap.add_argument(
        "--results",
        type=Path,
        default=HERE / "results.md",
        help="Markdown file to write (default: compat/results.md)",
    )
    ap.add_argument(
        "--timeout", type=float, default=600.0, help="seconds allowed per pytest run (default 600)"
    )
    ap.add_argument(
        "--fresh", action="store_true", help="recreate the venvs instead of reusing them"
    )
    ap.add_argument(
        "--aa",
        action="store_true",
        help="A/A check: run pytest-asyncio twice instead of pytest-asyncio vs "
        "aiotempo, to see how stable each suite is on this machine",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        metavar="N",
        help="run each suite N times per plugin, alternating, and report the "
        "fastest wall time (default 1)",
    )
    ap.add_argument("--list", action="store_true", help="list the projects and exit")
    args = ap.parse_args(argv)

    if args.list:
        for p in PROJECTS:
            print(f"{p.name}=={p.version}  deps={list(p.deps)}  args={list(p.args)}")
        return 0

    wanted = {n.lower().replace("_", "-") for n in args.only}
    unknown = wanted - {p.key for p in PROJECTS}
    if unknown:
        ap.error(f"unknown project(s): {', '.join(sorted(unknown))}")
    projects = [p for p in PROJECTS if not wanted or p.key in wanted]

    work: Path = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    python_version = ""
    versions = ""
    setup_broken = False

    for project in projects:
        log(f"== {project.name} {project.version}")
        row = Row(project)
        if args.aa:
            row.new_label = "pytest-asyncio (2nd run)"
        rows.append(row)
        pdir = work / project.key
        logdir = pdir / "logs"
        try:
            sdist = fetch_sdist(project, work / "sdists")
            srcdir = extract(sdist, pdir / "src")
            venv = pdir / "venv"
            if args.fresh and venv.exists():
                shutil.rmtree(venv)
            vpy = make_venv(venv, args.python)
            if project.max_python and venv_python(vpy)[:2] > project.max_python:
                major, minor = project.max_python
                row.not_run = True
                row.note = f"not run: needs Python {major}.{minor} or older"
                log(f"   {row.note}")
                continue
            if logdir.exists():
                shutil.rmtree(logdir)  # no stale logs of an earlier run with more rounds
            logdir.mkdir(parents=True)
            install(
                vpy,
                [str(sdist), *project.deps, PYTEST, PYTEST_ASYNCIO, "-e", str(REPO_ROOT)],
                logdir / "install.log",
            )
        except (SetupError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            row.note = f"setup failed: {exc}"
            log(f"   {row.note}")
            setup_broken = True
            continue

        python_version = subprocess.run(
            [str(vpy), "-c", "import platform; print(platform.python_version())"],
            env=clean_env(),
            text=True,
            capture_output=True,
            check=False,
        ).stdout.strip()
        versions = venv_versions(vpy)

        if not args.aa:
            ok, why = aiotempo_importable(vpy)
            if not ok:
                row.ref = run_suite(project, vpy, srcdir, logdir, "pytest-asyncio", args.timeout)
                log(
                    f"   pytest-asyncio: {row.ref.summary or 'no summary'} "
                    f"(wall {row.ref.wall:.1f}s)"
                )
                row.note = "pending"
                row.detail = f"`import aiotempo.plugin` fails: {why}"
                log(f"   aiotempo: {row.note} ({row.detail})")
                setup_broken = True
                continue

        # Both plugins run in the same venv; with --rounds N they alternate N
        # times, the table shows the fastest wall time of each, and outcomes
        # that change between rounds of the same plugin are reported as flaky.
        new_plugin = "pytest-asyncio" if args.aa else "aiotempo"
        refs: list[Result] = []
        news: list[Result] = []
        for rnd in range(args.rounds):
            suffix = "" if rnd == 0 else f"-round{rnd + 1}"
            refs.append(
                run_suite(
                    project,
                    vpy,
                    srcdir,
                    logdir,
                    "pytest-asyncio",
                    args.timeout,
                    label=f"pytest-asyncio{suffix}",
                )
            )
            log(
                f"   {row.ref_label:<25} {refs[-1].summary or 'no summary'} "
                f"(wall {refs[-1].wall:.1f}s)"
            )
            news.append(
                run_suite(
                    project,
                    vpy,
                    srcdir,
                    logdir,
                    new_plugin,
                    args.timeout,
                    label=("pytest-asyncio-2" if args.aa else "aiotempo") + suffix,
                )
            )
            log(
                f"   {row.new_label:<25} {news[-1].summary or 'no summary'} "
                f"(wall {news[-1].wall:.1f}s)"
            )
        combine_rounds(row, refs, news)
        log(f"   -> {row.verdict}")
        if row.plugin_leak:
            log("      pytest-asyncio's plugin was active in the aiotempo run")
        if row.reference_broken:
            log("      pytest-asyncio did not run in the `-p no:aiotempo` run")
        for line in row.settings_diff():
            log(f"      effective setting differs: {line}")
        for line in row.diff():
            log(f"      {line}")

    md = table(rows)
    print(md)
    print()
    for row in rows:
        extra = "; ".join(t for t in (row.note, row.detail) if t and t != row.verdict)
        print(f"{row.project.name}: {row.verdict}" + (f" ({extra})" if extra else ""))
    if args.results:
        command = "python compat/run.py" + "".join(
            f" {a}" for a in (argv if argv is not None else sys.argv[1:])
        )
        write_results(rows, args.results, python_version, versions, command, args.rounds)
        log(f"wrote {args.results}")
    if any(r.verdict in ("MISMATCH", "FLAKY") for r in rows):
        return 1
    if setup_broken:
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
