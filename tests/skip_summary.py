"""List skipped tests loudly where CI shows them: the GitHub Actions job summary.

A test that skips in CI (no ../shared data, a missing tool) otherwise hides behind a green
check. When ``$GITHUB_STEP_SUMMARY`` is set (GitHub Actions sets it in every step), the
pytest session appends a table of every skipped test and its reason to that file and prints
a ``::warning`` annotation; elsewhere nothing changes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any


def skip_reason(report: Any) -> str:
    """The reason a test report was skipped, without pytest's ``Skipped:`` prefix."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def skip_summary(reports: Iterable[Any]) -> str:
    """Markdown listing every skipped test; empty when none was skipped."""
    rows = sorted({(report.nodeid, skip_reason(report)) for report in reports})
    if not rows:
        return ""
    lines = [f"> [!WARNING]\n> **{len(rows)} tests skipped** in this job: they checked nothing "
             "here.\n", "| skipped test | reason |", "|:--|:--|"]
    for nodeid, reason in rows:
        cell = reason.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{nodeid}` | {cell} |")
    return "\n".join(lines) + "\n"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Append the skipped tests to the GitHub job summary and annotate the run."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    skipped = terminalreporter.stats.get("skipped", [])
    text = skip_summary(skipped)
    if not path or not text:
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)
    count = len({report.nodeid for report in skipped})
    terminalreporter.write_line(
        f"::warning title=tests skipped::{count} tests skipped; see the job summary")
