"""What is served is what was evaluated: every consumer of both models scores the test split's
movies exactly as the evaluate stage scored them.

The evaluate stage's scores (``data/scores/test.joblib``, and ``accurate/data/scores`` for the
accurate model) are the reference. From the raw title and overview of each test movie,
``predict`` (a file, and ``--text``), the service (one movie at a time and a batch, over real
HTTP on loopback), and the published folder through ``from_pretrained`` must give the same
probabilities (bit for bit where they are not rounded; the CLI and the service round to four
decimals, as rounding the reference gives) and the same genres, so the same micro-F1. The
Space's start command is held to the same in tests/test_hub_space.py. Any change to the model
text in one consumer only (such as dropping the overview's final period) fails here.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tmdb_genres.accurate import embeddings as emb
from tmdb_genres.accurate import model as accurate_model
from tmdb_genres.accurate.model import AccurateModel, load_model
from tmdb_genres.cli import main
from tmdb_genres.hub import from_pretrained
from tmdb_genres.hub.folder import model_info, write_model_folder
from tmdb_genres.io import load_joblib, read_jsonl
from tmdb_genres.metadata import FEATURES
from tmdb_genres.model import GenreModel
from tmdb_genres.movie import METADATA_FIELDS

from .accurate_helpers import TEST_VERSION, make_accurate_project
from .conftest import ROOT
from .test_accurate import WordEncoder


@pytest.fixture(scope="module")
def project(_toy_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy pipeline's outputs with the accurate stages run on them (a stand-in encoder)."""
    root = Path(shutil.copytree(_toy_outputs, tmp_path_factory.mktemp("parity") / "project"))
    return make_accurate_project(root, WordEncoder(), True)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """The accurate model loads the stand-in encoder, as if it were the installed engine."""
    monkeypatch.setattr(emb, "package_version", lambda package: TEST_VERSION)
    monkeypatch.setattr(accurate_model, "load_encoder", lambda engine: WordEncoder())


def load(project: Path, kind: str, encoder: Any = WordEncoder) -> GenreModel | AccurateModel:
    """The ``fast`` or ``accurate`` model of ``project`` (``encoder=None``: the real engine)."""
    if kind == "fast":
        return load_model("fast", project / "models")
    return AccurateModel.load(project / "models", project / "accurate/models",
                              encoder=encoder() if encoder else None)


class Reference:
    """The evaluate stage's test scores of one model, and the raw test movies."""

    def __init__(self, project: Path, kind: str, encoder: Any = WordEncoder) -> None:
        scores = project / ("data/scores" if kind == "fast" else "accurate/data/scores")
        saved = load_joblib(scores / "test.joblib")
        self.root = project
        self.model = load(project, kind, encoder)
        assert list(saved["genres"]) == self.model.genres
        raw = {m["id"]: m for m in read_jsonl(project / "data/raw/movies.jsonl")}
        # each test movie as a caller sends it: title, overview and TMDB's metadata fields
        self.movies = [{"id": int(i), "title": raw[int(i)]["title"],
                        "overview": raw[int(i)]["overview"],
                        **{k: raw[int(i)][k] for k in METADATA_FIELDS if k in raw[int(i)]}}
                       for i in saved["ids"]]
        assert any(len(m) > 3 for m in self.movies)
        self.p = np.asarray(saved["P"], dtype=np.float64)
        self.labels = np.asarray(saved["Y"]) > 0
        self.genres = self.model.decide(self.p)
        self.rounded = [dict(zip(self.model.genres, row, strict=True))
                        for row in np.round(self.p, 4).tolist()]
        assert len(self.movies) >= 20 and any(m["overview"].endswith(".") for m in self.movies)

    def without_metadata(self) -> Reference:
        """The same reference for the test movies with every metadata field removed."""
        plain = copy.copy(self)
        plain.movies = [{k: m[k] for k in ("id", "title", "overview")} for m in self.movies]
        scores = self.root / ("data/scores/test.joblib" if isinstance(self.model, GenreModel)
                              else "accurate/data/scores/test.joblib")
        plain.p = np.asarray(load_joblib(scores)["P_no_metadata"], dtype=np.float64)
        plain.genres = self.model.decide(plain.p)
        plain.rounded = [dict(zip(self.model.genres, row, strict=True))
                         for row in np.round(plain.p, 4).tolist()]
        return plain

    def micro_f1(self, genres: list[list[str]]) -> float:
        column = {g: j for j, g in enumerate(self.model.genres)}
        chosen = np.zeros_like(self.labels)
        for row, names in enumerate(genres):
            chosen[row, [column[g] for g in names]] = True
        tp = float(np.sum(chosen & self.labels))
        return 2 * tp / (float(np.sum(chosen)) + float(np.sum(self.labels)))

    def check(self, scores: list[dict[str, float]], genres: list[list[str]], who: str) -> None:
        """``who``'s rounded scores and genres are the reference's, movie by movie."""
        assert len(scores) == len(genres) == len(self.movies), who
        for movie, want, got in zip(self.movies, self.rounded, scores, strict=True):
            assert got == want, f"{who}: movie {movie['id']} scored differently"
        assert genres == self.genres, who
        assert self.micro_f1(genres) == self.micro_f1(self.genres)

    def check_predicted(self, answers: list[dict[str, Any]], who: str) -> None:
        """:meth:`check` of ``predict``'s answers (``scores``, genre names)."""
        self.check([a["scores"] for a in answers], [a["genres"] for a in answers], who)

    def check_served(self, answers: list[dict[str, Any]], who: str) -> None:
        """:meth:`check` of the service's answers (``probabilities``, genre objects)."""
        self.check([a["probabilities"] for a in answers],
                   [[g["genre"] for g in a["genres"]] for a in answers], who)

    def predicted(self, tmp_path: Path, *args: str) -> list[dict[str, Any]]:
        """``tmdb-genres predict ARGS`` on these movies as a JSONL file: its answers."""
        source, out = tmp_path / "test.jsonl", tmp_path / "out.jsonl"
        source.write_text("".join(json.dumps(m) + "\n" for m in self.movies), encoding="utf-8")
        assert main(["predict", str(source), "-o", str(out), *args]) == 0
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module", params=["fast", "accurate"])
def reference(request: pytest.FixtureRequest, project: Path) -> Iterator[Reference]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(emb, "package_version", lambda package: TEST_VERSION)
        yield Reference(project, request.param)


