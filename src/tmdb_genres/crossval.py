"""Stage crossval: k-fold cross-validation of the committed params, with and without metadata.

One test split of about 1,200 movies moves micro-F1 by about +-0.01 from the choice of movies
alone, more than most changes worth making. Here every prepared movie (all three splits) falls
in one of ``crossval.folds`` folds by a hash of its id; fold k is the test once, fold k+1 its
validation, the rest its training movies. Each fold runs the main stages' own steps
(:func:`featurize.fit_vectorizer` on training movies only, :func:`featurize.features` of
each split's texts transformed once for all variants, :func:`train.fit_genre`, then
:func:`model.fit_calibration` and one global threshold, the best micro-F1 of
:func:`evaluate.best_global_threshold`, on validation) for three variants:

- ``metadata``: the committed model, tested with each movie's metadata;
- ``metadata_removed``: the same model, tested with every metadata field removed;
- ``text``: the same params with the metadata block off (TF-IDF only).

Each fold chooses its own global threshold on its own validation fold (every movie gives
at least one genre), as the committed ``evaluate.threshold`` was chosen on the fixed
validation split: the committed value saw movies that are test folds here, and the stage
does not rerun on a threshold edit, which stays an evaluate-only change.

The stage writes each variant's per-fold, mean and standard deviation of test micro- and
macro-F1 and the per-fold gain of metadata over text to ``metrics/crossval.json``, and the
means to ``metrics/headline/crossval_*.json`` (declared metrics). Folds are independent and
run in ``crossval.workers`` processes; the figures do not depend on how many.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .evaluate import HEADLINE, best_global_threshold, scores_at_thresholds
from .featurize import features, fit_vectorizer, label_matrix, read_prepared_splits, text_features
from .genres import genre_names
from .idhash import id_hash
from .io import write_json
from .model import calibrated, margins
from .numeric import settle
from .params import EvaluateParams, Params, load_params

VARIANTS = ("metadata", "metadata_removed", "text")
FIGURES = tuple(f"{average}_{name}" for average in ("micro", "macro") for name in HEADLINE)


def fold_of(movie_id: int, folds: int, salt: str) -> int:
    """The fold (0..folds-1) a TMDB id falls in, by a hash of ``salt:id``."""
    return id_hash(f"{salt}:{movie_id}") * folds >> 64


def _fit_and_score(params: Params, vectorizer: Any, train: list[dict[str, Any]],
                   validation: list[dict[str, Any]], tests: dict[str, Any],
                   genres: list[str], text: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Fit the SVMs on ``train``, calibrate and choose thresholds on ``validation``, and
    return the metrics of every test matrix in ``tests`` (name -> (X, Y)); ``text`` holds
    the :func:`featurize.text_features` of ``train`` and ``validation``."""
    from .model import fit_calibration
    from .train import fit_genre

    x = features(vectorizer, params.featurize, train, training=True, text=text["train"])
    y = label_matrix(train, genres)
    coef = np.zeros((len(genres), x.shape[1]), dtype=np.float32)
    intercept = np.zeros(len(genres))
    for j in range(len(genres)):
        coef[j], intercept[j] = fit_genre(x, y[:, j], params.train)
    y_val = label_matrix(validation, genres)
    m_val = margins(features(vectorizer, params.featurize, validation,
                             text=text["validation"]), coef.T, intercept)
    removed = None
    if vectorizer.metadata is not None:
        removed = margins(features(vectorizer, params.featurize, validation,
                                   with_metadata=False, text=text["validation"]),
                          coef.T, intercept)
    a, b = fit_calibration(m_val, y_val, removed)
    scored = {"validation": {"Y": y_val, "P": calibrated(m_val, a, b)}}
    for name, (x_test, y_test) in tests.items():
        scored[name] = {"Y": y_test, "P": calibrated(margins(x_test, coef.T, intercept), a, b)}
    decide = EvaluateParams(
        mode="fixed", threshold=best_global_threshold(y_val, scored["validation"]["P"]),
        per_genre={}, tuned_min_positives=1, at_least_one=True, bootstrap_rounds=0,
        bootstrap_seed=0)
    _, _, metrics = scores_at_thresholds(decide, genres, scored["validation"], scored)
    return {name: {**metrics[name], "threshold": decide.threshold} for name in tests}


