"""Accurate stage 3, ensemble: average the SVM's and the head's calibrated probabilities.

The SVM's scores are the main pipeline's ``data/scores``; the head's come from the embeddings.
The weight of the SVM (the head gets the rest) is chosen on validation only, from a grid of
``ensemble.step``: one weight for every genre (``weights: global``, the best mean of micro-
and macro-F1) or one per genre (``per_genre``, each genre's best F1). Decisions use the main
pipeline's ``evaluate`` section and evaluate.py's functions, so the three models are scored
alike. Writes the ensemble's scores (for the evaluate stage), ``models/ensemble.json`` and the
side-by-side metrics of the SVM, the embeddings head and the ensemble. The ensemble's test
scores also hold them with every metadata field removed (``P_no_metadata``, as the SVM's do).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths
from ..errors import TmdbGenresError
from ..evaluate import load_scores, scores_at_thresholds
from ..io import atomic_dir, dump_joblib, write_json
from ..params import EnsembleParams, EvaluateParams, load_accurate_params, load_params
from .embed import load_embeddings
from .embeddings import ENGINES
from .head import head_probabilities, load_head

SCORE_DECIMALS = 6
ENSEMBLE_FORMAT = 1


def combine(p_svm: np.ndarray, p_head: np.ndarray, w_svm: np.ndarray) -> np.ndarray:
    """``w * svm + (1 - w) * head`` per genre, rounded (the bytes every CPU agrees on)."""
    w = np.asarray(w_svm, dtype=np.float64)
    return np.round(w * p_svm + (1.0 - w) * p_head, SCORE_DECIMALS)


def score(evaluate: EvaluateParams, genres: list[str], val: dict[str, Any],
          splits: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Thresholds from ``val`` by the evaluate rules, then the metrics of every split."""
    return scores_at_thresholds(evaluate, genres, val, splits)[2]


def choose_weights(params: EnsembleParams, evaluate: EvaluateParams, genres: list[str],
                   y: np.ndarray, p_svm: np.ndarray, p_head: np.ndarray) -> np.ndarray:
    """The SVM's weight per genre, chosen on validation (ties go to the larger SVM weight)."""
    grid = np.round(np.arange(0.0, 1.0 + 1e-9, params.step), 4)
    grid = grid[grid <= 1.0]
    results = []
    for w in grid:
        p = combine(p_svm, p_head, np.full(len(genres), w))
        results.append(score(evaluate, genres, {"Y": y, "P": p}, {"v": {"Y": y, "P": p}})["v"])
    if params.weights == "global":
        gains = [(m["micro_f1"] + m["macro_f1"]) / 2 for m in results]
        best = max(range(len(grid)), key=lambda i: (gains[i], grid[i]))
        return np.full(len(genres), float(grid[best]))
    weights = []
    for genre in genres:
        f1 = [m["per_genre"][genre]["f1"] for m in results]
        weights.append(float(grid[max(range(len(grid)), key=lambda i: (f1[i], grid[i]))]))
    return np.array(weights)


