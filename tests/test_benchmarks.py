"""The benchmark scripts: each answers ``--help`` with its usage, and runs nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflow_steps import ROOT

SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def test_there_are_benchmark_scripts() -> None:
    assert SCRIPTS, "no script under benchmarks/"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help_prints_usage_and_exits(script: Path, tmp_path: Path) -> None:
    # the timeout only stops a script that ignores --help and starts benchmarking
    result = subprocess.run([sys.executable, str(script), "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:"), result.stdout[:500]
    assert not list(tmp_path.iterdir()), "--help wrote files"
