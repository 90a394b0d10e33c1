"""Stage 4, train: one linear SVM per genre, calibrated on the validation split.

Each genre's LinearSVC is fitted on the training split; a Platt sigmoid maps its margins to
probabilities, fitted on validation margins only (test is never seen): with a metadata
block, on the validation movies with their metadata and again with it removed. The stage saves the
weights and the calibrated validation and test scores (test also with its metadata removed,
when the model has any), so evaluation never retrains.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from . import paths
from .featurize import load_split
from .io import atomic_dir, dump_joblib
from .model import MODEL_FORMAT, calibrated, fit_platt, margins
from .numeric import settle
from .params import TrainParams, load_params


def fit_genre(x, y: np.ndarray, params: TrainParams) -> tuple[np.ndarray, float]:
    """Fit one genre's LinearSVC; return its weight vector and intercept.

    A genre with no positive (or no negative) training example gets zero weights and an
    intercept of -1 (or +1): a constant margin the calibration then maps to its base rate.
    Weights and intercept are settled (see :mod:`numeric`), which float32 holds exactly.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    if y.min() == y.max():
        return np.zeros(x.shape[1], dtype=np.float32), 1.0 if y.max() else -1.0
    svm = LinearSVC(
        C=params.C,
        class_weight=params.class_weight,
        max_iter=params.max_iter,
        random_state=params.seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svm.fit(x, y)
    return settle(svm.coef_[0]).astype(np.float32), settle(float(svm.intercept_[0]))


def fit_calibration(margins_val: np.ndarray, y_val: np.ndarray,
                    removed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every genre's Platt ``a`` and ``b``, fitted on validation margins only.

    With ``removed`` (the same validation movies' margins with every metadata field
    removed), the sigmoid is fitted on both sets stacked, so that probabilities stay
    calibrated for callers that send text only (the threshold is then chosen on the
    validation movies with their metadata, as before).
    """
    if removed is not None:
        margins_val, y_val = np.vstack([margins_val, removed]), np.vstack([y_val, y_val])
    platt = [fit_platt(margins_val[:, j], y_val[:, j]) for j in range(y_val.shape[1])]
    return np.array([a for a, _ in platt]), np.array([b for _, b in platt])


def train(params: TrainParams, features: Path, model_path: Path, scores_dir: Path) -> dict:
    """Run the stage; return a short summary."""
    from tqdm import tqdm

    train_split = load_split(features, "train")
    validation = load_split(features, "validation")
    test = load_split(features, "test")
    genres = train_split["genres"]
    coef = np.zeros((len(genres), train_split["X"].shape[1]), dtype=np.float32)
    intercept = np.zeros(len(genres))
    progress = tqdm(range(len(genres)), desc="train", unit="genre", file=sys.stderr, disable=None)
    for j in progress:
        coef[j], intercept[j] = fit_genre(train_split["X"], train_split["Y"][:, j], params)
    scores = {name: margins(split["X"], coef.T, intercept)
              for name, split in (("validation", validation), ("test", test))}
    removed = None
    if "X_no_metadata" in validation:
        removed = margins(validation["X_no_metadata"], coef.T, intercept)
    platt_a, platt_b = fit_calibration(scores["validation"], validation["Y"], removed)
    dump_joblib(
        model_path,
        {
            "format": MODEL_FORMAT,
            "genres": genres,
            "coef": coef,
            "intercept": intercept,
            "platt_a": platt_a,
            "platt_b": platt_b,
        },
    )
    with atomic_dir(scores_dir) as tmp:
        for name, split in (("validation", validation), ("test", test)):
            saved = {
                "ids": split["ids"],
                "Y": split["Y"],
                "P": calibrated(scores[name], platt_a, platt_b),
                "genres": genres,
            }
            if name == "test":  # with every metadata field removed (a text-only model's
                # test matrix is already that)
                saved["P_no_metadata"] = calibrated(
                    margins(split.get("X_no_metadata", split["X"]), coef.T, intercept),
                    platt_a, platt_b)
            dump_joblib(paths.split_file(tmp, name, ".joblib"), saved)
    return {"genres": len(genres), "features": coef.shape[1], "rows": train_split["X"].shape[0]}


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--features", type=Path, default=paths.FEATURES_DIR,
                        help="directory written by featurize")
    parser.add_argument("--model", type=Path, default=paths.MODEL, help="model file to write")
    parser.add_argument("--scores", type=Path, default=paths.SCORES_DIR,
                        help="directory for calibrated validation/test scores")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the train stage."""
    params = load_params(args.params).train
    summary = train(params, args.features, args.model, args.scores)
    print(
        f"train: {summary['genres']} genre SVMs on {summary['rows']} movies x "
        f"{summary['features']} features -> {args.model}"
    )
