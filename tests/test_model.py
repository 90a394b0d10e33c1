from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.model import GenreModel, apply_thresholds, calibrated, fit_platt


def test_platt_recovers_a_known_sigmoid():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=20000)
    labels = rng.random(20000) < 1 / (1 + np.exp(-2.0 * scores + 0.5))
    a, b = fit_platt(scores, labels)
    assert a == pytest.approx(-2.0, abs=0.1)
    assert b == pytest.approx(0.5, abs=0.1)


def test_platt_handles_a_genre_with_no_positives():
    a, b = fit_platt(np.linspace(-2, 2, 50), np.zeros(50))
    probabilities = calibrated(np.linspace(-2, 2, 50), np.array(a), np.array(b))
    assert np.all(np.isfinite(probabilities)) and probabilities.max() < 0.1


def test_apply_thresholds_and_at_least_one():
    p = np.array([[0.9, 0.2, 0.6], [0.1, 0.3, 0.2]])
    thresholds = np.array([0.5, 0.5, 0.7])
    assert apply_thresholds(p, thresholds, False).tolist() == [
        [True, False, False], [False, False, False]]
    assert apply_thresholds(p, thresholds, True).tolist()[1] == [False, True, False]


def test_model_ranks_genres_highest_first(toy_project: Path):
    model = GenreModel.load(toy_project / "models/vectorizer.joblib",
                            toy_project / "models/model.joblib",
                            toy_project / "models/thresholds.json")
    texts = [model.text("Nightmare", "A haunted house, a ghost, a demon and blood."),
             model.text("Star", "An alien spaceship lands on a robot planet.")]
    probabilities = model.probabilities(texts)
    assert probabilities.shape == (2, 19)
    ranked = model.decide(probabilities)
    assert ranked[0][0] == "Horror" and ranked[1][0] == "Science Fiction"
    order = [probabilities[0][model.genres.index(g)] for g in ranked[0]]
    assert order == sorted(order, reverse=True)
    assert model.probabilities([]).shape == (0, 19) and model.decide(model.probabilities([])) == []


def test_missing_model_is_one_clear_error(tmp_path: Path):
    with pytest.raises(TmdbGenresError, match="run `dvc repro`"):
        GenreModel.load(tmp_path / "v", tmp_path / "m", tmp_path / "t")


def test_model_files_from_another_version_are_one_clear_error(toy_project: Path, tmp_path: Path):
    from tmdb_genres.io import dump_joblib, load_joblib

    models = toy_project / "models"
    old = {**load_joblib(models / "model.joblib"), "format": 1}
    dump_joblib(tmp_path / "model.joblib", old)
    with pytest.raises(TmdbGenresError, match=r"has format 1, expected 2.*rerun `dvc repro`"):
        GenreModel.load(models / "vectorizer.joblib", tmp_path / "model.joblib",
                        models / "thresholds.json")
    blob = (models / "vectorizer.joblib").read_bytes()
    (tmp_path / "vectorizer.joblib").write_bytes(blob[: len(blob) // 2])  # a truncated copy
    with pytest.raises(TmdbGenresError, match=r"cannot read .*rerun `dvc repro`"):
        GenreModel.load(tmp_path / "vectorizer.joblib", models / "model.joblib",
                        models / "thresholds.json")


def test_single_text_path_and_explanations(toy_project: Path):
    model = GenreModel.load(toy_project / "models/vectorizer.joblib",
                            toy_project / "models/model.joblib",
                            toy_project / "models/thresholds.json")
    texts = [model.text("Nightmare", "A haunted house, a ghost, a demon and blood."),
             model.text("", "Hilarious jokes; a wacky prank."), "", "the of a"]
    batch = model.probabilities(texts)
    for i, text in enumerate(texts):
        probabilities, words = model.predict_one(text, top=3)
        assert probabilities.tobytes() == batch[i].tobytes()
        assert probabilities.tobytes() == model.probabilities_one(text).tobytes()
        assert words == model.explain(text, top=3) and set(words) == set(model.genres)
        for pairs in words.values():
            assert len(pairs) <= 3
            amounts = [amount for _, amount in pairs]
            assert all(a > 0 for a in amounts) and amounts == sorted(amounts, reverse=True)
            assert {word for word, _ in pairs} <= set(re.findall(r"\w+", text.lower()))
    horror = [word for word, _ in model.explain(texts[0])["Horror"]]
    assert {"haunted", "ghost", "demon", "blood"} & set(horror[:2])
    assert not {"a", "and"} & set(horror)  # stop words are left out
    comedy = [word for word, _ in model.explain(texts[1])["Comedy"]]
    assert set(comedy[:3]) <= {"hilarious", "jokes", "wacky", "prank"}
    assert model.explain("")["Horror"] == [] and model.explain("the of a")["Horror"] == []
