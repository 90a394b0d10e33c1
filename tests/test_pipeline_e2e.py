"""End-to-end: real `dvc repro` and real `git` on a sample of the real TMDB data.

`tests/e2e_output_hashes.json` holds the md5 of every output of every stage for the sample,
as `dvc.lock` records them: outputs are byte-identical on any CPU, so a fresh `dvc repro`
must give exactly these. When a change alters outputs on purpose, refresh the file with

    TMDB_GENRES_UPDATE_HASHES=1 pytest tests/test_pipeline_e2e.py -k output_hashes

and commit it with the change (its diff shows which outputs moved).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

pytestmark = pytest.mark.e2e

SAMPLE_SIZE = 2000
EXPECTED_HASHES = Path(__file__).with_name("e2e_output_hashes.json")
# metrics/refresh.json (written by `tmdb-genres refresh`) and accurate/metrics (by the accurate
# model's pipeline) are declared in dvc.yaml, so they must exist
PROJECT_FILES = ["src", "params.yaml", "dvc.yaml", "pyproject.toml", ".dvcignore", ".gitignore",
                 "metrics/refresh.json", "accurate/metrics"]


def sh(args: list[str], cwd: Path) -> str:
    """Run a command with the project's console scripts on PATH; return its output."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def repro(repo: Path, *args: str) -> list[str]:
    """Run `dvc repro` and return the stages that actually ran their command."""
    return re.findall(r"Running stage '([\w@-]+)'", sh(["dvc", "repro", *args], repo))


def set_param(repo: Path, section: str, key: str, value) -> None:
    path = repo / "params.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    target = data[section]
    *parents, leaf = key.split(".")
    for parent in parents:
        target = target[parent]
    target[leaf] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def write_sample(path: Path, lines: list[str]) -> None:
    """Gzip ``lines`` with a fixed header time, so the same lines give the same bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write("".join(lines).encode("utf-8"))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, shared_movies_module) -> Path:
    """A git repo with the project, a sample source beside it, reproduced and committed."""
    base = tmp_path_factory.mktemp("e2e")
    with gzip.open(shared_movies_module, "rt", encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(SAMPLE_SIZE + 300), handle, strict=False)]
    (base / "sample").mkdir()
    write_sample(base / "sample/movies.jsonl.gz", lines[:SAMPLE_SIZE])
    (base / "sample/extra.jsonl").write_text("".join(lines[SAMPLE_SIZE:]), encoding="utf-8")
    repo = base / "repo"
    repo.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / name)
    set_param(repo, "fetch", "source", "../sample/movies.jsonl.gz")
    set_param(repo, "fetch", "watch", "../sample/movies.jsonl.gz")
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh(["git", "config", "user.email", "e2e@example.com"], repo)
    sh(["git", "config", "user.name", "e2e"], repo)
    sh(["dvc", "init", "-q"], repo)
    ran = repro(repo)
    assert {"fetch", "prepare", "featurize", "train", "evaluate"} <= set(ran)
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-qm", "baseline"], repo)
    return base


@pytest.fixture(scope="module")
def shared_movies_module():
    from .conftest import require_shared_movies

    return require_shared_movies()


@pytest.fixture
def repo(baseline: Path, tmp_path: Path) -> Path:
    """A private copy of the reproduced baseline (git history, DVC cache and outputs)."""
    copy = tmp_path / "base"
    shutil.copytree(baseline, copy, symlinks=True)
    return copy / "repo"


def metrics(repo: Path) -> dict:
    return json.loads((repo / "metrics/metrics.json").read_text(encoding="utf-8"))


def output_hashes(repo: Path) -> dict[str, dict[str, str]]:
    """``{stage: {out path: md5}}`` from the repo's dvc.lock."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text(encoding="utf-8"))["stages"]
    return {stage: {out["path"]: out["md5"] for out in entry.get("outs", [])}
            for stage, entry in lock.items()}


def test_fresh_repro_gives_the_committed_output_hashes(baseline: Path):
    ours = output_hashes(baseline / "repo")
    if os.environ.get("TMDB_GENRES_UPDATE_HASHES"):
        EXPECTED_HASHES.write_text(json.dumps(ours, indent=2, sort_keys=True) + "\n",
                                   encoding="utf-8")
    expected = json.loads(EXPECTED_HASHES.read_text(encoding="utf-8"))
    assert ours == expected, (
        "dvc repro wrote different outputs from the committed hashes; if the change is on "
        "purpose, refresh them (see this module's docstring)")


def test_second_repro_runs_nothing_and_lock_is_stable(repo: Path):
    assert repro(repo) == []
    assert "Data and pipelines are up to date" in sh(["dvc", "status"], repo)
    assert sh(["git", "status", "--porcelain"], repo) == ""


