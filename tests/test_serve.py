"""The HTTP service and its page: real HTTP on loopback, the real command, a real browser."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from tmdb_genres.accurate.model import load_model

pytest.importorskip("fastapi", reason="the serve extra is not installed "
                    "(pip install -e '.[serve]')")

from tmdb_genres.cli import main
from tmdb_genres.serve.schemas import MAX_BATCH, MAX_OVERVIEW

from .conftest import ROOT
from .serve_helpers import app_server, project_copy, serve_command, train_sample_project

GHOST = {"title": "Nightmare", "overview": "A haunted house, a ghost, a demon and blood."}


@pytest.fixture(scope="module")
def project(_toy_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy pipeline's outputs with the committed params.yaml, as a project root."""
    return project_copy(_toy_outputs, tmp_path_factory.mktemp("serve") / "project")


@pytest.fixture(scope="module")
def server(project: Path):
    """The app over the toy model, on loopback (uvicorn in a thread)."""
    from tmdb_genres.hub.folder import model_info

    with app_server(load_model("fast", project / "models"), model_info(project), workers=2) as url:
        yield url


def post(url: str, body, **kwargs) -> requests.Response:
    return requests.post(f"{url}/predict", json=body, timeout=30, **kwargs)


# ------------------------------------------------------------------------------ the API


def test_one_movie_gets_ranked_genres_probabilities_thresholds_and_words(server: str):
    answer = post(server, {**GHOST, "id": 7}).json()
    assert answer["id"] == 7 and answer["title"] == "Nightmare"
    assert len(answer["probabilities"]) == len(answer["thresholds"]) == 19
    ranked = answer["genres"]
    assert ranked[0]["genre"] == "Horror"
    assert [g["probability"] for g in ranked] == sorted((g["probability"] for g in ranked),
                                                        reverse=True)
    for genre in ranked:
        assert genre["probability"] == answer["probabilities"][genre["genre"]]
        assert genre["threshold"] == answer["thresholds"][genre["genre"]]
    horror = {w["word"] for w in ranked[0]["words"]}
    assert horror and horror <= {"haunted", "house", "ghost", "demon", "blood", "nightmare"}
    assert {"ghost", "demon"} & horror
    assert "words" not in answer or answer["words"] is None
    everything = requests.post(f"{server}/predict?explain=all", json=GHOST, timeout=30).json()
    assert set(everything["words"]) == set(answer["probabilities"])


def test_optional_metadata_fields_are_used_and_malformed_ones_are_unknown(server: str,
                                                                          project: Path):
    movie = {"title": "Orbit", "overview": "A robot crew steers a spaceship past a planet."}
    model = load_model("fast", project / "models")
    text = model.text(movie["title"], movie["overview"])
    cases = [{}, {"original_language": "fr", "release_date": "1995-06-01", "vote_count": 40,
                  "vote_average": 6.5},
             {"release_date": "2013"}, {"original_language": "zz", "vote_count": -5},
             {"vote_count": "oops", "vote_average": None, "popularity": "1e400"}]
    for metadata in cases:
        response = post(server, {**movie, **metadata})
        assert response.status_code == 200, (metadata, response.text)
        expected = model.probabilities_one(text, metadata)
        got = response.json()["probabilities"]
        assert got == dict(zip(model.genres, np.round(expected, 4).tolist(), strict=True))
    # the same movie without and with its metadata is scored differently
    assert (post(server, movie).json()["probabilities"]
            != post(server, {**movie, **cases[1]}).json()["probabilities"])


