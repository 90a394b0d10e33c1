"""Accurate stage 2, head: one logistic regression per genre on the embeddings.

Fitted on the embedded training movies, then Platt-calibrated on the validation split like
the SVM (test is never seen). The head is saved as plain JSON (no pickle): weights rounded to
``DECIMALS`` places, the calibration, and the embedding engine, package and version it needs.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TmdbGenresError
from ..io import read_json, write_json
from ..model import calibrated, fit_platt
from ..params import HeadParams, load_accurate_params
from . import embeddings
from .embed import load_embeddings
from .embeddings import DECIMALS, ENGINES, engine_spec

HEAD_FORMAT = 1
WEIGHT_DECIMALS = 6


def fit_genre(x: np.ndarray, y: np.ndarray, params: HeadParams) -> tuple[np.ndarray, float]:
    """One genre's logistic regression: weights and intercept (constant for a one-class genre)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if y.min() == y.max():
        return np.zeros(x.shape[1]), 1.0 if y.max() else -1.0
    model = LogisticRegression(C=params.C, class_weight=params.class_weight,
                               max_iter=params.max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x.astype(np.float64), y)
    return model.coef_[0], float(model.intercept_[0])


def head_margins(head: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Raw head margins of embedded rows (rows x genres)."""
    coef = np.asarray(head["coef"], dtype=np.float64)
    return np.asarray(x, dtype=np.float64) @ coef.T + np.asarray(head["intercept"])


def head_probabilities(head: dict[str, Any], x: np.ndarray) -> np.ndarray:
    """Calibrated probability of every genre for embedded rows (rows x genres)."""
    return calibrated(head_margins(head, x), np.asarray(head["platt_a"]),
                      np.asarray(head["platt_b"]))


def fit_head(params: HeadParams, train: dict[str, Any], validation: dict[str, Any],
             engine: str) -> dict[str, Any]:
    """Fit the head on train and its calibration on validation; return it as plain data."""
    genres = train["genres"]
    weights = [fit_genre(train["X"], train["Y"][:, j], params) for j in range(len(genres))]
    head: dict[str, Any] = {
        "format": HEAD_FORMAT,
        "genres": genres,
        "coef": np.round(np.stack([w for w, _ in weights]), WEIGHT_DECIMALS).tolist(),
        "intercept": [round(b, WEIGHT_DECIMALS) for _, b in weights],
    }
    margins = np.round(head_margins(head, validation["X"]), WEIGHT_DECIMALS)
    platt = [fit_platt(margins[:, j], validation["Y"][:, j]) for j in range(len(genres))]
    spec = engine_spec(engine)
    head.update({
        "platt_a": [round(a, WEIGHT_DECIMALS) for a, _ in platt],
        "platt_b": [round(b, WEIGHT_DECIMALS) for _, b in platt],
        "embedding": {"engine": spec.name, "package": spec.package,
                      "version": embeddings.package_version(spec.package), "model": spec.model,
                      "prefix": spec.prefix, "dim": spec.dim, "decimals": DECIMALS},
        "train_rows": len(train["ids"]),
    })
    return head


def load_head(path: Path) -> dict[str, Any]:
    """A head written by this stage (one clear error if missing or of another format)."""
    if not Path(path).is_file():
        raise TmdbGenresError(f"head {str(path)!r} not found",
                              "run `dvc repro` in accurate/ (see the README)")
    head = read_json(path)
    if head.get("format") != HEAD_FORMAT:
        raise TmdbGenresError(f"{path} has format {head.get('format')!r}, expected "
                              f"{HEAD_FORMAT}", "rerun `dvc repro` in accurate/")
    return head


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the accurate model's params file")
    parser.add_argument("--embeddings", type=Path, default=Path("data/embeddings"),
                        help="directory written by the embed stage")
    parser.add_argument("--out", type=Path, default=Path("models/head.json"),
                        help="the head to write (JSON)")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the head stage."""
    params = load_accurate_params(args.params, ENGINES)
    train = load_embeddings(args.embeddings, "train")
    validation = load_embeddings(args.embeddings, "validation")
    head = fit_head(params.head, train, validation, params.embed.engine)
    write_json(args.out, head)
    print(f"head: {len(head['genres'])} logistic regressions on {head['train_rows']} embedded "
          f"movies -> {args.out}")
