"""End-to-end pull-request simulation with real git, real dvc and the workflow's own steps.

A temporary "origin" repository holds a copy of the project whose ``fetch.source`` is a sample
of the shared TMDB data; ``main`` is committed after the workflow's repro step ran (as a push
to main would). Each pull request is a fresh clone of its branch with the DVC cache restored
(as ``actions/cache`` does), where the ``source``, ``repro`` and ``report`` steps are read from
``.github/workflows/ci.yml`` and run under bash with a controlled environment; the comment
goes to a loopback fake of the GitHub API.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import SHARED_MOVIES, require_shared_movies
from tests.github_fake import FakeGitHub, pr_event
from tests.workflow_steps import ROOT, bash_command, find_step, load_workflow
from tmdb_genres.ci import report as rp

pytestmark = pytest.mark.e2e

SAMPLE_SIZE = 1500
REPO = "octo/tmdb-genres"
# What the project copy needs to run the pipeline (never the data: that stays in ../shared).
PROJECT_FILES = ("src", "params.yaml", "dvc.yaml", "pyproject.toml", ".dvcignore", ".gitignore",
                 ".github", ".dvc/config", ".dvc/.gitignore", ".dvc/plots",
                 "metrics/refresh.json")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False,
                            timeout=600)
    if check and result.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def git(cwd: Path, *args: str) -> str:
    return _run(["git", *args], cwd).stdout


def write_sample(path: Path, size: int = SAMPLE_SIZE) -> None:
    """Every k-th movie of the shared snapshot, so the sample spans the whole file."""
    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        lines = [line for line in handle if line.strip()]
    step = max(1, len(lines) // size)
    with gzip.open(path, "wt", encoding="utf-8") as out:
        out.writelines(lines[::step][:size])


def set_param(params: Path, section: str, key: str, value: str) -> None:
    """Edit one ``key:`` line inside ``section:`` of params.yaml, keeping every comment."""
    text = params.read_text(encoding="utf-8")
    pattern = re.compile(
        rf"(^{section}:\n(?:[ #].*\n|\n)*?  {key}:)[ \t]*[^#\n]*?([ \t]*(?:#.*)?$)", re.M)
    new, count = pattern.subn(rf"\g<1> {value}\g<2>", text, count=1)
    assert count == 1, f"{section}.{key} not found in params.yaml"
    params.write_text(new, encoding="utf-8")


def point_fetch_at(params: Path, source: Path) -> None:
    """Set ``fetch.source`` (and ``fetch.watch``, the path dvc watches, when present)."""
    set_param(params, "fetch", "source", str(source))
    fetch = yaml.safe_load(params.read_text(encoding="utf-8"))["fetch"]
    if "watch" in fetch:
        set_param(params, "fetch", "watch", str(source))


@dataclass
class StepRunner:
    """Runs steps of the CI workflow's pipeline job like a GitHub runner would."""

    workflow: dict[str, Any]
    base_env: dict[str, str]

    def run(self, step_id: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
        job_name, step = find_step(self.workflow, step_id)
        job = self.workflow["jobs"][job_name]
        merged = dict(self.base_env)
        for scope in (self.workflow.get("env", {}), job.get("env", {}), step.get("env", {})):
            for key, value in scope.items():  # expressions are GitHub's: given below instead
                merged[key] = "" if "${{" in str(value) else str(value)
        merged.update(env)
        return _run([*bash_command(step), "-c", step["run"]], cwd, env=merged, check=False)


@dataclass
class Origin:
    path: Path
    cache: Path
    sample: Path
    runner: StepRunner
    github: FakeGitHub


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def runner_env(tmp: Path, clone: Path, github: FakeGitHub,
               event: dict[str, Any] | None) -> dict[str, str]:
    """The GITHUB_* / RUNNER_* variables a runner sets, pointing at temp files and the fake."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {
        "RUNNER_TEMP": str(tmp),
        "GITHUB_OUTPUT": str(tmp / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp / "summary.md"),
        "GITHUB_API_URL": github.url,
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_RUN_ID": "4242",
        "GITHUB_TOKEN": github.token,
        "PYTHONPATH": str(clone / "src"),  # the clone's code, as `pip install -e .` would give
        "BASE_REF": "origin/main",
    }
    if event is not None:
        (tmp / "event.json").write_text(json.dumps(event), encoding="utf-8")
        env["GITHUB_EVENT_PATH"] = str(tmp / "event.json")
    return env


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub) -> Origin:
    """The origin repository: ``main`` after the workflow's repro step, with its DVC cache."""
    require_shared_movies()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    tmp = tmp_path_factory.mktemp("ci-sim")
    sample = tmp / "sample" / "movies.jsonl.gz"
    sample.parent.mkdir()
    write_sample(sample)

    repo = tmp / "origin"
    for name in PROJECT_FILES:
        src = ROOT / name
        if not src.exists():
            continue
        dst = repo / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dst)
    point_fetch_at(repo / "params.yaml", sample)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "ci@example.com")
    git(repo, "config", "user.name", "CI simulation")
    _run([sys.executable, "-m", "dvc", "config", "--local", "core.analytics", "false"], repo)

    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("GITHUB_", "RUNNER_", "DVC_", "PYTEST_"))}
    base_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base_env.get('PATH', '')}"
    base_env["DVC_NO_ANALYTICS"] = "1"
    runner = StepRunner(load_workflow(repo / ".github" / "workflows" / "ci.yml"), base_env)

    # a push to main: the same steps, then the result is committed (lock + metrics)
    env = runner_env(tmp / "runner-main", repo, github, {"ref": "refs/heads/main"})
    for step_id in ("source", "repro"):
        result = runner.run(step_id, repo, env)
        assert result.returncode == 0, f"{step_id} on main:\n{result.stdout}\n{result.stderr}"
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "pipeline on the sample")
    return Origin(repo, repo / ".dvc" / "cache", sample, runner, github)