def test_threshold_edit_reruns_evaluate_only(repo: Path):
    before = metrics(repo)
    set_param(repo, "evaluate", "mode", "fixed")
    set_param(repo, "evaluate", "threshold", 0.6)
    assert repro(repo) == ["evaluate"]
    after = metrics(repo)
    assert after["test"]["micro_f1"] != before["test"]["micro_f1"]
    diff = json.loads(sh(["dvc", "metrics", "diff", "--json"], repo))  # the headline
    assert diff["metrics/headline/test_micro.json"]["f1"]["diff"] != 0
    diff = json.loads(sh(["dvc", "metrics", "diff", "--json", "--targets", "metrics/metrics.json"],
                         repo))  # every figure
    assert diff["metrics/metrics.json"]["test.micro_f1"]["diff"] != 0
    assert diff["metrics/metrics.json"]["test.per_genre.Drama.f1"]["diff"] != 0
    params = json.loads(sh(["dvc", "params", "diff", "--json"], repo))
    assert params["params.yaml"]["evaluate.threshold"]["new"] == 0.6


def test_per_genre_override_by_name_reaches_thresholds(repo: Path):
    set_param(repo, "evaluate", "per_genre", {"Drama": 0.95})
    assert repro(repo) == ["evaluate"]
    thresholds = json.loads((repo / "models/thresholds.json").read_text(encoding="utf-8"))
    assert thresholds["thresholds"]["Drama"] == 0.95


def test_tfidf_edit_reruns_featurize_train_evaluate_and_crossval(repo: Path):
    set_param(repo, "featurize", "word.min_df", 3)
    assert repro(repo) == ["featurize", "train", "evaluate", "crossval"]


def test_metadata_edit_moves_the_cross_validated_gain(repo: Path):
    """The crossval stage's figures are DVC metrics: turning the metadata block off makes
    the model with metadata the text-only one, fold by fold."""
    set_param(repo, "featurize", "metadata.features", [])
    assert repro(repo) == ["featurize", "train", "evaluate", "crossval"]
    diff = json.loads(sh(["dvc", "metrics", "diff", "--json"], repo))
    assert "metrics/headline/crossval_micro.json" in diff
    shown = json.loads(sh(["dvc", "metrics", "show", "--json"], repo))
    [workspace] = [entry for entry in shown.values()]
    figures = workspace["data"]
    assert (figures["metrics/headline/crossval_micro.json"]["data"]
            == figures["metrics/headline/crossval_text_micro.json"]["data"])
    # without a metadata block, removing the metadata changes nothing
    assert metrics(repo)["test_no_metadata"]["micro_f1"] == metrics(repo)["test"]["micro_f1"]


def experiments(shown: list[dict]) -> list[dict]:
    """The experiments in `dvc exp show --json` output (one entry per baseline commit)."""
    return [rev for entry in shown for group in entry.get("experiments") or []
            for rev in group["revs"]]


def test_exp_run_with_set_param(repo: Path):
    output = sh(["dvc", "exp", "run", "-S", "evaluate.threshold=0.45", "-S", "evaluate.mode=fixed"],
                repo)
    assert re.findall(r"Running stage '([\w@-]+)'", output) == ["evaluate"]
    shown = json.loads(sh(["dvc", "exp", "show", "--json"], repo))
    baseline = next(e for e in shown if e["rev"] != "workspace")
    base_params = baseline["data"]["params"]["params.yaml"]["data"]["evaluate"]
    assert base_params["threshold"] != 0.45  # the committed value
    [experiment] = experiments(shown)
    params = experiment["data"]["params"]["params.yaml"]["data"]["evaluate"]
    assert params["threshold"] == 0.45 and params["mode"] == "fixed"
    # the headline file is the declared metric that `dvc exp show` reports
    test_f1 = experiment["data"]["metrics"]["metrics/headline/test_micro.json"]["data"]["f1"]
    assert test_f1 == metrics(repo)["test"]["micro_f1"]  # the run's metrics, applied


def test_split_is_unchanged_when_snapshot_grows(repo: Path):
    prepared = repo / "data/prepared"
    before = {s: (prepared / f"{s}.jsonl").read_text(encoding="utf-8").splitlines()
              for s in ("train", "validation", "test")}
    sample = repo.parent / "sample"
    with gzip.open(sample / "movies.jsonl.gz", "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    write_sample(sample / "movies.jsonl.gz",
                 lines + (sample / "extra.jsonl").read_text(encoding="utf-8").splitlines(True))
    assert repro(repo)[:2] == ["fetch", "prepare"]
    for split, rows in before.items():
        after = set((prepared / f"{split}.jsonl").read_text(encoding="utf-8").splitlines())
        assert set(rows) <= after
        assert len(after) > len(rows) or split != "train"
