"""Stage 4, train: one linear SVM per genre, calibrated on the validation split.

Each genre's LinearSVC is fitted on the training split; a Platt sigmoid maps its margins to
probabilities, fitted on validation margins only (test is never seen). The stage saves the
weights and the calibrated validation and test scores, so evaluation never retrains.

Feature rows come from the prepared texts and the saved vectoriser (:mod:`featurize`): the
training rows (at most ``prepare.split.train_limit`` of them) as one matrix, validation and
test a chunk at a time, so memory is bounded whatever the catalogue's size. The 19 genres are
independent problems, fitted by ``train.workers`` processes that share the matrix (memory
mapped); each fit seeds liblinear itself, so the bytes are the same for any number of workers.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from . import paths
from .featurize import design_matrix, label_matrix, load_vectorizer, split_chunks
from .genres import genre_names
from .io import atomic_dir, dump_joblib
from .model import MODEL_FORMAT, calibrated, fit_platt, margins
from .numeric import settle
from .params import TrainParams, load_params

MEMMAP_BYTES = "1M"  # arrays larger than this reach the worker processes memory-mapped


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


def training_matrix(prepared: Path, vectorizer, genres: list[str]):
    """The training split's feature rows (float64 CSR, what liblinear reads, made once rather
    than by every fit) and labels."""
    import scipy.sparse as sp

    blocks, labels = [], []
    for rows in split_chunks(prepared, "train"):
        blocks.append(design_matrix(vectorizer, rows))
        labels.append(label_matrix(rows, genres))
    x = sp.vstack(blocks, format="csr", dtype=np.float64)
    del blocks
    x.sort_indices()
    return x, np.concatenate(labels)


def fit_all(x, y: np.ndarray, params: TrainParams) -> tuple[np.ndarray, np.ndarray]:
    """Every genre's weights (genres x features, float32) and intercepts, fitted by
    ``params.workers`` processes; the result does not depend on their number."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    if params.workers == 1:
        results = (fit_genre(x, y[:, j], params) for j in range(y.shape[1]))
    else:  # the matrix is memory-mapped into the workers, not copied
        results = Parallel(n_jobs=params.workers, backend="loky", max_nbytes=MEMMAP_BYTES,
                           return_as="generator")(
            delayed(fit_genre)(x, np.ascontiguousarray(y[:, j]), params)
            for j in range(y.shape[1]))
    fitted = list(tqdm(results, total=y.shape[1], desc="train", unit="genre", file=sys.stderr,
                       disable=None))
    coef = np.stack([weights for weights, _ in fitted]).astype(np.float32)
    intercept = np.array([b for _, b in fitted], dtype=np.float64)
    return coef, intercept


def split_margins(prepared: Path, name: str, vectorizer, coef_t: np.ndarray,
                  intercept: np.ndarray, genres: list[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, labels and settled margins of one split, computed a chunk of rows at a time."""
    ids, labels, found = [], [], []
    for rows in split_chunks(prepared, name):
        ids.append(np.array([row["id"] for row in rows], dtype=np.int64))
        labels.append(label_matrix(rows, genres))
        found.append(margins(design_matrix(vectorizer, rows), coef_t, intercept))
    return np.concatenate(ids), np.concatenate(labels), np.concatenate(found)


def train(params: TrainParams, prepared: Path, vectorizer_path: Path, model_path: Path,
          scores_dir: Path) -> dict:
    """Run the stage; return a short summary."""
    vectorizer = load_vectorizer(vectorizer_path)
    genres = genre_names()
    x, y = training_matrix(prepared, vectorizer, genres)
    rows, features = x.shape
    coef, intercept = fit_all(x, y, params)
    del x
    coef_t = np.ascontiguousarray(coef.T)
    scores = {name: split_margins(prepared, name, vectorizer, coef_t, intercept, genres)
              for name in ("validation", "test")}
    _, y_val, m_val = scores["validation"]
    platt = [fit_platt(m_val[:, j], y_val[:, j]) for j in range(len(genres))]
    platt_a = np.array([a for a, _ in platt])
    platt_b = np.array([b for _, b in platt])
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
        for name, (ids, y_split, m_split) in scores.items():
            dump_joblib(
                paths.split_file(tmp, name, ".joblib"),
                {
                    "ids": ids,
                    "Y": y_split,
                    "P": calibrated(m_split, platt_a, platt_b),
                    "genres": genres,
                },
            )
    return {"genres": len(genres), "features": features, "rows": rows}


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--prepared", type=Path, default=paths.PREPARED_DIR,
                        help="directory of prepared splits")
    parser.add_argument("--vectorizer", type=Path, default=paths.VECTORIZER,
                        help="vectoriser written by featurize")
    parser.add_argument("--model", type=Path, default=paths.MODEL, help="model file to write")
    parser.add_argument("--scores", type=Path, default=paths.SCORES_DIR,
                        help="directory for calibrated validation/test scores")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the train stage."""
    params = load_params(args.params).train
    summary = train(params, args.prepared, args.vectorizer, args.model, args.scores)
    print(
        f"train: {summary['genres']} genre SVMs on {summary['rows']} movies x "
        f"{summary['features']} features -> {args.model}"
    )
