"""The crossval stage: folds by id hash, the main stages' steps per fold, same figures in any
number of processes, and no fold's test movies in its own fitting."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tmdb_genres import crossval as cv
from tmdb_genres.featurize import read_prepared_splits
from tmdb_genres.params import parse_params


def test_folds_depend_on_the_id_alone_and_are_balanced():
    folds = [cv.fold_of(i, 5, "salt") for i in range(5000)]
    assert set(folds) == set(range(5))
    assert all(900 < n < 1100 for n in Counter(folds).values())
    assert folds[1234] == cv.fold_of(1234, 5, "salt")
    assert folds != [cv.fold_of(i, 5, "pepper") for i in range(5000)]


def _params(params_data, workers: int):
    params_data["crossval"].update(folds=3, workers=workers)
    return parse_params(params_data)


def test_crossval_reports_every_variant_and_the_same_figures_in_two_processes(
        toy_project: Path, params_data, tmp_path: Path):
    reports = []
    for workers in (1, 2):
        out = tmp_path / str(workers)
        cv.crossval(_params(params_data, workers), toy_project / "data/prepared",
                    out / "crossval.json", out / "headline")
        reports.append({p.relative_to(out).as_posix(): p.read_bytes()
                        for p in sorted(out.rglob("*.json"))})
    assert reports[0] == reports[1]
    report = json.loads(reports[0]["crossval.json"])
    assert [fold["fold"] for fold in report["folds"]] == [0, 1, 2]
    assert sum(fold["rows"]["test"] for fold in report["folds"]) == sum(
        len(rows) for rows in read_prepared_splits(toy_project / "data/prepared").values())
    assert set(report["summary"]) == {"metadata", "metadata_removed", "text"}
    micro = [fold["metadata"]["micro_f1"] for fold in report["folds"]]
    assert report["summary"]["metadata"]["micro_f1"]["mean"] == pytest.approx(
        sum(micro) / 3, abs=1e-4)
    assert 0.5 < report["summary"]["text"]["micro_f1"]["mean"] <= 1
    assert report["gain_over_text"]["macro_f1"]["folds_gaining"] in range(4)
    headline = json.loads(reports[0]["headline/crossval_micro.json"])
    assert headline["f1"] == report["summary"]["metadata"]["micro_f1"]["mean"]
    assert sorted(reports[0]) == ["crossval.json", "headline/crossval_macro.json",
                                  "headline/crossval_micro.json",
                                  "headline/crossval_text_macro.json",
                                  "headline/crossval_text_micro.json"]


def test_a_folds_test_and_validation_movies_never_reach_its_vectorizer(
        toy_project: Path, params_data, monkeypatch: pytest.MonkeyPatch):
    """Leakage: each fold fits TF-IDF and the metadata encoder on its training movies only."""
    params = _params(params_data, 1)
    fitted: list[set[str]] = []
    real = cv.fit_vectorizer

    def recording(featurize_params, texts, metadata=None):
        fitted.append(set(texts))
        return real(featurize_params, texts, metadata)

    monkeypatch.setattr(cv, "fit_vectorizer", recording)
    movies = [row for rows in read_prepared_splits(toy_project / "data/prepared").values()
              for row in rows]
    for fold in range(3):
        cv.run_fold(params, movies, fold)
        held_out = {row["text"] for row in movies
                    if cv.fold_of(row["id"], 3, params.crossval.salt) in (fold, (fold + 1) % 3)}
        assert fitted[-1] and not fitted[-1] & held_out


def test_each_fold_picks_the_global_threshold_with_the_best_validation_micro_f1():
    import numpy as np

    from tmdb_genres.evaluate import GRID, best_global_threshold, multilabel_metrics

    rng = np.random.default_rng(3)
    y = rng.random((300, 5)) < 0.3
    p = np.clip(y * 0.35 + rng.random((300, 5)) * 0.6, 0, 1)
    f1 = [multilabel_metrics(y, p >= t, list("abcde"))["micro_f1"] for t in GRID]
    best = best_global_threshold(y, p)
    assert best in GRID and f1[list(GRID).index(best)] == max(f1)
    assert GRID[0] < best < GRID[-1]  # an interior optimum, not a boundary default
