"""End-to-end snapshot refresh: the refresh workflow's own steps, real git, real dvc.

A bare "origin" repository holds ``main``: a copy of the project whose fetch pulls a sample of
the shared TMDB data from the loopback TMDB emulator (with faults), released up to
``MAIN_LTE``, committed after ``dvc repro``. Each refresh run is a fresh clone of ``main`` with
the DVC cache restored (as ``actions/cache`` does), where the ``token`` and ``refresh`` steps are
read from ``.github/workflows/refresh.yml`` and run under bash; the branch is pushed to the bare
origin and the pull request and comment go to the loopback fake of the GitHub API.
"""

from __future__ import annotations

import gzip
import json
import os
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
from tests.github_fake import FakeGitHub
from tests.test_ci_simulation import PROJECT_FILES, StepRunner, set_param
from tests.workflow_steps import ROOT, WORKFLOWS, find_step, load_workflow
from tmdb_genres.ci import refresh
from tmdb_genres.sources import emulator

pytestmark = pytest.mark.e2e

SAMPLE_SIZE = 1200
MAIN_LTE = "2019-12-31"
NEW_LTE = "2022-12-31"
REPO = "octo/tmdb-genres"
FAULTS = ("429", "500", "502", "503", "truncate", "drop")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False,
                            timeout=900)
    if result.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def git(cwd: Path, *args: str) -> str:
    return _run(["git", *args], cwd)


def sample_movies(size: int = SAMPLE_SIZE) -> list[dict[str, Any]]:
    """Every k-th movie of the shared snapshot (about ``size``), so the sample spans every year
    and every id range (the newest movies have the highest ids)."""
    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        movies = [json.loads(line) for line in handle if line.strip()]
    return movies[:: max(1, -(-len(movies) // size))]


@dataclass
class World:
    """The bare origin, the DVC cache of main, the emulator, the GitHub fake and the runner."""

    tmp: Path
    bare: Path
    cache: Path
    movies: list[dict[str, Any]]
    server: emulator.EmulatorServer
    github: FakeGitHub
    runner: StepRunner
    runs: int = 0

    def clone(self, name: str) -> Path:
        """A checkout of main as actions/checkout gives it, with the DVC cache restored."""
        clone = self.tmp / name
        git(self.tmp, "clone", "-q", str(self.bare), str(clone))
        _run([sys.executable, "-m", "dvc", "config", "--local", "core.analytics", "false"], clone)
        shutil.copytree(self.cache, clone / ".dvc" / "cache")
        return clone

    def env(self, clone: Path, **extra: str) -> dict[str, str]:
        """What the runner sets (GITHUB_*, RUNNER_TEMP) plus the step's secrets and inputs."""
        self.runs += 1
        temp = self.tmp / f"runner-{self.runs}"
        temp.mkdir()
        env = {
            "RUNNER_TEMP": str(temp), "GITHUB_OUTPUT": str(temp / "output"),
            "GITHUB_STEP_SUMMARY": str(temp / "summary.md"), "GITHUB_API_URL": self.github.url,
            "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": REPO,
            "GITHUB_RUN_ID": "77", "GITHUB_TOKEN": self.github.token,
            "BASE_BRANCH": "main", "TMDB_API_BASE": self.server.base_url,
            "PYTHONPATH": str(clone / "src"),
        }
        env.update(extra)
        return env

    def run_workflow(self, clone: Path, env: dict[str, str]) -> tuple[str, str]:
        """The token check, then (when it says so) the refresh step; (stdout, output file)."""
        token = self.runner.run("token", clone, env)
        assert token.returncode == 0, token.stdout + token.stderr
        outputs = Path(env["GITHUB_OUTPUT"]).read_text(encoding="utf-8")
        _, step = find_step(self.runner.workflow, "refresh")
        assert step["if"] == "steps.token.outputs.available == 'true'"
        if "available=true" not in outputs:
            return token.stdout, outputs
        result = self.runner.run("refresh", clone, env)
        assert result.returncode == 0, f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        return result.stdout, outputs


def branch_exists(bare: Path, branch: str) -> bool:
    return subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                          cwd=bare, capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_shared_movies()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    tmp = tmp_path_factory.mktemp("refresh")
    movies = sample_movies()
    server, _ = emulator.start(emulator.EmulatorConfig(
        movies=movies, fault_rate=0.1, fault_kinds=FAULTS, seed=3, retry_after=0))
    try:
        work = tmp / "main-work"
        for name in PROJECT_FILES:
            src, dst = ROOT / name, work / name
            if not src.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst,
                                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy2(src, dst)
        params = work / "params.yaml"
        for key, value in {"source": "tmdb", "watch": refresh.LIVE_WATCH,
                           "snapshot": f'"{MAIN_LTE}"', "release_date_lte": f'"{MAIN_LTE}"',
                           "requests_per_second": "0", "max_retries": "10"}.items():
            set_param(params, "fetch", key, value)
        git(work, "init", "-q", "-b", "main")
        git(work, "config", "user.email", "dev@example.com")
        git(work, "config", "user.name", "Developer")
        _run([sys.executable, "-m", "dvc", "config", "--local", "core.analytics", "false"], work)

        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("GITHUB_", "RUNNER_", "DVC_", "PYTEST_", "TMDB_"))}
        base_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base_env.get('PATH', '')}"
        base_env["DVC_NO_ANALYTICS"] = "1"
        _run([sys.executable, "-m", "dvc", "repro"], work,
             env={**base_env, "TMDB_API_BASE": server.base_url,
                  "TMDB_API_TOKEN": emulator.DEFAULT_TOKEN, "PYTHONPATH": str(work / "src")})
        git(work, "add", ".")
        git(work, "commit", "-q", "-m", f"pipeline on the sample released up to {MAIN_LTE}")
        bare = tmp / "origin.git"
        git(tmp, "clone", "-q", "--bare", str(work), str(bare))

        runner = StepRunner(load_workflow(WORKFLOWS / "refresh.yml"), base_env)
        with FakeGitHub() as github:
            github.branch_exists = lambda repo, branch: branch_exists(bare, branch)
            yield World(tmp, bare, work / ".dvc" / "cache", movies, server, github, runner)
    finally:
        server.shutdown()
        server.server_close()


