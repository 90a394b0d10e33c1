"""Stopping a run: a SIGTERM'd or interrupted command leaves no temporary behind, and a stage
command stops when its parent `dvc repro` is killed (real dvc, real git, real data sample)."""

from __future__ import annotations

import gzip
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .conftest import ROOT, require_shared_movies
from .test_pipeline_e2e import PROJECT_FILES, set_param, sh, write_sample

WRITER = """
import sys, time
from tmdb_genres.io import atomic_text, remove_temps_on_signals
remove_temps_on_signals()
with atomic_text(sys.argv[1]) as handle:
    handle.write("x" * 5_000_000)
    handle.flush()
    print("writing", flush=True)
    time.sleep(60)
    handle.write("done")
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_writer_removes_its_temporary(tmp_path: Path, signum: int) -> None:
    """Before: a SIGTERM'd `predict` left a 192 MB hidden .tmp file until the next run."""
    target = tmp_path / "out" / "predictions.jsonl"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "writing\n"
    assert next(p.name for p in target.parent.iterdir()).endswith(".tmp")
    process.send_signal(signum)
    process.wait(timeout=30)
    assert process.returncode != 0 and "Interrupted" in process.stderr.read()
    assert list(target.parent.iterdir()) == []  # neither the output nor its temporary


def test_a_stage_stops_when_dvc_is_killed(tmp_path: Path) -> None:
    """Before: killing `dvc repro` alone left its `tmdb-genres train` child running under
    PID 1, which wrote the model 20 s later."""
    movies = require_shared_movies()
    with gzip.open(movies, "rt", encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(6000), handle, strict=False)]
    (tmp_path / "sample").mkdir()
    write_sample(tmp_path / "sample/movies.jsonl.gz", lines)
    repo = tmp_path / "repo"
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
    sh(["dvc", "init", "-q"], repo)
    sh(["dvc", "repro", "featurize"], repo)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    dvc = subprocess.Popen(["dvc", "repro", "train"], cwd=repo, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    stage = None
    while stage is None and time.monotonic() < deadline and dvc.poll() is None:
        for child in psutil.Process(dvc.pid).children(recursive=True):
            try:
                if "train" in child.cmdline() and "tmdb-genres" in " ".join(child.cmdline()):
                    stage = child
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.02)
    assert stage is not None, "the train stage did not start (or ended at once)"
    time.sleep(3)  # well inside the stage's work (about 25 s on this sample)
    assert stage.is_running() and not (repo / "models" / "model.joblib").exists()
    dvc.kill()
    dvc.wait(timeout=30)
    gone, _ = psutil.wait_procs([stage], timeout=30)
    assert gone, "the stage command outlived dvc"
    time.sleep(5)
    assert not (repo / "models" / "model.joblib").exists()  # nothing written after its death
    assert not [p for p in (repo / "models").glob(".*.tmp")]


def test_a_sigtermed_predict_leaves_no_temporary(toy_project: Path, tmp_path: Path) -> None:
    """Before: a SIGTERM'd `predict` left its hidden .tmp output (192 MB) behind."""
    source = tmp_path / "many.jsonl"
    line = '{"title": "Boo", "overview": "A ghost and a demon scream in a haunted house."}\n'
    source.write_text(line * 400_000, encoding="utf-8")
    out = tmp_path / "out" / "predictions.jsonl"
    out.parent.mkdir()
    process = subprocess.Popen([sys.executable, "-m", "tmdb_genres", "predict", str(source),
                                "-o", str(out), "--models", str(toy_project / "models")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not [p for p in out.parent.glob(".*.tmp") if p.stat().st_size > 0]:
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert process.stderr.read() == ("tmdb-genres predict: interrupted; no output was "
                                     "replaced\n")
    assert list(out.parent.iterdir()) == []