def test_answers_equal_the_predict_command(server: str, project: Path, tmp_path: Path):
    movies = [GHOST, {"title": "Pew", "overview": "Alien robot on a planet."},
              {"title": "", "overview": "A wacky prank; hilarious jokes and grief."},
              {"title": "Only a title", "overview": ""}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(m) + "\n" for m in movies), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["predict", str(source), "-o", str(out), "--models",
                 str(project / "models")]) == 0
    expected = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    batch = post(server, {"movies": movies}).json()["movies"]
    plain = requests.post(f"{server}/predict?explain=none", json={"movies": movies},
                          timeout=30).json()["movies"]  # the batch path, without words
    for movie, want, got, fast in zip(movies, expected, batch, plain, strict=True):
        assert got["probabilities"] == want["scores"] == fast["probabilities"]
        assert [g["genre"] for g in got["genres"]] == want["genres"]
        assert [g["genre"] for g in fast["genres"]] == want["genres"]
        assert all(g["words"] == [] for g in fast["genres"])
        assert post(server, movie).json() == got  # one at a time: the same answer


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"title": "", "overview": "  "}, 422, "empty title and overview"),
    ({"title": ".", "overview": "."}, 422, "no words"),
    ({"title": 5, "overview": "x"}, 422, "title is a number, not text"),
    ({"title": None, "overview": {"a": 1}}, 422, "overview is an object, not text"),
    ({"overview": 42}, 422, "overview is a number, not text"),
    ({"overview": "... !!! ???"}, 422, "no words"),
    ({"overview": "....."}, 422, "no words"),
    ({"overview": "\u0000\u0000"}, 422, "control character U+0000"),
    ({"title": "\ud800", "overview": "a ghost \udfff story"}, 422, "lone surrogate U+D800"),
    ({"id": {"a": 1}, "overview": "x"}, 422, "id is an object"),
    ({"title": "x" * 1001}, 413, "over the cap of 1,000"),
    ({"movies": [GHOST], "extra": 1}, 422, "unknown field 'extra'"),
    ({"movies": "x"}, 422, "movies: Input should be a valid list"),
    ({"movies": []}, 422, "at least 1"),
    ({"titel": "x"}, 422, "unknown field 'titel'"),
    ([GHOST], 422, "not a JSON object"),
    ({"overview": "x" * (MAX_OVERVIEW + 1)}, 413, f"over the cap of {MAX_OVERVIEW:,}"),
    ({"movies": [GHOST] * (MAX_BATCH + 1)}, 413, f"over the cap of {MAX_BATCH:,}"),
])
def test_bad_requests_get_a_4xx_and_one_line(server: str, body, status: int, fragment: str):
    response = post(server, body)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and fragment in detail
    assert " — " in detail  # the problem, then the remedy


def test_a_batch_answers_every_movie_and_says_why_for_those_that_are_not(server: str):
    movies = [GHOST, {"id": 2, "overview": ["a"]}, {"id": 3, "title": 123, "overview": "x"},
              {"id": 4, "title": "", "overview": " "}, {"title": "\ud800", "overview": "boo"},
              {"id": 6, "overview": "... !!! ???"}, {"id": 7, "overveiw": "typo"},
              "not an object", {"id": 9, "title": "Ghost demon scream", "overview": None}]
    response = post(server, {"movies": movies})
    assert response.status_code == 200, response.text
    answers = response.json()["movies"]
    assert len(answers) == len(movies)
    assert answers[0] == post(server, GHOST).json() and "error" not in answers[0]
    expected = {1: "movies[1].overview is a list, not text",
                2: "movies[2].title is a number, not text",
                3: "movies[3] has an empty title and overview",
                4: "movies[4].title has a lone surrogate U+D800",
                5: "movies[5] has no words", 6: "unknown field 'movies[6].overveiw'",
                7: "movies[7] is a string, not a JSON object"}
    for i, fragment in expected.items():
        assert set(answers[i]) == {"id", "title", "error"}, answers[i]
        assert answers[i]["error"].startswith(fragment) and " — " in answers[i]["error"]
        assert "\n" not in answers[i]["error"]
    assert [answers[i]["id"] for i in expected] == [2, 3, 4, None, 6, 7, None]
    assert answers[2]["title"] is None and answers[4]["title"] is None  # not echoed
    title_only = answers[8]
    assert title_only["genres"][0]["genre"] == "Horror" and title_only["id"] == 9
    assert title_only["warning"] == "empty overview: predicted from the title alone"
    assert post(server, movies[8]).json()["warning"] == title_only["warning"]
    assert "warning" not in answers[0]
    everything_wrong = post(server, {"movies": [{"overview": 1}, {}]}, params={"explain": "none"})
    assert everything_wrong.status_code == 200
    assert all("error" in a for a in everything_wrong.json()["movies"])


@pytest.mark.parametrize(("data", "headers", "status", "fragment"), [
    (b'{"title": "x",', {"Content-Type": "application/json"}, 400, "not valid JSON"),
    (b'{"title": "x"}', {"Content-Type": "application/x-www-form-urlencoded"}, 415,
     "Content-Type: application/json"),
    (b"", {"Content-Type": "application/json"}, 415, "must be JSON"),
])
def test_malformed_bodies_get_a_4xx_and_one_line(server: str, data: bytes, headers: dict,
                                                 status: int, fragment: str):
    response = requests.post(f"{server}/predict", data=data, headers=headers, timeout=30)
    assert response.status_code == status
    detail = response.json()["detail"]
    assert "\n" not in detail and fragment in detail


def test_null_text_is_empty_and_a_bad_query_is_one_line(server: str):
    assert post(server, {"title": None, "overview": GHOST["overview"]}).status_code == 200
    assert post(server, {"title": None, "overview": None}).status_code == 422
    response = requests.post(f"{server}/predict?explain=some", json=GHOST, timeout=30)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("query parameter explain: ")
    assert "explain=predicted, all or none" in response.json()["detail"]