def test_refresh_opens_one_pull_request_then_updates_it(world: World) -> None:
    expected_new = sum(1 for m in world.movies
                       if MAIN_LTE < (m.get("release_date") or "") <= NEW_LTE)
    assert expected_new > 50

    # first run: a pull request and one comment
    clone = world.clone("first")
    env = world.env(clone, TMDB_API_TOKEN=emulator.DEFAULT_TOKEN, RELEASE_DATE_LTE=NEW_LTE)
    stdout, _ = world.run_workflow(clone, env)
    assert f"refresh: created pull request {REPO}#1" in stdout, stdout[-3000:]
    assert world.server.stats.faults > 0  # the pull survived injected faults
    pulls = world.github.open_pulls(REPO)
    assert len(pulls) == 1
    pull = pulls[0]
    branch = f"refresh/{NEW_LTE}"
    assert pull["head"]["label"] == f"octo:{branch}" and pull["base"]["ref"] == "main"
    assert "close and reopen this pull request" in pull["body"]
    assert f"released up to {NEW_LTE}" in pull["title"]
    comments = world.github.comments[(REPO, 1)]
    assert len(comments) == 1
    body = comments[0]["body"]
    assert body.startswith(refresh.MARKER) and "<!-- tmdb-genres-report -->" not in body
    assert body == (Path(env["RUNNER_TEMP"]) / "refresh.md").read_text(encoding="utf-8")
    assert body in Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert f"- **added**: {expected_new:,}" in body
    assert "#### Genre distribution" in body and " pp |" in body
    assert "`main` model, new movies" in body
    assert "### Headline metrics (test)" in body
    assert f"| `fetch.release_date_lte` | `{MAIN_LTE}` | `{NEW_LTE}` |" in body
    assert "| `fetch.source` | `tmdb` |" not in body  # unchanged: main already pulls live
    assert "The committed `dvc.lock` is up to date." in body

    # the branch on origin holds the new query, the lock and the newcomers' metric
    assert branch_exists(world.bare, branch)
    committed = set(git(world.bare, "diff", "--name-only", "main", branch).split())
    assert {"params.yaml", "dvc.lock", "metrics/refresh.json"} <= committed
    assert all(p in ("params.yaml", "dvc.lock") or p.startswith("metrics/") for p in committed)
    fetch = yaml.safe_load(git(world.bare, "show", f"{branch}:params.yaml"))["fetch"]
    assert (fetch["snapshot"], fetch["release_date_lte"]) == (NEW_LTE, NEW_LTE)
    assert "# a label; change it to ask for a fresh pull" in git(world.bare, "show",
                                                                  f"{branch}:params.yaml")
    metrics = json.loads(git(world.bare, "show", f"{branch}:metrics/refresh.json"))
    assert metrics["snapshot"]["added"] == expected_new
    assert 0 < metrics["newcomers"]["rows"] <= expected_new
    assert 0.0 < metrics["newcomers"]["micro_f1"] < 1.0
    # `dvc metrics diff` shows the newcomers' evaluation (new on this branch)
    diff = json.loads(_run([sys.executable, "-m", "dvc", "metrics", "diff", "origin/main",
                            "--all", "--json"], clone))
    assert diff["metrics/refresh.json"]["newcomers.micro_f1"]["new"] == \
        metrics["newcomers"]["micro_f1"]
    first_lock = yaml.safe_load(git(world.bare, "show", f"{branch}:dvc.lock"))

    # second run, same label, with a DVC remote: the same pull request and comment are
    # updated, and the outputs are pushed to the remote
    world.github.requests.clear()
    clone = world.clone("second")
    remote = world.tmp / "dvc-remote"
    env = world.env(clone, TMDB_API_TOKEN=emulator.DEFAULT_TOKEN, RELEASE_DATE_LTE=NEW_LTE,
                    LABEL=NEW_LTE, DVC_REMOTE_URL=str(remote))
    pulled = world.runner.run("pull", clone, env)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    stdout, _ = world.run_workflow(clone, env)
    assert f"refresh: updated pull request {REPO}#1" in stdout, stdout[-3000:]
    assert "updated its report comment" in stdout
    assert len(world.github.open_pulls(REPO)) == 1 and len(world.github.pulls[REPO]) == 1
    assert len(world.github.comments[(REPO, 1)]) == 1
    assert ("PATCH", "/repos/octo/tmdb-genres/pulls/1") in world.github.requests
    second_lock = yaml.safe_load(git(world.bare, "show", f"{branch}:dvc.lock"))
    for stage in ("fetch", "prepare", "featurize", "train"):  # same data, same bytes
        assert first_lock["stages"][stage]["outs"][0] == second_lock["stages"][stage]["outs"][0]
    snapshot_md5 = second_lock["stages"]["fetch"]["outs"][0]["md5"]
    assert (remote / "files" / "md5" / snapshot_md5[:2] / snapshot_md5[2:]).is_file()


