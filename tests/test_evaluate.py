from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tmdb_genres.evaluate import (
    choose_thresholds,
    evaluate,
    multilabel_metrics,
    tune_threshold,
)
from tmdb_genres.io import dump_joblib, load_joblib
from tmdb_genres.params import parse_params

from .conftest import ROOT


def test_metrics_match_scikit_learn():
    from sklearn.metrics import f1_score, hamming_loss, precision_score

    rng = np.random.default_rng(1)
    y = rng.random((200, 5)) < 0.3
    d = rng.random((200, 5)) < 0.3
    m = multilabel_metrics(y, d, list("abcde"))
    for average in ("micro", "macro", "weighted", "samples"):
        expected = f1_score(y, d, average=average, zero_division=0)
        assert m[f"{average}_f1"] == pytest.approx(expected, abs=1e-4)
    assert m["micro_precision"] == pytest.approx(precision_score(y, d, average="micro"), abs=1e-4)
    assert m["hamming_loss"] == pytest.approx(hamming_loss(y, d), abs=1e-4)
    assert m["per_genre"]["a"]["support"] == int(y[:, 0].sum())


def test_tuned_threshold_separates_classes():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    assert 0.3 < tune_threshold(y, p, fallback=0.5) <= 0.6


def test_choose_thresholds_modes_and_overrides(params_data):
    y = np.array([[0, 1]] * 3 + [[1, 0]] * 3)
    p = np.array([[0.1, 0.9]] * 3 + [[0.7, 0.2]] * 3)
    params_data["evaluate"].update(mode="fixed", threshold=0.4, per_genre={"Drama": 0.8})
    fixed = choose_thresholds(parse_params(params_data).evaluate, ["Action", "Drama"], y, p)
    assert fixed == {"Action": 0.4, "Drama": 0.8}
    params_data["evaluate"].update(mode="tuned", tuned_min_positives=3, per_genre={})
    tuned = choose_thresholds(parse_params(params_data).evaluate, ["Action", "Drama"], y, p)
    assert 0.1 < tuned["Action"] <= 0.7 and 0.2 < tuned["Drama"] <= 0.9
    params_data["evaluate"]["tuned_min_positives"] = 4
    rare = choose_thresholds(parse_params(params_data).evaluate, ["Action", "Drama"], y, p)
    assert rare == {"Action": 0.4, "Drama": 0.4}  # too few positives: the global threshold


def test_threshold_edit_changes_thresholds_and_metrics(toy_project: Path, params_data):
    before = json.loads((toy_project / "metrics/metrics.json").read_text(encoding="utf-8"))
    params_data["evaluate"].update(mode="fixed", threshold=0.9, at_least_one=False)
    evaluate(parse_params(params_data).evaluate, toy_project / "data/scores",
             toy_project / "models/thresholds.json", toy_project / "metrics/metrics.json",
             toy_project / "metrics/plots")
    after = json.loads((toy_project / "metrics/metrics.json").read_text(encoding="utf-8"))
    thresholds = json.loads((toy_project / "models/thresholds.json").read_text(encoding="utf-8"))
    assert set(thresholds["thresholds"].values()) == {0.9}
    assert after["test"]["predicted_per_movie"] < before["test"]["predicted_per_movie"]


def test_plots_are_written_for_dvc(toy_project: Path):
    plots = toy_project / "metrics/plots"
    sweep = json.loads((plots / "threshold_sweep.json").read_text(encoding="utf-8"))
    assert set(sweep[0]) == {"threshold", "split", "average", "f1", "in_force"}
    assert len(sweep) == 99 * 2 * 2  # every grid threshold, split and average
    assert {(r["split"], r["average"]) for r in sweep} == {
        (s, a) for s in ("validation", "test") for a in ("micro", "macro")}
    committed = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert {r["in_force"] for r in sweep} == {committed["evaluate"]["threshold"]}
    assert len(json.loads((plots / "per_genre_f1.json").read_text(encoding="utf-8"))) == 19
    curves = sorted((plots / "precision_recall").glob("*.json"))
    assert len(curves) == 19
    for curve in curves:
        points = json.loads(curve.read_text(encoding="utf-8"))
        assert points and all(0 <= q["precision"] <= 1 and 0 <= q["recall"] <= 1 for q in points)
        assert points[0]["threshold"] == 0.0 and points[0]["recall"] in (0.0, 1.0)
    confusion = json.loads((plots / "confusion.json").read_text(encoding="utf-8"))
    assert set(confusion[0]) == {"actual", "predicted", "share"}
    assert all(0 <= row["share"] <= 1 for row in confusion)