def open_pull_request(origin: Origin, branch: str, edit: Any, tmp: Path) -> Path:
    """Commit ``edit`` on a branch of origin; return a CI clone with the DVC cache restored."""
    git(origin.path, "checkout", "-q", "-b", branch, "main")
    edit(origin.path)
    git(origin.path, "commit", "-q", "--allow-empty", "-am", f"{branch}: edit")
    git(origin.path, "checkout", "-q", "main")
    clone = tmp / f"clone-{branch}"
    git(tmp, "clone", "-q", "--branch", branch, str(origin.path), str(clone))
    _run([sys.executable, "-m", "dvc", "config", "--local", "core.analytics", "false"], clone)
    shutil.copytree(origin.cache, clone / ".dvc" / "cache")  # what actions/cache restores
    return clone


def run_pull_request(origin: Origin, clone: Path, number: int) -> tuple[str, rp.StageRuns]:
    """Run the pipeline job's steps for PR ``number``; return (comment, stages)."""
    tmp = clone.parent / f"runner-{clone.name}"
    env = runner_env(tmp, clone, origin.github, pr_event(REPO, number))
    for step_id in ("source", "repro", "collect-plots", "report"):
        result = origin.runner.run(step_id, clone, env)
        assert result.returncode == 0, f"{step_id}:\n{result.stdout}\n{result.stderr}"
        if step_id == "source":
            assert "available=true" in (tmp / "output").read_text()
    # what the upload step sends: the plots and the base-vs-head plots page
    assert (tmp / "artifacts" / "plots-vs-base" / "index.html").is_file()
    assert any((tmp / "artifacts" / "plots").iterdir())
    assert f"report: created the comment on {REPO}#{number}" in result.stdout
    comments = origin.github.comments[(REPO, number)]
    assert len(comments) == 1
    body = comments[0]["body"]
    assert body == (tmp / "report.md").read_text(encoding="utf-8")
    assert body in (tmp / "summary.md").read_text(encoding="utf-8")
    always = rp.read_always_changed(clone / "dvc.yaml")
    stages = rp.parse_repro_log((tmp / "dvc-repro.log").read_text(encoding="utf-8"), always)
    return body, stages


