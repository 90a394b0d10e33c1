"""Stage 4, train: one linear SVM per genre, calibrated on the validation split.

Each genre's LinearSVC is fitted on the training split; a Platt sigmoid maps its margins to
probabilities, fitted on validation margins only (test is never seen): with a metadata
block, on the validation movies with their metadata and again with it removed. The stage saves
the weights and the calibrated validation and test scores (test also with its metadata
removed, when the model has any), so evaluation never retrains.

Feature rows come from featurize's shards: the training rows (at most
``prepare.split.train_limit`` of them) as one matrix, validation and test a shard at a time,
so memory is bounded whatever the catalogue's size. The 19 genres are
independent problems, fitted by ``train.workers`` processes that share the matrix (written
once to a :func:`io.scratch_dir` beside the model and memory-mapped; a SIGTERM removes it, and
one a ``kill -9`` left is removed by the next train); each fit seeds liblinear itself, so the
bytes are the same for any number of workers.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import paths
from .featurize import split_shards
from .genres import genre_names
from .io import atomic_dir, dump_joblib, scratch_dir
from .model import MODEL_FORMAT, calibrated, fit_calibration, margins
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


@dataclass(frozen=True)
class MatrixFiles:
    """A CSR matrix stored as raw arrays in a directory (float64 values, int32 column indices,
    int64 row pointers): what liblinear reads, written once, a chunk of rows at a time, and
    memory-mapped by every process that fits genres, so no process holds it in its own memory
    and the page cache holds it once."""

    directory: Path
    shape: tuple[int, int]
    nnz: int

    def load(self):
        """The matrix, memory-mapped read-only (a CSR over the mapped arrays, no copy)."""
        import scipy.sparse as sp

        def array(name: str, dtype: type, count: int) -> np.ndarray:
            if not count:
                return np.zeros(0, dtype=dtype)
            return np.memmap(self.directory / name, dtype=dtype, mode="r", shape=(count,))

        return sp.csr_matrix((array("data", np.float64, self.nnz),
                              array("indices", np.int32, self.nnz),
                              array("indptr", np.int64, self.shape[0] + 1)),
                             shape=self.shape, copy=False)


def write_training_matrix(features: Path, directory: Path) -> tuple[MatrixFiles, np.ndarray]:
    """Write the training split's feature rows to ``directory`` as :class:`MatrixFiles`,
    a shard at a time; return them and the labels."""
    labels, rows, nnz, columns = [], 0, 0, 0
    with open(directory / "data", "wb") as data, open(directory / "indices", "wb") as indices, \
            open(directory / "indptr", "wb") as indptr:
        indptr.write(np.zeros(1, dtype=np.int64).tobytes())
        for shard in split_shards(features, "train"):
            x = shard["X"]
            data.write(x.data.astype(np.float64).tobytes())
            indices.write(x.indices.astype(np.int32).tobytes())
            indptr.write((x.indptr[1:].astype(np.int64) + nnz).tobytes())
            labels.append(shard["Y"])
            rows, nnz, columns = rows + x.shape[0], nnz + x.nnz, x.shape[1]
    return MatrixFiles(directory, (rows, columns), nnz), np.concatenate(labels)


_LOADED: dict[Path, object] = {}  # per worker process: the mapped matrix, mapped once


def fit_genre_from_files(files: MatrixFiles, y: np.ndarray, params: TrainParams
                         ) -> tuple[np.ndarray, float]:
    """:func:`fit_genre` on the memory-mapped matrix (mapped once per process)."""
    if files.directory not in _LOADED:
        _LOADED.clear()
        _LOADED[files.directory] = files.load()
    return fit_genre(_LOADED[files.directory], y, params)


def fit_all(files: MatrixFiles, y: np.ndarray, params: TrainParams
            ) -> tuple[np.ndarray, np.ndarray]:
    """Every genre's weights (genres x features, float32) and intercepts, fitted by
    ``params.workers`` processes; the result does not depend on their number (each fit seeds
    liblinear itself)."""
    from joblib import Parallel, delayed
    from tqdm import tqdm

    columns = [np.ascontiguousarray(y[:, j]) for j in range(y.shape[1])]
    if params.workers == 1:
        results = (fit_genre_from_files(files, column, params) for column in columns)
    else:
        results = Parallel(n_jobs=params.workers, backend="loky", return_as="generator")(
            delayed(fit_genre_from_files)(files, column, params) for column in columns)
    try:
        fitted = list(tqdm(results, total=len(columns), desc="train", unit="genre",
                           file=sys.stderr, disable=None))
    finally:
        _LOADED.clear()
    coef = np.stack([weights for weights, _ in fitted]).astype(np.float32)
    intercept = np.array([b for _, b in fitted], dtype=np.float64)
    return coef, intercept


def split_margins(features: Path, name: str, coef_t: np.ndarray, intercept: np.ndarray
                  ) -> dict[str, np.ndarray | None]:
    """Ids, labels and settled margins of one split, computed a shard at a time; also the
    margins of the rows with every metadata field removed (``removed``; None for a text-only
    model, whose rows have none)."""
    ids, labels, found, removed = [], [], [], []
    for shard in split_shards(features, name):
        ids.append(shard["ids"])
        labels.append(shard["Y"])
        found.append(margins(shard["X"], coef_t, intercept))
        if "X_no_metadata" in shard:
            removed.append(margins(shard["X_no_metadata"], coef_t, intercept))
    return {"ids": np.concatenate(ids), "Y": np.concatenate(labels),
            "margins": np.concatenate(found),
            "removed": np.concatenate(removed) if removed else None}


def train(params: TrainParams, features: Path, model_path: Path, scores_dir: Path) -> dict:
    """Run the stage; return a short summary."""
    genres = genre_names()
    with scratch_dir(model_path) as tmp:  # also removed on SIGTERM, or by the next train
        files, y = write_training_matrix(features, tmp)
        coef, intercept = fit_all(files, y, params)
    rows, features_count = files.shape
    coef_t = np.ascontiguousarray(coef.T)
    scores = {name: split_margins(features, name, coef_t, intercept)
              for name in ("validation", "test")}
    validation = scores["validation"]
    platt_a, platt_b = fit_calibration(validation["margins"], validation["Y"],
                                       validation["removed"])
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
        for name, split in scores.items():
            saved = {
                "ids": split["ids"],
                "Y": split["Y"],
                "P": calibrated(split["margins"], platt_a, platt_b),
                "genres": genres,
            }
            if name == "test":  # with every metadata field removed (a text-only model's
                # test matrix is already that)
                removed = split["removed"] if split["removed"] is not None else split["margins"]
                saved["P_no_metadata"] = calibrated(removed, platt_a, platt_b)
            dump_joblib(paths.split_file(tmp, name, ".joblib"), saved)
    return {"genres": len(genres), "features": features_count, "rows": rows}


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
