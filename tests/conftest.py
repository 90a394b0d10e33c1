"""Shared fixtures: small data built in code, and the real shared TMDB data when present."""

from __future__ import annotations

import copy
import functools
import random
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

try:  # a pytest hook; the fallback is for scripts that put tests/ itself on sys.path
    from .skip_summary import pytest_terminal_summary
except ImportError:
    from skip_summary import pytest_terminal_summary  # type: ignore[no-redef]  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SHARED_MOVIES = SHARED_DATA / "movies.jsonl.gz"

# A few words that make each toy genre learnable.
_TOY_VOCABULARY = {
    28: ["explosion", "chase", "fight", "mercenary", "gun"],  # Action
    35: ["hilarious", "prank", "wacky", "jokes", "laugh"],  # Comedy
    18: ["grief", "family", "struggle", "memory", "loss"],  # Drama
    27: ["haunted", "ghost", "blood", "scream", "demon"],  # Horror
    878: ["spaceship", "alien", "planet", "robot", "galaxy"],  # Science Fiction
}


def toy_movies(n: int = 400, seed: int = 0) -> list[dict[str, Any]]:
    """Synthetic TMDB movie objects whose overviews carry their genres' words."""
    rng = random.Random(seed)
    genre_ids = sorted(_TOY_VOCABULARY)
    movies = []
    for movie_id in range(1, n + 1):
        genres = rng.sample(genre_ids, rng.choice([1, 1, 2]))
        words = [w for g in genres for w in rng.sample(_TOY_VOCABULARY[g], 3)]
        words += rng.sample(["the", "a", "story", "of", "man", "woman", "city", "night"], 4)
        rng.shuffle(words)
        movies.append(
            {
                "id": movie_id,
                "title": f"Movie {movie_id}",
                "overview": " ".join(words).capitalize() + ".",
                "genre_ids": genres,
                "original_language": "en" if movie_id % 5 else "fr",
                "release_date": f"{1990 + movie_id % 30}-01-01",
                "popularity": 1.5,
                "vote_average": 6.0,
                "vote_count": movie_id,
            }
        )
    return movies


@pytest.fixture
def params_data() -> dict[str, Any]:
    """The committed params.yaml as a mapping (a fresh copy per test)."""
    with open(ROOT / "params.yaml", encoding="utf-8") as handle:
        return copy.deepcopy(yaml.safe_load(handle))


@pytest.fixture
def shared_movies() -> Path:
    """The real TMDB snapshot beside the checkout; skips the test where it is absent."""
    return require_shared_movies()


def require_shared_movies() -> Path:
    """The real TMDB snapshot beside the checkout; skips the calling test (or fixture, of any
    scope) where it is absent."""
    if not SHARED_MOVIES.is_file():
        pytest.skip(f"real TMDB data not found at {SHARED_MOVIES} (../shared/data beside the "
                    "checkout); where CI lacks it, the job summary lists this skip")
    return SHARED_MOVIES


def run_stages(root: Path, params: Any, movies: list[dict[str, Any]]) -> Path:
    """Run prepare -> featurize -> train -> evaluate in process on ``movies`` under ``root``,
    with ``params`` (parsed params.yaml), writing where `dvc repro` writes."""
    from tmdb_genres.evaluate import evaluate
    from tmdb_genres.featurize import featurize
    from tmdb_genres.io import write_jsonl
    from tmdb_genres.prepare import prepare
    from tmdb_genres.train import train

    write_jsonl(root / "data/raw/movies.jsonl", movies)
    prepare(params.prepare, root / "data/raw/movies.jsonl", root / "data/prepared",
            root / "metrics/prepare.json")
    featurize(params.featurize, root / "data/prepared", root / "data/features",
              root / "models/vectorizer.joblib")
    train(params.train, root / "data/features", root / "models/model.joblib",
          root / "data/scores")
    evaluate(params.evaluate, root / "data/scores", root / "models/thresholds.json",
             root / "metrics/metrics.json", root / "metrics/plots", root / "metrics/headline")
    return root


def run_toy_pipeline(root: Path, params_data: dict[str, Any], n: int = 400) -> Path:
    """Run prepare -> featurize -> train -> evaluate on toy movies under ``root``."""
    from tmdb_genres.params import parse_params

    return run_stages(root, parse_params(params_data), toy_movies(n))


@pytest.fixture(scope="session")
def _toy_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with open(ROOT / "params.yaml", encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    return run_toy_pipeline(tmp_path_factory.mktemp("toy"), data)


@pytest.fixture
def toy_project(tmp_path: Path, _toy_outputs: Path) -> Path:
    """A private copy of every pipeline output, built once from toy movies."""
    import shutil

    return Path(shutil.copytree(_toy_outputs, tmp_path / "project"))


def signal_when(proc: subprocess.Popen, ready: Callable[[], bool], waiting_for: str,
                timeout: float = 60.0, signum: int = signal.SIGKILL,
                interval: float = 0.01) -> int:
    """Poll until ``ready()`` holds (failing, with ``waiting_for`` and the process's stderr
    if piped, should ``proc`` end first or ``timeout`` pass), send ``proc`` ``signum`` and
    wait for it; return its exit code."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            error = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"{waiting_for}: the process ended first {error!r}")
        assert time.monotonic() < deadline, f"{waiting_for}: not within {timeout:g} s"
        time.sleep(interval)
    proc.send_signal(signum)
    return proc.wait(timeout=60)


@functools.cache
def built_wheel() -> Path:
    """This checkout's wheel (``pip wheel`` of a clean copy of the sources), built once per
    test process and removed at its end (a published folder and a Space carry it)."""
    import atexit

    from tmdb_genres.hub import space

    folder = Path(tempfile.mkdtemp(prefix="tmdb-genres-test-wheel-"))
    atexit.register(shutil.rmtree, folder, True)
    return space.build_wheel(ROOT, folder)


@pytest.fixture
def wheel() -> Path:
    """This checkout's wheel (see :func:`built_wheel`)."""
    return built_wheel()


@pytest.fixture
def hub() -> Iterator[Any]:
    """A loopback fake of the Hugging Face Hub (tests/hub_fake.py), stopped after the test."""
    from .hub_fake import FakeHub

    fake = FakeHub().start()
    yield fake
    fake.stop()
