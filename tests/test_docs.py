"""The guide's samples run: every complete test file in docs/*.md and README.md is a test here.

The conventions, which docs/index.md explains to readers:

- A fenced block whose first line is a comment naming a file (``# test_loop.py``,
  ``# conftest.py``, ``# pytest.ini``) is that whole file.
- Each named ``test_*.py`` block is run with pytester, in-process, next to the other named files
  (``pytest.ini``, ``conftest.py``, helper modules) that come before it in its own section or
  in an enclosing one; a nearer file of the same name replaces a farther one. Without a
  ``pytest.ini`` the run gets ``filterwarnings = error``, and an ini that does not mention
  ``filterwarnings`` gets it appended: warnings are errors, as in this project's own tests.
- Comment lines right below the name declare the outcome: ``# expect: passed=2 failed=1``
  (also ``errors``, ``skipped``, ``xfailed``, ``xpassed``, ``warnings``, ``deselected`` and
  ``exit`` for pytest's exit code; without it, at least one test passes and nothing else
  happens), and ``# pytest-asyncio: errors=1`` for the outcome under ``-p no:aiotempo``.
- A ``console`` block that follows a test file in the same section, as the next fenced block,
  and starts with ``$ pytest ARGS`` is that file's run: ARGS are passed to pytest, and each
  other line must appear in the output, in order (``...`` stands for anything, and any run of
  spaces matches any other).
- An unnamed ``python`` block is an excerpt of a file in the repository: the last link in the
  prose just before it points to that file, which holds the excerpt's lines in order (``...``
  lines mark what was left out). An unnamed ``ini`` block after such a link is checked the same
  way.
"""

from __future__ import annotations

import gc
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<lang>[\w+-]*)\s*$")
HEADING = re.compile(r"^(?P<level>#{1,6})\s+\S")
NAME = re.compile(r"^#\s*(?P<name>[\w./-]+\.(?:py|ini))\s*$")
DIRECTIVE = re.compile(r"^#\s*(?P<key>expect|pytest-asyncio):\s*(?P<value>.*?)\s*$")
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
OUTCOMES = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed", "warnings")
EXPECT_KEYS = (*OUTCOMES, "deselected", "exit")
DEFAULT_INI = "[pytest]\nfilterwarnings = error\n"


@dataclass
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    #: The headings enclosing the block, outermost first, as (level, line) pairs.
    section: tuple[tuple[int, int], ...]
    #: The prose between the previous block or heading and this block.
    prose: str

    @property
    def name(self) -> str | None:
        first = self.text.split("\n", 1)[0]
        match = NAME.match(first)
        return match["name"] if match and self.lang in ("python", "ini") else None

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"


@dataclass
class Example:
    test: Block
    files: dict[str, str]
    args: list[str] = field(default_factory=list)
    expected_output: list[str] = field(default_factory=list)
    expect: dict[str, int] | None = None
    pytest_asyncio: dict[str, int] | None = None

    @property
    def id(self) -> str:
        return f"{self.test.doc.name}:{self.test.name}"


def parse(doc: Path) -> list[Block]:
    blocks: list[Block] = []
    section: list[tuple[int, int]] = []
    prose: list[str] = []
    fence: str | None = None
    lang, start, body = "", 0, []
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        if fence is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                text = "\n".join(body) + "\n"
                blocks.append(Block(doc, start, lang, text, tuple(section), "\n".join(prose)))
                fence, prose = None, []
            else:
                body.append(line)
            continue
        opening = FENCE.match(line)
        heading = HEADING.match(line)
        if opening:
            fence, lang, start, body = opening["fence"], opening["lang"], number, []
        elif heading:
            level = len(heading["level"])
            while section and section[-1][0] >= level:
                section.pop()
            section.append((level, number))
            prose = []
        else:
            prose.append(line)
    assert fence is None, f"{doc}:{start}: unclosed code block"
    return blocks