def test_threshold_pull_request_reruns_evaluate_only(origin: Origin, tmp_path: Path) -> None:
    def edit(repo: Path) -> None:
        set_param(repo / "params.yaml", "evaluate", "threshold", "0.6")
        set_param(repo / "params.yaml", "evaluate", "mode", "fixed")

    clone = open_pull_request(origin, "threshold", edit, tmp_path)
    body, stages = run_pull_request(origin, clone, 7)

    assert stages.ran == ["evaluate"], stages
    assert "evaluate" not in stages.reused and {"prepare", "train"} <= set(stages.reused)
    assert "- **ran**: `evaluate`" in body
    base = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))["evaluate"]
    assert f"| `evaluate.threshold` | {base['threshold']:.4f} | 0.6000 |" in body
    if base["mode"] != "fixed":
        assert f"| `evaluate.mode` | `{base['mode']}` | `fixed` |" in body
    assert "### Headline metrics (test)" in body
    micro = re.search(r"^\| \*\*test\.micro_f1\*\* \| ([\d.]+) \| ([\d.]+) \| ([-+][\d.]+) ",
                      body, re.M)
    assert micro, body
    assert float(micro.group(3)) != 0.0 and micro.group(1) != micro.group(2)
    assert "No metric changes" not in body
    assert "`dvc repro` changed `dvc.lock`" in body  # the PR did not commit its new lock
    assert "https://github.com/octo/tmdb-genres/actions/runs/4242" in body


def test_pull_request_that_changes_nothing_reports_no_metric_changes(origin: Origin,
                                                                      tmp_path: Path) -> None:
    def edit(repo: Path) -> None:
        (repo / "NOTES.md").write_text("A documentation-only change.\n", encoding="utf-8")
        git(repo, "add", "NOTES.md")

    clone = open_pull_request(origin, "docs", edit, tmp_path)
    body, stages = run_pull_request(origin, clone, 8)

    assert stages.ran == [], stages
    assert "**No metric changes** against the base." in body
    assert "No param changes." in body
    assert "- **ran**: none" in body
    assert "The committed `dvc.lock` is up to date." in body


def test_without_data_the_source_step_pulls_live_or_skips(origin: Origin, tmp_path: Path) -> None:
    """No ../shared, no DVC remote: TMDB_API_TOKEN pulls a live snapshot; without it, a notice."""
    from tmdb_genres.sources import emulator

    with gzip.open(origin.sample, "rt", encoding="utf-8") as handle:
        movies = [json.loads(line) for line in handle][:200]
    server, _ = emulator.start(emulator.EmulatorConfig(movies=movies))
    try:
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(origin.path), str(clone))
        missing = tmp_path / "runner-home" / "shared" / "movies.jsonl.gz"
        point_fetch_at(clone / "params.yaml", missing)

        env = runner_env(tmp_path / "runner-live", clone, origin.github, pr_event(REPO, 9))
        env.update(TMDB_API_TOKEN=emulator.DEFAULT_TOKEN, TMDB_API_BASE=server.base_url)
        result = origin.runner.run("source", clone, env)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        assert "available=true" in (tmp_path / "runner-live" / "output").read_text()
        with gzip.open(missing, "rt", encoding="utf-8") as handle:
            pulled = [json.loads(line) for line in handle]
        assert sorted(m["id"] for m in pulled) == sorted(m["id"] for m in movies)
        assert "pulled live" in (tmp_path / "runner-live" / "summary.md").read_text()

        missing.unlink()
        env = runner_env(tmp_path / "runner-none", clone, origin.github, pr_event(REPO, 9))
        result = origin.runner.run("source", clone, env)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        assert "available=false" in (tmp_path / "runner-none" / "output").read_text()
        assert "::notice title=tmdb-genres pipeline skipped::" in result.stdout
        assert "pipeline and report are skipped" in (tmp_path / "runner-none" /
                                                     "summary.md").read_text()
    finally:
        server.shutdown()
        server.server_close()