def run_fold(params: Params, movies: list[dict[str, Any]], fold: int) -> dict[str, Any]:
    """Test micro/macro figures of every variant on one fold (test ``fold``, validation the
    next fold, training the rest)."""
    cv = params.crossval
    which = [fold_of(row["id"], cv.folds, cv.salt) for row in movies]
    test = [row for row, k in zip(movies, which, strict=True) if k == fold]
    validation = [row for row, k in zip(movies, which, strict=True)
                  if k == (fold + 1) % cv.folds]
    train = [row for row, k in zip(movies, which, strict=True)
             if k not in (fold, (fold + 1) % cv.folds)]
    if not test or not validation or not train:
        raise TmdbGenresError(f"cross-validation fold {fold} has an empty split",
                              "lower crossval.folds or use a larger snapshot")
    genres = genre_names()
    y_test = label_matrix(test, genres)
    vectorizer = fit_vectorizer(params.featurize, [row["text"] for row in train],
                                [row.get("metadata") for row in train])
    # each split's TF-IDF once: the variants differ only in the metadata block
    text = {"train": text_features(vectorizer, train),
            "validation": text_features(vectorizer, validation),
            "test": text_features(vectorizer, test)}
    results: dict[str, Any] = {}
    if vectorizer.metadata is not None:
        tests = {
            "metadata": (features(vectorizer, params.featurize, test, text=text["test"]),
                         y_test),
            "metadata_removed": (features(vectorizer, params.featurize, test,
                                          with_metadata=False, text=text["test"]), y_test),
        }
        results.update(_fit_and_score(params, vectorizer, train, validation, tests, genres,
                                      text))
    text_only = dataclasses.replace(vectorizer, metadata=None)
    results.update(_fit_and_score(
        params, text_only, train, validation,
        {"text": (features(text_only, params.featurize, test, text=text["test"]), y_test)},
        genres, text))
    return {"fold": fold, "rows": {"train": len(train), "validation": len(validation),
                                   "test": len(test)},
            **{name: {k: results[name][k] for k in (*FIGURES, "threshold")}
               for name in results}}


def _summary(values: list[float]) -> dict[str, float]:
    array = np.array(values, dtype=np.float64)
    return {"mean": round(settle(float(array.mean())), 4),
            "sd": round(settle(float(array.std(ddof=1))) if len(array) > 1 else 0.0, 4)}


def crossval(params: Params, prepared: Path, report_path: Path, headline_dir: Path
             ) -> dict[str, Any]:
    """Run the stage; return the report written to ``report_path``."""
    splits = read_prepared_splits(prepared)
    movies = sorted((row for rows in splits.values() for row in rows), key=lambda r: r["id"])
    folds = range(params.crossval.folds)
    started = time.perf_counter()
    if params.crossval.workers > 1:
        with ProcessPoolExecutor(min(params.crossval.workers, len(folds))) as pool:
            results = list(pool.map(run_fold, [params] * len(folds), [movies] * len(folds),
                                    folds))
    else:
        results = [run_fold(params, movies, fold) for fold in folds]
    variants = [name for name in VARIANTS if name in results[0]]
    report: dict[str, Any] = {"folds": results, "summary": {}, "gain_over_text": {}}
    for name in variants:
        report["summary"][name] = {k: _summary([r[name][k] for r in results]) for k in FIGURES}
    if "metadata" in variants:
        for average in ("micro", "macro"):
            gains = [r["metadata"][f"{average}_f1"] - r["text"][f"{average}_f1"]
                     for r in results]
            report["gain_over_text"][f"{average}_f1"] = {
                **_summary(gains), "folds_gaining": sum(g > 0 for g in gains)}
    write_json(report_path, report)
    # the committed model (with metadata when it has any) and the text-only one
    for prefix, name in (("crossval", variants[0]), ("crossval_text", "text")):
        for average in ("micro", "macro"):
            write_json(headline_dir / f"{prefix}_{average}.json",
                       {k: report["summary"][name][f"{average}_{k}"]["mean"] for k in HEADLINE})
    report["seconds"] = time.perf_counter() - started  # printed, never written (not stable)
    return report


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--prepared", type=Path, default=paths.PREPARED_DIR,
                        help="directory of prepared splits")
    parser.add_argument("--report", type=Path, default=paths.CROSSVAL,
                        help="where to write every fold's figures")
    parser.add_argument("--headline", type=Path, default=paths.HEADLINE_DIR,
                        help="directory for the headline metrics files")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the crossval stage."""
    params = load_params(args.params)
    report = crossval(params, args.prepared, args.report, args.headline)
    parts = []
    for name, figures in report["summary"].items():
        parts.append(f"{name} {figures['micro_f1']['mean']:.4f}±{figures['micro_f1']['sd']:.4f}"
                     f" / {figures['macro_f1']['mean']:.4f}±{figures['macro_f1']['sd']:.4f}")
    print(f"crossval ({params.crossval.folds} folds, {report['seconds']:.0f} s): test micro / "
          f"macro F1 mean±sd: {'; '.join(parts)}")
