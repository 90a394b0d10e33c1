"""Read the GitHub Actions workflows so tests check, and run, exactly what CI runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI_WORKFLOW = WORKFLOWS / "ci.yml"

# GitHub's default shell for `run:` on Linux runners.
DEFAULT_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)


def workflow_files() -> list[Path]:
    """Every workflow file of the project."""
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def load_workflow(path: Path = CI_WORKFLOW) -> dict[str, Any]:
    """A workflow as a mapping; PyYAML reads the key ``on`` as True, so it is renamed back."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def find_step(workflow: dict[str, Any], step_id: str) -> tuple[str, dict[str, Any]]:
    """``(job name, step)`` of the step with this ``id`` in any job."""
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            if step.get("id") == step_id:
                return job_name, step
    raise KeyError(f"no step with id {step_id!r} in the workflow")


def run_scripts(workflow: dict[str, Any]) -> list[tuple[str, str]]:
    """``(job/step label, script)`` for every ``run:`` step."""
    scripts = []
    for job_name, job in workflow["jobs"].items():
        for index, step in enumerate(job.get("steps", [])):
            if "run" in step:
                label = f"{job_name}/{step.get('id') or step.get('name') or index}"
                scripts.append((label, step["run"]))
    return scripts


def without_expressions(script: str) -> str:
    """The script with each ``${{ … }}`` replaced by a placeholder word (as actionlint does)."""
    return _EXPRESSION.sub("EXPR", script)


def bash_command(step: dict[str, Any]) -> list[str]:
    """The interpreter a step's script runs under (only bash is supported here)."""
    shell = step.get("shell", "bash")
    if shell != "bash":
        raise ValueError(f"step {step.get('id')!r} uses shell {shell!r}; tests run bash only")
    return DEFAULT_BASH