def parse_outcome(value: str, where: str) -> dict[str, int]:
    outcome = {}
    for item in re.split(r"[,\s]+", value.strip()):
        key, _, number = item.partition("=")
        assert key in EXPECT_KEYS and number.isdigit(), f"{where}: cannot read outcome {item!r}"
        outcome[key] = int(number)
    return outcome


def in_scope(support: Block, test: Block) -> bool:
    """Whether ``support`` sits in ``test``'s section or in one that encloses it."""
    return test.section[: len(support.section)] == support.section


def is_test_file(name: str) -> bool:
    return Path(name).name.startswith("test_")


def examples(doc: Path) -> list[Example]:
    blocks = parse(doc)
    found = []
    for index, block in enumerate(blocks):
        name = block.name
        if name is None or not is_test_file(name) or block.lang != "python":
            continue
        files = {
            support.name: support.text
            for support in blocks[:index]
            if support.name and not is_test_file(support.name) and in_scope(support, block)
        }
        files[name] = block.text
        example = Example(block, files)
        for line in block.text.splitlines()[1:]:
            directive = DIRECTIVE.match(line)
            if directive is None:
                break
            outcome = parse_outcome(directive["value"], block.where)
            if directive["key"] == "expect":
                example.expect = outcome
            else:
                example.pytest_asyncio = outcome
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if (
            following is not None
            and following.lang == "console"
            and following.section == block.section
            and following.text.startswith("$ pytest")
        ):
            command, *output = following.text.splitlines()
            example.args = shlex.split(command[2:])[1:]
            example.expected_output = [
                line.strip() for line in output if line.strip() and line.strip() != "..."
            ]
        found.append(example)
    return found


ALL_BLOCKS = [block for doc in DOCUMENTS for block in parse(doc)]
EXAMPLES = [example for doc in DOCUMENTS for example in examples(doc)]


def excerpt_source(block: Block) -> Path | None:
    """The file an unnamed block is an excerpt of: the last link just before the block."""
    links = LINK.findall(block.prose)
    if not links or block.name is not None or block.lang not in ("python", "ini"):
        return None
    target = links[-1].split("#")[0]
    if "://" in target:
        return None
    return (block.doc.parent / target).resolve()


EXCERPTS = [block for block in ALL_BLOCKS if excerpt_source(block) is not None]


def run(pytester: pytest.Pytester, example: Example, *extra: str) -> pytest.RunResult:
    for name, text in example.files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    ini = example.files.get("pytest.ini", DEFAULT_INI)
    if "filterwarnings" not in ini:
        assert "[pytest]" in ini, f"{example.test.where}: pytest.ini without a [pytest] section"
        ini = ini.rstrip("\n") + "\nfilterwarnings = error\n"
    (pytester.path / "pytest.ini").write_text(ini)
    pytester.syspathinsert()
    return pytester.runpytest(*example.args, *extra)


def check_outcome(result: pytest.RunResult, expected: dict[str, int] | None, where: str) -> None:
    output = "\n".join(result.outlines + result.errlines)
    if expected is None:
        outcomes = result.parseoutcomes()
        assert result.ret == 0 and set(outcomes) == {"passed"}, f"{where}: not all passed\n{output}"
        return
    expected = dict(expected)
    exit_code = expected.pop("exit", None)
    if exit_code is not None:
        assert result.ret == exit_code, f"{where}: expected exit code {exit_code}\n{output}"
    if expected:
        result.assert_outcomes(**expected)


def check_output(result: pytest.RunResult, expected_lines: list[str], where: str) -> None:
    output = [" ".join(line.split()) for line in result.outlines + result.errlines]
    position = 0
    for expected in expected_lines:
        pieces = [" ".join(piece.split()) for piece in expected.split("...")]
        pattern = re.compile(".*".join(re.escape(piece) for piece in pieces))
        for index in range(position, len(output)):
            if pattern.search(output[index]):
                position = index + 1
                break
        else:
            shown = "\n".join(output)
            pytest.fail(f"{where}: {expected!r} is not in the output (in order):\n{shown}")


