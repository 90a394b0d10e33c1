"""End to end: the live path over loopback HTTP, kill -9, and `dvc repro` with zero requests."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tmdb_genres.io import read_json, read_jsonl, write_jsonl
from tmdb_genres.sources import emulator

from .conftest import ROOT, signal_when
from .ingest_helpers import TOKEN, running, synthetic_movies, write_params

pytestmark = pytest.mark.e2e
BIN = Path(sys.executable).parent


def stage_env(server) -> dict[str, str]:
    env = dict(os.environ, TMDB_API_BASE=server.base_url, TMDB_API_TOKEN=TOKEN)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("TMDB_API_KEY", None)
    return env


def fetch_cmd() -> list[str]:
    return [sys.executable, "-m", "tmdb_genres", "fetch", "--params", "params.yaml"]


@pytest.fixture(scope="module")
def shared_server_movies():
    from .conftest import require_shared_movies

    return emulator.load_movies(require_shared_movies())


@pytest.fixture(scope="module")
def file_snapshot(tmp_path_factory, shared_server_movies) -> bytes:
    """The snapshot the file source gives for the shared data: what a full pull must equal."""
    from .conftest import SHARED_MOVIES

    root = tmp_path_factory.mktemp("file")
    subprocess.run([sys.executable, "-m", "tmdb_genres", "fetch", "--params",
                    str(write_params(root, _base(), source=str(SHARED_MOVIES)))],
                   cwd=root, check=True, capture_output=True)
    return (root / "data/raw/movies.jsonl").read_bytes()


def _base():
    import yaml

    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def test_full_pull_through_faults_equals_clean_pull(tmp_path, shared_server_movies,
                                                    file_snapshot):
    snapshots = {}
    for rate in (0.0, 0.12):
        root = tmp_path / str(rate)
        root.mkdir()
        write_params(root, _base())
        with running(shared_server_movies, fault_rate=rate, seed=7,
                     slow_seconds=0.8) as server:
            subprocess.run(fetch_cmd(), cwd=root, env=stage_env(server), check=True,
                           capture_output=True)
            faults, requests = server.stats.faults, server.stats.requests
        snapshots[rate] = (root / "data/raw/movies.jsonl").read_bytes()
        manifest = read_json(root / "metrics/fetch_manifest.json")
        assert manifest["movies"] == len(shared_server_movies)
        if rate:
            assert faults >= 0.1 * requests and manifest["retries"] == faults
    assert snapshots[0.0] == snapshots[0.12] == file_snapshot


def test_full_pull_with_shuffled_ties_and_faults_has_every_movie_once(tmp_path,
                                                                      shared_server_movies,
                                                                      file_snapshot):
    """TMDB reorders tied results on every request: paging alone loses about 1.6% of the
    shared movies (and repeats as many); the pull must re-query until it has each once."""
    write_params(tmp_path, _base())
    with running(shared_server_movies, shuffle_ties=True, fault_rate=0.1, seed=3,
                 slow_seconds=0.8) as server:
        subprocess.run(fetch_cmd(), cwd=tmp_path, env=stage_env(server), check=True,
                       capture_output=True)
        faults = server.stats.faults
    assert (tmp_path / "data/raw/movies.jsonl").read_bytes() == file_snapshot
    manifest = read_json(tmp_path / "metrics/fetch_manifest.json")
    report = read_json(tmp_path / "metrics/fetch.json")
    total = len(shared_server_movies)
    assert report["movies"] == total and report["duplicates"] == 0
    assert report["completeness"]["shortfall"] == 0
    completeness = manifest["completeness"]
    assert completeness["expected"] == completeness["collected"] == total
    assert completeness["requeries"]["tie_days"] > 0 and faults > 0
    assert all(w["expected"] == w["collected"] for w in manifest["window_completeness"])


def kill_fetch_after_a_window(cwd: Path, server) -> Path:
    """Start a real ``tmdb-genres fetch`` in ``cwd``, SIGKILL it once a window is checkpointed
    (never before: the fetch must not finish first); return the checkpoint folder."""
    proc = subprocess.Popen(fetch_cmd(), cwd=cwd, env=stage_env(server),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = cwd / "data/cache/tmdb"
    code = signal_when(proc, lambda: list(checkpoints.glob("*/windows/*.json")),
                       "a checkpointed window")
    assert code == -signal.SIGKILL, "the fetch finished before it was killed"
    return checkpoints


def test_killed_fetch_resumes_and_never_leaves_a_partial_snapshot(tmp_path,
                                                                  shared_server_movies,
                                                                  file_snapshot):
    write_params(tmp_path, _base(), requests_per_second=150, concurrency=2)
    snapshot = tmp_path / "data/raw/movies.jsonl"
    with running(shared_server_movies) as server:
        checkpoints = kill_fetch_after_a_window(tmp_path, server)
        assert not snapshot.exists()
        assert not list(snapshot.parent.glob("*movies.jsonl*"))
        done = len(list(checkpoints.glob("*/windows/*.json")))
        requests_before = server.stats.requests
        subprocess.run(fetch_cmd(), cwd=tmp_path, env=stage_env(server), check=True,
                       capture_output=True)
        resumed_requests = server.stats.requests - requests_before
    manifest = read_json(tmp_path / "metrics/fetch_manifest.json")
    assert manifest["windows_resumed"] >= done >= 1
    assert resumed_requests < 600  # a clean full pull takes about 597
    assert snapshot.read_bytes() == file_snapshot


class EmulatorProcess:
    """``tmdb-genres emulator`` serving a catalogue file, in its own process on loopback."""

    def __init__(self, catalogue: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tmdb_genres", "emulator", "--snapshot", str(catalogue),
             "--port", "0", "--rate-limit", "0", "--token", TOKEN],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        assert " at http://127.0.0.1:" in line, line
        self.base_url = line.split(" at ", 1)[1].split()[0]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stderr.close()


def test_pull_killed_mid_way_resumes_to_the_same_bytes(tmp_path):
    """A catalogue file served by the emulator process; `tmdb-genres fetch` SIGKILLed once a
    window is checkpointed, then rerun: the snapshot equals an uninterrupted pull's and the
    file source's, byte for byte, and the rerun refetches only what was not checkpointed."""
    catalogue = tmp_path / "catalogue.jsonl.gz"
    with gzip.open(catalogue, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps({**m, "source": "test"}) + "\n"
                          for m in synthetic_movies(12_000, days=3000))
    reference = tmp_path / "file"
    reference.mkdir()
    write_params(reference, _base(), source=str(catalogue))
    subprocess.run(fetch_cmd(), cwd=reference, check=True, capture_output=True)
    expected = (reference / "data/raw/movies.jsonl").read_bytes()
    assert expected.count(b"\n") == 12_000
    server = EmulatorProcess(catalogue)
    try:
        full, killed = tmp_path / "full", tmp_path / "killed"
        for root in (full, killed):
            root.mkdir()
            write_params(root, _base(), concurrency=2)
        subprocess.run(fetch_cmd(), cwd=full, env=stage_env(server), check=True,
                       capture_output=True)
        whole = read_json(full / "metrics/fetch_manifest.json")
        assert whole["windows"] >= 3 and whole["completeness"]["complete"]
        assert (full / "data/raw/movies.jsonl").read_bytes() == expected

        checkpoints = kill_fetch_after_a_window(killed, server)
        done = len(list(checkpoints.glob("*/windows/*.json")))
        assert 1 <= done < whole["windows"]
        assert not (killed / "data/raw/movies.jsonl").exists()
        out = subprocess.run(fetch_cmd(), cwd=killed, env=stage_env(server), check=True,
                             capture_output=True, text=True).stdout
    finally:
        server.stop()
    again = read_json(killed / "metrics/fetch_manifest.json")
    assert again["windows_resumed"] >= done
    assert f"{again['windows_resumed']} resumed" in out and f"{again['requests']} requests" in out
    assert whole["requests_per_movie"] == round(whole["requests"] / 12_000, 4)
    assert 0 < whole["seconds"] < 600
    assert again["requests"] < whole["requests"]
    assert again["completeness"] == whole["completeness"]
    assert (killed / "data/raw/movies.jsonl").read_bytes() == expected
    assert sorted(p.name for p in (killed / "data/raw").iterdir()) == ["movies.jsonl",
                                                                       "rejects.jsonl"]