def test_refresh_with_no_new_movies_opens_nothing(world: World) -> None:
    before = {key: list(value) for key, value in world.github.pulls.items()}
    clone = world.clone("nothing-new")
    env = world.env(clone, TMDB_API_TOKEN=emulator.DEFAULT_TOKEN, LABEL="same-window",
                    RELEASE_DATE_LTE=MAIN_LTE)
    stdout, _ = world.run_workflow(clone, env)
    assert "refresh: no new movies" in stdout and "no pull request opened" in stdout
    assert "no new movies" in Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert world.github.pulls == before
    assert not branch_exists(world.bare, "refresh/same-window")
    assert git(clone, "status", "--porcelain", "--untracked-files=no") == ""
    assert git(clone, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"


def test_without_the_token_the_refresh_is_skipped_with_a_notice(world: World) -> None:
    requests = len(world.github.requests)
    clone = world.clone("no-token")
    env = world.env(clone)
    stdout, outputs = world.run_workflow(clone, env)
    assert "available=false" in outputs
    assert "::notice title=tmdb-genres refresh skipped::" in stdout
    assert "TMDB_API_TOKEN" in Path(env["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8")
    assert len(world.github.requests) == requests


def test_a_base_that_cannot_be_restored_fails_in_one_line_and_cleanly(world: World) -> None:
    """No DVC cache and a refused token: one error line, the checkout as it was, no PR."""
    pulls = len(world.github.pulls.get(REPO, []))
    clone = world.clone("no-cache")
    shutil.rmtree(clone / ".dvc" / "cache")
    env = world.env(clone, TMDB_API_TOKEN="not-the-token", RELEASE_DATE_LTE=NEW_LTE)
    result = world.runner.run("refresh", clone, env)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith("tmdb-genres refresh: error:")]
    assert len(errors) == 1 and errors[0] == result.stderr.strip().splitlines()[-1]
    # the stage's own reason, then the refresh's remedy
    assert errors[0].startswith("tmdb-genres refresh: error: `dvc repro` of the base failed: "
                                "tmdb-genres fetch: error: the TMDB API"), errors[0]
    assert "TMDB_API_TOKEN" in errors[0] and "configure the DVC remote" in errors[0]
    assert git(clone, "status", "--porcelain", "--untracked-files=no") == ""
    assert len(world.github.pulls.get(REPO, [])) == pulls