def collect_garbage(report: bool) -> None:
    """Finalize what an in-process run left behind, so that it is not blamed on the next run.

    With ``report``, what cannot be finalized cleanly (a coroutine never awaited, an unclosed
    loop) fails the current test, as a warning; otherwise it is dropped.
    """
    if report:
        gc.collect()
        return
    hook = sys.unraisablehook
    sys.unraisablehook = lambda unraisable: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_doc_example(pytester: pytest.Pytester, example: Example) -> None:
    result = run(pytester, example)
    collect_garbage(report=True)
    where = example.test.where
    check_outcome(result, example.expect, where)
    check_output(result, example.expected_output, where)


COMPARED = [example for example in EXAMPLES if example.pytest_asyncio is not None]


@pytest.mark.parametrize("example", COMPARED, ids=[example.id for example in COMPARED])
def test_doc_example_under_pytest_asyncio(pytester: pytest.Pytester, example: Example) -> None:
    pytest.importorskip("pytest_asyncio")
    result = run(pytester, example, "-p", "no:aiotempo")
    collect_garbage(report=False)  # pytest-asyncio's leaks are not ours to report
    result.stdout.fnmatch_lines(["asyncio: mode=*"])  # pytest-asyncio really ran it
    check_outcome(result, example.pytest_asyncio, example.test.where)


@pytest.mark.parametrize("block", EXCERPTS, ids=[block.where for block in EXCERPTS])
def test_excerpt_matches_its_file(block: Block) -> None:
    source = excerpt_source(block)
    assert source is not None and source.is_file(), f"{block.where}: {source} is not a file"
    lines = [line.strip() for line in source.read_text().splitlines()]
    position = 0
    for line in block.text.splitlines():
        if not line.strip() or line.strip() == "...":
            continue
        try:
            position = lines.index(line.strip(), position) + 1
        except ValueError:
            pytest.fail(f"{block.where}: {line.strip()!r} is not in {source} (in this order)")


def test_every_python_sample_is_a_test_file_or_an_excerpt() -> None:
    loose = [
        block.where
        for block in ALL_BLOCKS
        if block.lang == "python" and block.name is None and excerpt_source(block) is None
    ]
    assert not loose, f"name these blocks (# test_x.py) or link the file they come from: {loose}"


def test_directives_are_right_below_a_test_file_name() -> None:
    misplaced = []
    for block in ALL_BLOCKS:
        lines = block.text.splitlines()
        found = [number for number, line in enumerate(lines) if DIRECTIVE.match(line)]
        header = list(range(1, len(found) + 1))
        if found and (not is_test_file(block.name or "") or found != header):
            misplaced.append(block.where)
    assert not misplaced, f"# expect: belongs right below a # test_*.py name: {misplaced}"


def test_example_names_are_unique_per_document() -> None:
    ids = [example.id for example in EXAMPLES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def anchors(doc: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``doc``."""
    found: set[str] = set()
    fence: str | None = None
    for line in doc.read_text().splitlines():
        opening = FENCE.match(line)
        if fence is not None:
            if line.strip().startswith(fence) and line.strip().strip(fence[0]) == "":
                fence = None
        elif opening:
            fence = opening["fence"]
        elif HEADING.match(line):
            slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            number = 0
            while (f"{slug}-{number}" if number else slug) in found:
                number += 1
            found.add(f"{slug}-{number}" if number else slug)
    return found


def test_relative_links_point_to_existing_files_and_headings() -> None:
    broken = []
    for doc in DOCUMENTS:
        for target in LINK.findall(doc.read_text()):
            path, _, anchor = target.partition("#")
            if "://" in path:
                continue
            linked = (doc.parent / path) if path else doc
            if not linked.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken
