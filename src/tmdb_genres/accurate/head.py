"""Accurate stage 2, head: one logistic regression per genre on the embeddings.

Its inputs are a movie's embedding and, after it, the one-hot block of what TMDB says besides
the text (:mod:`metadata`, ``head.metadata`` in the params): the encoder is fitted on the
embedded training movies only, and a seeded share of them train without their metadata, so the
head copes when a caller sends text only. Fitted on train, then Platt-calibrated on the
validation split with and without its metadata like the SVM (test is never seen). The head is
saved as plain JSON (no pickle): weights rounded to ``DECIMALS`` places, the calibration, the
metadata encoder and the embedding engine, package and version it needs.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TmdbGenresError
from ..io import read_json, write_json
from ..metadata import MetadataEncoder, training_metadata
from ..model import calibrated, fit_calibration
from ..params import HeadParams, load_accurate_params
from . import embeddings
from .embed import load_embeddings
from .embeddings import DECIMALS, ENGINES, engine_spec

HEAD_FORMAT = 2  # 2: the metadata encoder and block
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


def head_inputs(head: Mapping[str, Any], x: np.ndarray,
                metadata: Sequence[Mapping[str, Any] | None] | None = None) -> np.ndarray:
    """The head's input rows: the embeddings, then (a head with a metadata encoder) the
    one-hot block of each row's raw ``metadata`` (none: every field unknown)."""
    x = np.asarray(x, dtype=np.float64)
    if not head.get("metadata"):
        return x
    block = MetadataEncoder.from_json(head["metadata"]).transform(len(x), metadata)
    return np.hstack([x, block.toarray().astype(np.float64)])


def head_margins(head: Mapping[str, Any], x: np.ndarray,
                 metadata: Sequence[Mapping[str, Any] | None] | None = None) -> np.ndarray:
    """Raw head margins of embedded rows (rows x genres)."""
    coef = np.asarray(head["coef"], dtype=np.float64)
    return head_inputs(head, x, metadata) @ coef.T + np.asarray(head["intercept"])


def head_probabilities(head: Mapping[str, Any], x: np.ndarray,
                       metadata: Sequence[Mapping[str, Any] | None] | None = None
                       ) -> np.ndarray:
    """Calibrated probability of every genre for embedded rows (rows x genres), given each
    row's raw ``metadata`` (None: text only)."""
    return calibrated(head_margins(head, x, metadata), np.asarray(head["platt_a"]),
                      np.asarray(head["platt_b"]))


def fit_head(params: HeadParams, train: dict[str, Any], validation: dict[str, Any],
             engine: str) -> dict[str, Any]:
    """Fit the metadata encoder and the head on train and the calibration on validation
    (with and without its metadata); return the head as plain data."""
    genres = train["genres"]
    meta = params.metadata
    head: dict[str, Any] = {
        "format": HEAD_FORMAT,
        "genres": genres,
        "metadata": (MetadataEncoder.fit(meta, train["metadata"]).to_json()
                     if meta.features else None),
    }
    seen = training_metadata(meta, [int(i) for i in train["ids"]], train["metadata"])
    x = head_inputs(head, train["X"], seen)
    weights = [fit_genre(x, train["Y"][:, j], params) for j in range(len(genres))]
    head.update({
        "coef": np.round(np.stack([w for w, _ in weights]), WEIGHT_DECIMALS).tolist(),
        "intercept": [round(b, WEIGHT_DECIMALS) for _, b in weights],
    })
    margins = np.round(head_margins(head, validation["X"], validation["metadata"]),
                       WEIGHT_DECIMALS)
    removed = (np.round(head_margins(head, validation["X"]), WEIGHT_DECIMALS)
               if head["metadata"] else None)
    platt_a, platt_b = fit_calibration(margins, validation["Y"], removed)
    spec = engine_spec(engine)
    head.update({
        "platt_a": [round(float(a), WEIGHT_DECIMALS) for a in platt_a],
        "platt_b": [round(float(b), WEIGHT_DECIMALS) for b in platt_b],
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