def test_per_genre_overrides_win_in_tuned_mode_too(params_data):
    y = np.array([[0, 1]] * 3 + [[1, 0]] * 3)
    p = np.array([[0.1, 0.9]] * 3 + [[0.7, 0.2]] * 3)
    params_data["evaluate"].update(mode="tuned", tuned_min_positives=3, threshold=0.95,
                                   per_genre={"Drama": 0.05})
    tuned = choose_thresholds(parse_params(params_data).evaluate, ["Action", "Drama"], y, p)
    assert tuned == {"Action": 0.7, "Drama": 0.05}  # Drama has enough positives to tune
    params_data["evaluate"].update(per_genre={})
    tuned = choose_thresholds(parse_params(params_data).evaluate, ["Action", "Drama"], y, p)
    assert tuned == {"Action": 0.7, "Drama": 0.9}  # what Drama's tuning gives without it
    params_data["evaluate"].update(tuned_min_positives=4, per_genre={"Drama": 0.05})
    rare = choose_thresholds(parse_params(params_data).evaluate, ["Action", "Drama"], y, p)
    assert rare == {"Action": 0.95, "Drama": 0.05}  # too rare to tune: the override still wins


def _evaluate_copy(project: Path, out: Path, params, change: dict[str, int]) -> dict:
    """Evaluate a copy of ``project``'s scores in which the named splits' scores are random."""
    scores = out / "scores"
    shutil.copytree(project / "data/scores", scores)
    for split, seed in change.items():
        data = load_joblib(scores / f"{split}.joblib")
        rng = np.random.default_rng(seed)
        data["P"] = rng.random(data["P"].shape)
        data["Y"] = data["Y"][rng.permutation(len(data["Y"]))]
        dump_joblib(scores / f"{split}.joblib", data)
    metrics = evaluate(params, scores, out / "thresholds.json", out / "metrics.json",
                       out / "plots")
    return {"thresholds": json.loads((out / "thresholds.json").read_text(encoding="utf-8")),
            "validation": metrics["validation"]}


def test_tuned_thresholds_never_see_the_test_split(toy_project: Path, tmp_path: Path,
                                                   params_data):
    """Leakage: `mode: tuned` picks thresholds on validation scores only.

    Replacing the test split's scores and labels must leave every tuned threshold (and the
    validation metrics) as they were; replacing validation's must move them (the control).
    """
    # far from where the toy genres separate, so a tuned threshold differs from the default
    params_data["evaluate"].update(mode="tuned", tuned_min_positives=1, threshold=0.99,
                                   per_genre={})
    params = parse_params(params_data).evaluate
    clean = _evaluate_copy(toy_project, tmp_path / "clean", params, {})
    tuned = {g: t for g, t in clean["thresholds"]["thresholds"].items() if t != params.threshold}
    assert len(tuned) >= 3, "too few genres were tuned for this test to mean anything"
    assert _evaluate_copy(toy_project, tmp_path / "test", params, {"test": 1}) == clean
    changed = _evaluate_copy(toy_project, tmp_path / "val", params, {"validation": 1})
    assert changed["thresholds"] != clean["thresholds"]


def test_confusion_shares_are_per_true_genre():
    from tmdb_genres.evaluate import confusion_shares

    y = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    decisions = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=bool)
    shares = {(r["actual"], r["predicted"]): r["share"]
              for r in confusion_shares(y, decisions, ["A", "B", "C"])}
    assert shares[("A", "A")] == round(2 / 3, 4)  # recall of A
    assert shares[("A", "B")] == round(2 / 3, 4)
    assert shares[("B", "B")] == 0.5 and shares[("B", "C")] == 0.5
    assert not any(actual == "C" for actual, _ in shares)  # no true C movie


def test_headline_files_hold_micro_and_macro_scores_of_each_split(toy_project: Path):
    metrics = json.loads((toy_project / "metrics/metrics.json").read_text(encoding="utf-8"))
    files = sorted((toy_project / "metrics/headline").glob("*.json"))
    assert [f.name for f in files] == ["test_macro.json", "test_micro.json",
                                       "test_no_metadata_macro.json",
                                       "test_no_metadata_micro.json",
                                       "validation_macro.json", "validation_micro.json"]
    for f in files:
        split, average = f.stem.rsplit("_", 1)
        figures = json.loads(f.read_text(encoding="utf-8"))
        assert figures == {name: metrics[split][f"{average}_{name}"]
                           for name in ("f1", "precision", "recall")}