def kind_of(reference: Reference) -> str:
    return "fast" if isinstance(reference.model, GenreModel) else "accurate"


def model_args(project: Path, kind: str) -> list[str]:
    return ["--models", str(project / "models"), "--model", kind,
            "--accurate-models", str(project / "accurate/models")]


def test_predict_file_scores_as_evaluate(reference: Reference, project: Path, tmp_path: Path,
                                         stand_in: None) -> None:
    answers = reference.predicted(tmp_path, *model_args(project, kind_of(reference)))
    assert [a["id"] for a in answers] == [m["id"] for m in reference.movies]
    reference.check_predicted(answers, "predict FILE")


def test_predict_text_scores_as_evaluate_without_metadata(
        reference: Reference, project: Path, stand_in: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--text`` carries no metadata: it scores as evaluate scored the test split with its
    metadata removed (both models' test scores hold those, ``P_no_metadata``)."""
    answers = []
    for movie in reference.movies:
        assert main(["predict", "--title", movie["title"], "--text", movie["overview"],
                     *model_args(project, kind_of(reference))]) == 0
        answers.append(json.loads(capsys.readouterr().out))
    plain = reference.without_metadata()
    plain.check_predicted(answers, "predict --text")


def test_the_service_scores_as_evaluate(reference: Reference, project: Path) -> None:
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from .serve_helpers import app_server

    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    info = model_info(project, kind_of(reference))
    with app_server(reference.model, info) as url:
        def post(body: Any, explain: str = "predicted") -> Any:
            response = requests.post(f"{url}/predict?explain={explain}", json=body, timeout=60)
            assert response.status_code == 200, response.text
            return response.json()

        single = [post(movie) for movie in reference.movies]
        batch = post({"movies": reference.movies})["movies"]
        plain = post({"movies": reference.movies}, "none")["movies"]
    for who, answers in (("service, one movie", single), ("service, batch", batch),
                         ("service, batch without words", plain)):
        reference.check_served(answers, who)


def test_the_published_folder_scores_as_evaluate(reference: Reference, project: Path,
                                                 tmp_path: Path) -> None:
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    write_model_folder(reference.model, model_info(project, kind_of(reference)),
                       tmp_path / "folder")
    model = from_pretrained(tmp_path / "folder", encoder=WordEncoder())
    # as the model card's snippets use it: with each movie's metadata, and without
    texts = [model.text(m["title"], m["overview"]) for m in reference.movies]
    p = model.probabilities(texts, [metadata_of(m) for m in reference.movies])
    assert np.array_equal(p, reference.p)  # bit for bit
    assert model.decide(p) == reference.genres
    assert np.array_equal(model.probabilities(texts), reference.without_metadata().p)


def metadata_of(movie: dict[str, Any]) -> dict[str, Any]:
    """A movie's metadata fields (those present)."""
    return {k: movie[k] for k in METADATA_FIELDS if k in movie}


def test_every_consumer_gives_the_same_probabilities_with_and_without_each_field(
        reference: Reference, project: Path, tmp_path: Path, stand_in: None) -> None:
    """The same movies with all their metadata, none of it, and each field alone: predict
    (JSONL and CSV), the service (one movie and a batch) and the published folder give the
    model's own probabilities for each variant, and the variants differ."""
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from .serve_helpers import app_server

    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    kind = kind_of(reference)
    info = model_info(project, kind)
    write_model_folder(reference.model, info, tmp_path / "folder")
    folder = from_pretrained(tmp_path / "folder", encoder=WordEncoder())
    base = reference.movies[:12]
    variants = {"all": METADATA_FIELDS, "none": (), **{f: (f,) for f in METADATA_FIELDS}}
    expected_by_variant = {}
    with app_server(reference.model, info) as url:
        for name, fields in variants.items():
            movies = [{**{k: m[k] for k in ("id", "title", "overview")},
                       **{k: m[k] for k in fields if k in m}} for m in base]
            texts = [reference.model.text(m["title"], m["overview"]) for m in movies]
            p = reference.model.probabilities(texts, [metadata_of(m) for m in movies])
            expected_by_variant[name] = p
            want = [dict(zip(reference.model.genres, row, strict=True))
                    for row in np.round(p, 4).tolist()]
            assert np.array_equal(folder.probabilities(texts, [metadata_of(m) for m in movies]),
                                  p), f"folder, {name}"
            jsonl, csv_file = tmp_path / f"{name}.jsonl", tmp_path / f"{name}.csv"
            jsonl.write_text("".join(json.dumps(m) + "\n" for m in movies), encoding="utf-8")
            columns = ["id", "title", "overview", *fields]
            with open(csv_file, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, columns)
                writer.writeheader()
                writer.writerows({k: m.get(k, "") for k in columns} for m in movies)
            for source in (jsonl, csv_file):
                out = tmp_path / f"{source.name}.out"
                assert main(["predict", str(source), "-o", str(out),
                             *model_args(project, kind)]) == 0
                got = [json.loads(line)["scores"]
                       for line in out.read_text(encoding="utf-8").splitlines()]
                assert got == want, f"predict {source.suffix}, {name}"
            single = [requests.post(f"{url}/predict", json=m, timeout=60).json()
                      for m in movies]
            plain = [requests.post(f"{url}/predict?explain=none", json=m, timeout=60).json()
                     for m in movies]
            batch = requests.post(f"{url}/predict", json={"movies": movies},
                                  timeout=60).json()["movies"]
            for who, answers in (("one movie", single), ("one movie, no words", plain),
                                 ("batch", batch)):
                assert [a["probabilities"] for a in answers] == want, f"service {who}, {name}"
    # every field the model encodes moves some probability; a field it does not, none
    svm = reference.model if isinstance(reference.model, GenreModel) else reference.model.svm
    encoded = {FEATURES[f] for f in svm.vectorizer.metadata.features}
    assert encoded and encoded != set(METADATA_FIELDS)
    for name in METADATA_FIELDS:
        same = np.array_equal(expected_by_variant[name], expected_by_variant["none"])
        assert same == (name not in encoded), name


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """The fast model trained on a third of the real data (skips without ../shared): real
    overviews end in periods, ellipses, quotes and white space."""
    from .conftest import require_shared_movies
    from .serve_helpers import train_sample_project

    root = train_sample_project(tmp_path_factory.mktemp("real"), require_shared_movies())
    return Reference(root, "fast")


def test_on_real_movies_predict_and_the_service_score_as_evaluate(real: Reference,
                                                                  tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from .serve_helpers import app_server

    real.check_predicted(real.predicted(tmp_path, "--models", str(Path(real.root) / "models")),
                         "predict FILE")
    with app_server(real.model, model_info(real.root)) as url:
        single = [requests.post(f"{url}/predict?explain=none", json=m, timeout=60).json()
                  for m in real.movies]
        batch = requests.post(f"{url}/predict", json={"movies": real.movies},
                              timeout=120).json()["movies"]
    for who, got in (("service, one movie", single), ("service, batch", batch)):
        real.check_served(got, who)