def side_by_side(evaluate: EvaluateParams, genres: list[str],
                 models: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Micro/macro F1 (validation, test) and per-genre test F1 of each model."""
    out = {}
    for name, splits in models.items():
        metrics = score(evaluate, genres, splits["validation"], splits)
        out[name] = {
            split: {"micro_f1": m["micro_f1"], "macro_f1": m["macro_f1"],
                    "samples_f1": m["samples_f1"]}
            for split, m in metrics.items()
        }
        out[name]["test"]["per_genre_f1"] = {
            g: metrics["test"]["per_genre"][g]["f1"] for g in genres}
    return out


def ensemble(params: EnsembleParams, evaluate: EvaluateParams, svm_scores: Path,
             embeddings: Path, head_path: Path, scores_out: Path, model_out: Path,
             compare_out: Path) -> dict[str, Any]:
    """Run the stage; return the side-by-side metrics."""
    svm = load_scores(svm_scores)
    head = load_head(head_path)
    genres = head["genres"]
    splits: dict[str, dict[str, dict[str, Any]]] = {"svm": {}, "embeddings": {}}
    vectors: dict[str, np.ndarray] = {}
    for split in ("validation", "test"):
        emb = load_embeddings(embeddings, split)
        vectors[split] = emb["X"]
        if svm[split]["genres"] != genres or not np.array_equal(svm[split]["ids"], emb["ids"]):
            raise TmdbGenresError(
                f"the SVM's {split} scores and the embeddings are of different movies or genres",
                "run `dvc repro` in the project root, then in accurate/")
        y = np.asarray(svm[split]["Y"])
        splits["svm"][split] = {"Y": y, "P": np.asarray(svm[split]["P"], dtype=np.float64)}
        splits["embeddings"][split] = {"Y": y, "P": head_probabilities(head, emb["X"],
                                                                       emb["metadata"])}
    val_svm, val_head = splits["svm"]["validation"], splits["embeddings"]["validation"]
    w = choose_weights(params, evaluate, genres, val_svm["Y"], val_svm["P"], val_head["P"])
    splits["ensemble"] = {
        split: {"Y": splits["svm"][split]["Y"],
                "P": combine(splits["svm"][split]["P"], splits["embeddings"][split]["P"], w)}
        for split in ("validation", "test")
    }
    saved = {split: {"ids": svm[split]["ids"], "Y": splits["ensemble"][split]["Y"],
                     "P": splits["ensemble"][split]["P"], "genres": genres}
             for split in ("validation", "test")}
    if "P_no_metadata" in svm["test"]:  # test with every metadata field removed (the evaluate
        # stage scores it too): what the page, `predict --text` and a bare CSV send
        saved["test"]["P_no_metadata"] = combine(
            np.asarray(svm["test"]["P_no_metadata"], dtype=np.float64),
            head_probabilities(head, vectors["test"]), w)
    with atomic_dir(scores_out) as tmp:
        for split, scores in saved.items():
            dump_joblib(paths.split_file(tmp, split, ".joblib"), scores)
    write_json(model_out, {
        "format": ENSEMBLE_FORMAT,
        "weights": params.weights,
        "svm_weight": {g: round(float(x), 4) for g, x in zip(genres, w, strict=True)},
        "embedding": head["embedding"],
    })
    compare = side_by_side(evaluate, genres, splits)
    write_json(compare_out, compare)
    return compare


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the accurate model's params file")
    parser.add_argument("--main-params", type=Path, default=Path("..") / paths.PARAMS,
                        help="the main params file (its evaluate section decides thresholds)")
    parser.add_argument("--svm-scores", type=Path, default=Path("..") / paths.SCORES_DIR,
                        help="calibrated SVM scores written by the main train stage")
    parser.add_argument("--embeddings", type=Path, default=Path("data/embeddings"),
                        help="directory written by the embed stage")
    parser.add_argument("--head", type=Path, default=Path("models/head.json"),
                        help="the head written by the head stage")
    parser.add_argument("--scores", type=Path, default=Path("data/scores"),
                        help="where to write the ensemble's validation/test scores")
    parser.add_argument("--model", type=Path, default=Path("models/ensemble.json"),
                        help="where to write the ensemble weights (JSON)")
    parser.add_argument("--compare", type=Path, default=Path("metrics/compare.json"),
                        help="side-by-side metrics of the SVM, the head and the ensemble")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the ensemble stage."""
    params = load_accurate_params(args.params, ENGINES).ensemble
    evaluate = load_params(args.main_params).evaluate
    compare = ensemble(params, evaluate, args.svm_scores, args.embeddings, args.head,
                       args.scores, args.model, args.compare)
    line = ", ".join(f"{name} {m['test']['micro_f1']:.4f} / {m['test']['macro_f1']:.4f}"
                     for name, m in compare.items())
    print(f"ensemble: test micro / macro F1: {line} -> {args.model}")
