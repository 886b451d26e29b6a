"""Shared helpers: every test here is a black-box pytester run of a small suite."""

from __future__ import annotations

import textwrap

import hypothesis  # noqa: F401  (imported once here: each in-process pytester run would re-import it)
import pytest


@pytest.fixture
def suite(pytester: pytest.Pytester):
    """Write test files (name -> source) and an optional ini; return a runner of pytest."""

    def write(files: dict[str, str] | str, ini: str = "") -> pytest.Pytester:
        if isinstance(files, str):
            files = {"test_suite.py": files}
        for name, source in files.items():
            path = pytester.path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
        ini = textwrap.dedent(ini)
        if "filterwarnings" not in ini:
            ini += "\nfilterwarnings = error"
        pytester.makeini("[pytest]\n" + ini)
        return pytester

    return write