def dvc(root: Path, env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=root, env=env, text=True,
                            capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_noop_dvc_repro_makes_no_request(tmp_path):
    root = tmp_path / "project"
    fetch_deps = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"][
        "fetch"]["deps"]  # the stage's modules: every one must exist for `dvc repro`
    for path in ("dvc.yaml", *(dep for dep in fetch_deps if dep.startswith("src/"))):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, root / path)
    write_params(root, _base())
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    movies = synthetic_movies(300)
    with running(movies) as server:
        env = stage_env(server)
        dvc(root, env, "init", "-q")
        dvc(root, env, "repro", "fetch")
        first = server.stats.requests
        assert first > 1 and (root / "data/raw/movies.jsonl").is_file()
        out = dvc(root, env, "repro", "fetch")
        assert server.stats.requests == first, out
        assert "Stage 'fetch' didn't change" in out
        # A client knob is not a reason to refetch; a new snapshot label is.
        write_params(root, _base(), concurrency=2)
        dvc(root, env, "repro", "fetch")
        assert server.stats.requests == first
        write_params(root, _base(), snapshot="refresh")
        dvc(root, env, "repro", "fetch")
        assert server.stats.requests > first
        # A file source still reruns fetch when (and only when) its content changes.
        source = root / "movies.jsonl"
        write_jsonl(source, movies[:100])
        write_params(root, _base(), source="movies.jsonl")
        dvc(root, env, "repro", "fetch")
        assert "didn't change" in dvc(root, env, "repro", "fetch")
        write_jsonl(source, movies[:120])
        with source.open("a", encoding="utf-8") as handle:
            handle.write("{not json\n")
        out = dvc(root, env, "repro", "fetch")
        assert "Running stage 'fetch'" in out and "is empty" not in out
        assert read_json(root / "metrics/fetch.json")["movies"] == 120
        assert read_jsonl(root / "data/raw/rejects.jsonl") == [
            {"content": "{not json", "error": "Expecting property name enclosed in double quotes",
             "line": 121, "reason": "malformed_json"}]


def test_bench_ingest_help_prints_help_and_runs_nothing():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_ingest.py"), "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("usage: bench_ingest.py")
    assert "ties" in result.stdout and "ingest [" not in result.stdout  # nothing was pulled
