"""Stopping a run: a SIGTERM'd or interrupted command leaves no temporary behind, and a stage
command stops when its parent `dvc repro` is killed (real dvc, real git, real data sample)."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .conftest import require_shared_movies, signal_when
from .test_pipeline_e2e import copy_project, set_param, sh, write_sample

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
    PID 1, which wrote the model seconds later. DVC runs a stage through $SHELL -c, or with
    SHELL unset (as on CI) through /bin/sh -c: dash forks the command, so its parent is a
    shell that outlives dvc; bash execs it, so its parent is dvc itself. Both are killed."""
    movies = require_shared_movies()
    with gzip.open(movies, "rt", encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(6000), handle, strict=False)]
    (tmp_path / "sample").mkdir()
    write_sample(tmp_path / "sample/movies.jsonl.gz", lines)
    repo = tmp_path / "repo"
    repo.mkdir()
    copy_project(repo)
    set_param(repo, "fetch", "source", "../sample/movies.jsonl.gz")
    set_param(repo, "fetch", "watch", "../sample/movies.jsonl.gz")
    set_param(repo, "train", "workers", 2)  # the fit runs in worker processes
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh(["dvc", "init", "-q"], repo)
    sh(["dvc", "repro", "featurize"], repo)
    env = {key: value for key, value in os.environ.items() if key != "SHELL"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    for shell in (None, "/bin/bash"):
        run_env = env if shell is None else {**env, "SHELL": shell}
        dvc = subprocess.Popen(["dvc", "repro", "train"], cwd=repo, env=run_env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stage = stage_at_work(dvc)
        assert stage.is_running() and not (repo / "models" / "model.joblib").exists()
        dvc.kill()
        dvc.wait(timeout=30)
        gone, _ = psutil.wait_procs([stage], timeout=30)
        assert gone, f"the stage command outlived dvc (SHELL={shell})"
        time.sleep(5)
        # nothing written after its death
        assert not (repo / "models" / "model.joblib").exists(), f"SHELL={shell}"
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
    code = signal_when(process,
                       lambda: [p for p in out.parent.glob(".*.tmp") if p.stat().st_size > 0],
                       "predict writing its output", timeout=120, signum=signal.SIGTERM,
                       interval=0.02)
    assert code == 128 + signal.SIGTERM
    assert process.stderr.read() == ("tmdb-genres predict: interrupted; no output was "
                                     "replaced\n")
    assert list(out.parent.iterdir()) == []


def stage_at_work(dvc: subprocess.Popen) -> psutil.Process:
    """The `tmdb-genres train` process under ``dvc``, once it is fitting (its workers run)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and dvc.poll() is None:
        for child in psutil.Process(dvc.pid).children(recursive=True):
            try:
                if "train" in child.cmdline() and child.children():
                    return child
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.02)
    raise AssertionError("the train stage did not reach its fit (or ended at once)")


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_the_owner_of_a_command_is_found_past_the_shell_that_runs_it(shell: str) -> None:
    """`dvc` runs a stage as SHELL -c CMD; a shell that forks CMD (dash; any shell for a
    compound command) is skipped, so the stage watches `dvc`, not the shell that outlives it."""
    probe = f"{sys.executable} -c 'from tmdb_genres.cli import owning_process as o; print(o())'"
    for command in (probe, f"{probe}; true"):  # a simple command, and one the shell forks
        found = subprocess.run([shell, "-c", command], capture_output=True, text=True,
                               check=True).stdout
        assert int(found) == os.getpid(), command