def test_genres_and_health_describe_the_model(server: str, project: Path):
    metrics = json.loads((project / "metrics/metrics.json").read_text(encoding="utf-8"))
    genres = requests.get(f"{server}/genres", timeout=30).json()
    assert [g["name"] for g in genres["genres"]] == load_model("fast", project / "models").genres
    horror = next(g for g in genres["genres"] if g["name"] == "Horror")
    assert horror["threshold"] == 0.27
    assert horror["test_f1"] == metrics["test"]["per_genre"]["Horror"]["f1"]
    health = requests.get(f"{server}/health", timeout=30).json()
    assert health["status"] == "ok" and health["model_format"] == 2
    assert health["test_micro_f1"] == metrics["test"]["micro_f1"]
    assert health["test_macro_f1"] == metrics["test"]["macro_f1"]
    assert health["snapshot"] and "git_commit" in health
    assert health["pid"] == os.getpid() and health["worker_threads"] == 2


def test_openapi_docs(server: str):
    assert "swagger" in requests.get(f"{server}/docs", timeout=30).text.lower()
    schema = requests.get(f"{server}/openapi.json", timeout=30).json()
    assert {"/predict", "/genres", "/health"} <= set(schema["paths"])


def test_the_page_and_its_files_come_from_the_app(server: str):
    page = requests.get(server, timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'label for="overview"' in page.text and 'id="threshold"' in page.text
    # the optional metadata inputs, sent under the service's field names
    assert 'name="original_language"' in page.text and 'name="release_date"' in page.text
    script = requests.get(f"{server}/static/app.js", timeout=30).text
    assert "body.original_language" in script and "body.release_date" in script
    for name in ("app.js", "style.css"):
        asset = requests.get(f"{server}/static/{name}", timeout=30)
        assert asset.status_code == 200 and asset.text
        assert "http://" not in asset.text and "https://" not in asset.text  # no CDN
    assert "http://" not in page.text and "https://" not in page.text
    assert requests.get(f"{server}/static/nothing.js", timeout=30).status_code == 404


# ------------------------------------------------------------------ the command itself


def test_serve_holds_one_model_in_one_process_for_all_workers(project: Path):
    import psutil

    with serve_command(["--workers", "3"], cwd=project) as (url, process):
        health = requests.get(f"{url}/health", timeout=30).json()
        assert health["pid"] == process.pid and health["worker_threads"] == 3
        batch = {"movies": [GHOST, {"title": "Alien planet"}] * 20}
        with ThreadPoolExecutor(12) as pool:  # single movies and batches, all at once
            singles = pool.map(lambda _: post(url, GHOST).json(), range(36))
            batches = pool.map(lambda _: post(url, batch).json(), range(12))
            answers, batch_answers = list(singles), list(batches)
        assert all(a == answers[0] for a in answers) and answers[0]["genres"]
        assert all(b == batch_answers[0] for b in batch_answers)
        assert batch_answers[0]["movies"][0] == answers[0]
        server = psutil.Process(process.pid)
        assert server.children(recursive=True) == []  # no worker processes: one model
        assert requests.get(f"{url}/health", timeout=30).json()["pid"] == process.pid


def test_model_dir_serves_a_published_folder_alike(project: Path, tmp_path: Path):
    from tmdb_genres.hub.folder import model_info, write_model_folder

    folder = tmp_path / "folder"
    write_model_folder(load_model("fast", project / "models"), model_info(project), folder)
    with serve_command(["--model-dir", str(folder)], cwd=tmp_path) as (url, _):
        from_folder = post(url, {"movies": [GHOST, {"title": "Alien planet"}]}).json()
        health = requests.get(f"{url}/health", timeout=30).json()
    with serve_command([], cwd=project) as (url, _):
        from_models = post(url, {"movies": [GHOST, {"title": "Alien planet"}]}).json()
    assert from_folder == from_models
    assert health["test_micro_f1"] is not None


def run_serve(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tmdb_genres", "serve", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_startup_errors_are_one_line(project: Path, tmp_path: Path):
    broken = tmp_path / "models"
    shutil.copytree(project / "models", broken)
    blob = (broken / "model.joblib").read_bytes()
    (broken / "model.joblib").write_bytes(blob[: len(blob) // 2])
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        cases = [
            (["--models", str(tmp_path / "none")], "not found", "dvc repro"),
            (["--models", str(broken)], "cannot read", "rerun `dvc repro`"),
            (["--model-dir", str(tmp_path / "none")], "model folder", "not found"),
            (["--workers", "0"], "--workers must be at least 1", "--workers 1"),
            (["--models", str(project / "models"), "--port", port], "cannot listen",
             "another"),
        ]
        for args, problem, remedy in cases:
            result = run_serve(args, cwd=tmp_path)
            lines = result.stderr.strip().splitlines()
            assert result.returncode == 2, result.stderr
            assert len(lines) == 1 and lines[0].startswith("tmdb-genres serve: error: ")
            assert problem in lines[0] and remedy in lines[0]


# --------------------------------------------------- a model trained on the real data


@pytest.fixture(scope="module")
def sample_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on a third of the real data (skips without ../shared)."""
    from .conftest import require_shared_movies

    return train_sample_project(tmp_path_factory.mktemp("sample"), require_shared_movies())


def test_single_text_probabilities_are_the_batch_ones_bit_for_bit(sample_project: Path):
    from tmdb_genres.io import read_jsonl

    model = load_model("fast", sample_project / "models")
    texts = [row["text"] for row in read_jsonl(sample_project / "data/prepared/test.jsonl")]
    texts += ["", "a", "The the the", "日本の映画", "Amélie's café — naïve déjà-vu"]
    batch = model.probabilities(texts)
    for i, text in enumerate(texts):
        one = model.probabilities_one(text)
        assert one.tobytes() == batch[i].tobytes(), text
        assert one.tobytes() == model.probabilities([text])[0].tobytes()


# ------------------------------------------------------------------ the page, in a browser

# Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); another
# Chrome and its matching driver can be named in these variables.
CHROMIUM = os.environ.get("TMDB_GENRES_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("TMDB_GENRES_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = ROOT / "test-artifacts"  # git-ignored; the CI workflow uploads it
HAUNTING = ("A family moves into an old farmhouse and soon learns it is haunted: doors slam "
            "at night, a ghost whispers to their youngest daughter, and a demonic presence "
            "in the cellar wants the mother's soul. A priest is called for an exorcism.")


@pytest.fixture
def browser(tmp_path: Path):
    """Headless Debian chromium driven by Selenium through the system chromedriver. Skips
    with the reason where no browser can start (fails instead under
    TMDB_GENRES_REQUIRE_BROWSER=1, as in CI)."""
    required = os.environ.get("TMDB_GENRES_REQUIRE_BROWSER") == "1"

    def unavailable(reason: str):
        if required:
            pytest.fail(f"{reason} (TMDB_GENRES_REQUIRE_BROWSER=1)")
        pytest.skip(reason)

    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            unavailable(f"{path} not found: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage", "--window-size=1280,900",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    except Exception as exc:  # no display libraries, crashed browser, ...: say why
        unavailable(f"chromium could not start: {type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
    try:
        yield driver
    finally:
        driver.quit()


def test_page_in_a_browser_ranks_horror_first_and_the_slider_redecides(
        sample_project: Path, browser, tmp_path: Path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from tmdb_genres.hub.folder import model_info

    def predicted() -> list[str]:
        return [e.get_attribute("data-genre")
                for e in browser.find_elements(By.CSS_SELECTOR, "#genres li.predicted")]

    model = load_model("fast", sample_project / "models")
    with app_server(model, model_info(sample_project)) as url:
        browser.get(url)
        wait = WebDriverWait(browser, 30)
        assert browser.find_element(By.CSS_SELECTOR, "label[for=overview]").text == "Overview"
        browser.find_element(By.ID, "title").send_keys("The Farmhouse")
        browser.find_element(By.ID, "overview").send_keys(HAUNTING)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#genres li")
                   and "The Farmhouse" in d.find_element(By.ID, "why").text
                   and "exorcism" in d.find_element(By.ID, "why").text)
        first = browser.find_element(By.CSS_SELECTOR, "#genres li .name").text
        assert first == "Horror"
        at_model_thresholds = predicted()
        assert at_model_thresholds[0] == "Horror" and len(at_model_thresholds) >= 2
        marks = [m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, "#why mark")]
        assert marks and set(marks) & {"haunted", "ghost", "demonic", "exorcism", "priest"}

        slider = browser.find_element(By.ID, "threshold")
        slider.send_keys(Keys.HOME)  # keyboard, as a person would: 0, then 90 steps of 0.01
        slider.send_keys(*[Keys.ARROW_RIGHT] * 90)
        wait.until(lambda d: d.find_element(By.ID, "threshold-value").text == "0.90")
        at_09 = predicted()
        assert 1 <= len(at_09) < len(at_model_thresholds) and at_09[0] == "Horror"
        assert "at or above 0.90" in browser.find_element(By.ID, "status").text

        shot = tmp_path / "serve-page.png"
        assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        ARTIFACTS.mkdir(exist_ok=True)
        shutil.copy(shot, ARTIFACTS / "serve-page.png")
