"""Metadata features: lenient parsing, fitted on train only, robust when absent, one row path."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tmdb_genres.accurate.model import load_model
from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.featurize import featurize, load_split
from tmdb_genres.io import load_joblib, read_jsonl, write_jsonl
from tmdb_genres.metadata import MetadataEncoder, training_metadata
from tmdb_genres.params import parse_params
from tmdb_genres.prepare import prepare

from .conftest import toy_movies

FULL = {"original_language": "ja", "release_date": "1995-07-01", "vote_count": 120,
        "popularity": 9.5, "vote_average": 7.2}
# Partial and malformed inputs: each must give a prediction and no error.
ODD: list[Any] = [
    None, {}, {"original_language": "ja"}, {"release_date": "2013"},
    {"release_date": "13/05/2013", "original_language": "JA "},
    {"original_language": "zz", "vote_count": -5, "popularity": "n/a"},
    {"original_language": 7, "release_date": "soon", "vote_count": "120", "popularity": None,
     "vote_average": float("nan")},
    {"release_date": 1995, "vote_count": True, "popularity": float("inf"), "vote_average": 99},
    {"release_date": "1066-10-14"}, "not a mapping",
]


def encoder(params_data: dict[str, Any]) -> MetadataEncoder:
    params_data["featurize"]["metadata"].update(
        features=["language", "decade", "vote_count", "popularity", "vote_average"],
        language_min_movies=2)
    train = [FULL, FULL, {**FULL, "original_language": "en", "release_date": "2015-01-01",
                          "vote_count": 3000}, {**FULL, "original_language": "fr"}]
    return MetadataEncoder.fit(parse_params(params_data).featurize.metadata, train)


def active(enc: MetadataEncoder, metadata: Any) -> list[str]:
    return [enc.names[c] for c in enc.columns(metadata)]


def test_every_input_gets_one_valid_column_per_feature(params_data):
    enc = encoder(params_data)
    assert enc.levels["language"] == ["ja", "other"]  # en and fr: fewer than 2 movies
    assert enc.levels["decade"] == [1990, 2000, 2010]
    assert active(enc, FULL) == ["language=ja", "decade=1990", "vote_count=6",
                                 "popularity=3", "vote_average=7"]
    assert active(enc, None) == active(enc, {}) == active(enc, "not a mapping") == [
        "language=unknown", "decade=unknown", "vote_count=unknown", "popularity=unknown",
        "vote_average=unknown"]
    assert active(enc, {"release_date": "2013"})[1] == "decade=2010"  # a bare year
    assert active(enc, ODD[4])[:2] == ["language=ja", "decade=2010"]  # dd/mm/yyyy, " JA "
    # an unknown code is "other"; a negative count and a word are unknown
    assert active(enc, ODD[5])[::2] == ["language=other", "vote_count=unknown",
                                        "vote_average=unknown"]
    assert active(enc, ODD[5])[3] == "popularity=unknown"
    assert active(enc, ODD[6]) == ["language=unknown", "decade=unknown", "vote_count=6",
                                   "popularity=unknown", "vote_average=unknown"]
    # out of the training range: clamped to the nearest band; a bool is not a number
    assert active(enc, ODD[7]) == ["language=unknown", "decade=1990", "vote_count=unknown",
                                   "popularity=unknown", "vote_average=10"]
    assert active(enc, {"release_date": "1901-01-01", "vote_count": 10**9})[1:3] == [
        "decade=1990", "vote_count=11"]
    assert active(enc, ODD[8])[1] == "decade=unknown"  # not a plausible release year
    block = enc.transform(len(ODD), ODD).toarray()
    assert block.shape == (len(ODD), len(enc.names))
    assert np.all((block > 0).sum(axis=1) == 5) and set(np.unique(block)) == {0, enc.weight}
    assert (enc.transform(3).toarray() == enc.transform(3, [None] * 3).toarray()).all()
    assert MetadataEncoder.from_json(enc.to_json()) == enc


def test_training_drop_is_seeded_by_id_and_its_share_follows_the_params(params_data):
    params = parse_params(params_data).featurize.metadata
    ids = list(range(4000))
    seen = training_metadata(params, ids, [FULL] * len(ids))
    assert seen == training_metadata(params, ids, [FULL] * len(ids))
    dropped = sum(m is None for m in seen) / len(ids)
    assert abs(dropped - params.drop_rate) < 0.03
    kept = [m for m in seen if m is not None]
    share = 1 - sum(len(m) for m in kept) / (len(kept) * len(FULL))
    assert abs(share - params.field_drop_rate) < 0.02
    # by id, not by position: the same movie gets the same fate in any order
    assert training_metadata(params, ids[::-1], [FULL] * len(ids)) == seen[::-1]


def test_bad_metadata_params_are_one_line_errors(params_data):
    params_data["featurize"]["metadata"]["features"] = ["decade", "budget"]
    with pytest.raises(TmdbGenresError, match=r"featurize\.metadata\.features must be"):
        parse_params(params_data)


def test_missing_partial_and_malformed_metadata_predict_without_error(toy_project: Path):
    model = load_model("fast", toy_project / "models")
    assert model.vectorizer.metadata is not None  # the committed params use metadata
    text = model.text("Nightmare", "A haunted house, a ghost, a demon and blood.")
    inputs = [FULL, *ODD]
    batch = model.probabilities([text] * len(inputs), inputs)
    assert np.isfinite(batch).all() and ((batch > 0) & (batch < 1)).all()
    for i, metadata in enumerate(inputs):  # the single-text path: the same bits
        assert model.probabilities_one(text, metadata).tobytes() == batch[i].tobytes()
        assert model.predict_one(text, 3, metadata)[0].tobytes() == batch[i].tobytes()
        assert model.decide(batch[i:i + 1])[0]
    # no metadata at all is every field unknown, on both paths
    assert model.probabilities([text]).tobytes() == model.probabilities([text], [{}]).tobytes()
    assert model.probabilities_one(text).tobytes() == batch[1].tobytes()
    # and the metadata does move the probabilities (the block is not ignored)
    assert not np.array_equal(batch[0], batch[1])


def test_test_split_is_scored_with_and_without_its_metadata(toy_project: Path):
    test = load_split(toy_project / "data/features", "test")
    n_text = load_model("fast", toy_project / "models").vectorizer.n_text_features
    assert (test["X"][:, :n_text] != test["X_no_metadata"][:, :n_text]).nnz == 0
    assert (test["X"][:, n_text:] != test["X_no_metadata"][:, n_text:]).nnz > 0
    metrics = __import__("json").loads((toy_project / "metrics/metrics.json").read_text())
    assert {"test", "test_no_metadata", "validation"} <= set(metrics)
    assert set(metrics["test"]["noise"]) == set(metrics["test_no_metadata"]["noise"]) == {
        "micro_f1_sd", "micro_f1_band", "macro_f1_sd", "macro_f1_band"}
    assert (toy_project / "metrics/headline/test_no_metadata_micro.json").is_file()


def test_metadata_encoder_is_fitted_on_the_training_split_only(tmp_path: Path, params_data):
    """Leakage: the encoder's levels come from the training movies alone.

    A language and a decade that occur only in validation and test (in every one of their
    rows, far above the frequency floor) must not become columns, and rewriting those
    splits' metadata must not change one byte of the saved vectoriser or of the training
    matrix.
    """
    params = parse_params(params_data)
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, toy_movies(300))
    prepare(params.prepare, snapshot, tmp_path / "clean", tmp_path / "prepare.json")
    odd = {"original_language": "xq", "release_date": "1870-01-01", "vote_count": 10**7}
    for name, splits in (("leaky", ("validation", "test")), ("learnt", ("train",))):
        shutil.copytree(tmp_path / "clean", tmp_path / name)
        for split in splits:
            rows = read_jsonl(tmp_path / name / f"{split}.jsonl")
            write_jsonl(tmp_path / name / f"{split}.jsonl",
                        [{**row, "metadata": {**row["metadata"], **odd}} for row in rows])
    encoders = {}
    for name in ("clean", "leaky", "learnt"):
        featurize(params.featurize, tmp_path / name, tmp_path / f"{name}-features",
                  tmp_path / f"{name}.joblib")
        encoders[name] = load_joblib(tmp_path / f"{name}.joblib")["vectorizer"].metadata
    assert "xq" in encoders["learnt"].levels["language"]  # the control: learnt from train
    assert 1870 in encoders["learnt"].levels["decade"]
    leaky = encoders["leaky"]
    assert "xq" not in leaky.levels["language"] and min(leaky.levels["decade"]) > 1870
    assert max(leaky.levels["vote_count"]) < 23  # log2 of 10**7
    assert (tmp_path / "leaky.joblib").read_bytes() == (tmp_path / "clean.joblib").read_bytes()
    assert ((tmp_path / "leaky-features/train/00000.npz").read_bytes()
            == (tmp_path / "clean-features/train/00000.npz").read_bytes())


def test_prepare_keeps_the_raw_metadata_fields(tmp_path: Path, params_data):
    params = parse_params(params_data)
    movies = toy_movies(60)
    del movies[0]["release_date"]
    movies[1]["vote_count"] = "oops"  # kept raw: featurize reads it leniently
    write_jsonl(tmp_path / "movies.jsonl", movies)
    prepare(params.prepare, tmp_path / "movies.jsonl", tmp_path / "out", tmp_path / "r.json")
    rows = {row["id"]: row for split in ("train", "validation", "test")
            for row in read_jsonl(tmp_path / "out" / f"{split}.jsonl")}
    assert rows[1]["metadata"] == {k: movies[0][k] for k in
                                   ("original_language", "vote_count", "popularity",
                                    "vote_average")}
    assert rows[2]["metadata"]["vote_count"] == "oops"


def test_bootstrap_noise_is_seeded_and_matches_a_plain_resampling_loop():
    from tmdb_genres.evaluate import bootstrap_noise, multilabel_metrics

    rng = np.random.default_rng(1)
    y = rng.random((400, 6)) < 0.3
    decisions = np.where(rng.random((400, 6)) < 0.25, ~y, y)  # a quarter of cells wrong
    noise = bootstrap_noise(y, decisions, 400, seed=0)
    assert noise == bootstrap_noise(y, decisions, 400, seed=0)
    assert noise != bootstrap_noise(y, decisions, 400, seed=1)
    # an independent estimate: resample rows, recompute micro-F1 with evaluate's own metrics
    draws = [multilabel_metrics(y[rows], decisions[rows], list("abcdef"))["micro_f1"]
             for rows in np.random.default_rng(5).integers(0, 400, (400, 400))]
    assert noise["micro_f1_sd"] == pytest.approx(np.std(draws), rel=0.2)
    assert noise["micro_f1_band"] == pytest.approx(1.96 * noise["micro_f1_sd"], rel=0.2)
    assert noise["macro_f1_sd"] > 0
    assert set(bootstrap_noise(y, decisions, 0, seed=0).values()) == {0.0}


def test_a_text_only_model_writes_the_same_figures_without_metadata(tmp_path: Path,
                                                                     params_data):
    """`features: []` turns the block off; the no-metadata figures (declared DVC metrics)
    are still written, and equal the text-only model's own."""
    from .conftest import run_toy_pipeline

    params_data["featurize"]["metadata"]["features"] = []
    root = run_toy_pipeline(tmp_path, params_data, n=200)
    assert load_model("fast", root / "models").vectorizer.metadata is None
    scores = load_joblib(root / "data/scores/test.joblib")
    assert np.array_equal(scores["P"], scores["P_no_metadata"])
    headline = root / "metrics/headline"
    for average in ("micro", "macro"):
        assert ((headline / f"test_no_metadata_{average}.json").read_bytes()
                == (headline / f"test_{average}.json").read_bytes())


def test_calibration_is_fitted_on_validation_with_and_without_its_metadata(
        toy_project: Path):
    from tmdb_genres.model import fit_calibration, margins

    model = load_model("fast", toy_project / "models")
    validation = load_split(toy_project / "data/features", "validation")
    coef_t = np.asarray(model.coef).T
    with_metadata = margins(validation["X"], coef_t, model.intercept)
    removed = margins(validation["X_no_metadata"], coef_t, model.intercept)
    a, b = fit_calibration(with_metadata, validation["Y"], removed)
    assert np.array_equal(model.platt_a, a) and np.array_equal(model.platt_b, b)
    a_only, _ = fit_calibration(with_metadata, validation["Y"])
    assert not np.array_equal(a, a_only)  # the removed copy does count
