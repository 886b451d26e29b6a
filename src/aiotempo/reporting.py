"""aiotempo's end-of-run summary: what users must see, delivered without Python's warnings.

Suites run with ``filterwarnings = error``, so notices (deprecated usage, later diagnostics at
level ``warn``) are collected here and printed in one section at the end of the run.
"""

from __future__ import annotations

from collections import Counter

import pytest

from . import savings

#: The name of the timeline report's plugin, registered only when a report is written: the
#: report's code is loaded only then.
TIMELINE_PLUGIN = "aiotempo-timeline"

_NOTICES = pytest.StashKey[dict[str, list[str]]]()


def notice(config: pytest.Config, message: str, where: str) -> None:
    """Record ``message`` about ``where`` (a test id or a fixture's location)."""
    places = config.stash.setdefault(_NOTICES, {}).setdefault(message, [])
    if where not in places:
        places.append(where)


_EXCLUSIVE = pytest.StashKey["Counter[str]"]()
_FINDINGS = pytest.StashKey[list[tuple[str, str, str]]]()


def finding(config: pytest.Config, kind: str, nodeid: str, text: str) -> None:
    """Record what a diagnostic check found about a test (shown at level ``warn``, and on the
    timeline report if one is written)."""
    config.stash.setdefault(_FINDINGS, []).append((kind, nodeid, text))
    if config.pluginmanager.has_plugin(TIMELINE_PLUGIN):
        from . import timeline

        timeline.add_finding(config, nodeid, kind, text)


def count_exclusive(config: pytest.Config, reasons: list[str]) -> None:
    """Count a test that ran exclusively under ``--asyncio-concurrency``, by reason."""
    config.stash.setdefault(_EXCLUSIVE, Counter()).update(reasons)


def write_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    notices = config.stash.get(_NOTICES, {})
    exclusive = config.stash.get(_EXCLUSIVE, Counter())
    findings = config.stash.get(_FINDINGS, [])
    times = savings.breakdown(config)
    if not notices and not exclusive and not findings and times is None:
        return
    terminalreporter.section("aiotempo")
    for label, text in times.lines if times is not None else ():
        terminalreporter.line(f"{label}: {text}")
    for kind, nodeid, text in findings:
        terminalreporter.line(f"{kind}: {nodeid}: {text}")
    if exclusive:
        terminalreporter.line("why not concurrent: tests that ran exclusively, by reason:")
        for reason, count in exclusive.most_common():
            terminalreporter.line(f"  {count:5d}  {reason}")
    for message, places in notices.items():
        shown = ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3 else "")
        terminalreporter.line(f"{message}: {shown}")
