"""Stage 3, featurize: fit TF-IDF on the training split only, write every split's features.

Word n-grams (with optional English stop words) and character n-grams within word
boundaries are weighted separately and concatenated. The fitted vectoriser is saved for
prediction; each split's feature rows, labels and ids are saved under ``data/features`` in
shards of :data:`SHARD_ROWS` rows (``<split>/00000.npz``, ...: float32 values, int32 column
indices, zip-deflated with fixed timestamps so equal features give equal bytes), written and
read a shard at a time, so memory stays bounded whatever the catalogue's size.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .genres import genre_names
from .io import atomic_dir, dump_joblib, open_text, read_json, read_jsonl
from .model import MODEL_FORMAT
from .params import FeaturizeParams, load_params
from .vectorize import CharNgrams, TfidfBlock, Vectorizer, WordNgrams

SHARD_ROWS = 8192  # rows of one feature shard: prepared rows turned into features at a time
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: shard bytes hold no clock


def fit_vectorizer(params: FeaturizeParams, texts: list[str]) -> Vectorizer:
    """Fit the TF-IDF blocks on the training texts.

    Word n-grams, then (when enabled) character n-grams within word boundaries; each block
    is L2-normalised on its own.
    """
    blocks = [TfidfBlock.fit("word", WordNgrams.fit(
        texts, params.word_ngram_max, params.word_min_df, params.word_max_features,
        params.stop_words), texts, params.sublinear_tf)]
    if params.use_chars:
        blocks.append(TfidfBlock.fit("char", CharNgrams.fit(
            texts, params.char_ngram_min, params.char_ngram_max, params.char_min_df,
            params.char_max_features), texts, params.sublinear_tf))
    return Vectorizer(tuple(blocks))


def label_matrix(rows: list[dict[str, Any]], genres: list[str]) -> np.ndarray:
    """Binary (rows x genres) matrix of the examples' genres."""
    column = {name: j for j, name in enumerate(genres)}
    y = np.zeros((len(rows), len(genres)), dtype=np.uint8)
    for i, row in enumerate(rows):
        for name in row["genres"]:
            y[i, column[name]] = 1
    return y


def split_path(prepared: Path, name: str) -> Path:
    """One prepared split's file; one clear error when prepare has not run."""
    path = paths.split_file(prepared, name, ".jsonl")
    if not path.is_file():
        raise TmdbGenresError(f"prepared split {str(path)!r} not found",
                              "run `dvc repro prepare` in the project root first")
    return path


def read_prepared_splits(prepared: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of every split the prepare stage wrote under ``prepared``."""
    return {name: read_jsonl(split_path(prepared, name)) for name in paths.SPLITS}


def split_chunks(prepared: Path, name: str, rows: int = SHARD_ROWS
                 ) -> Iterator[list[dict[str, Any]]]:
    """The rows of one prepared split, ``rows`` at a time, in file (id) order."""
    chunk: list[dict[str, Any]] = []
    with open_text(split_path(prepared, name)) as handle:
        for line in handle:
            if line.strip():
                chunk.append(json.loads(line))
                if len(chunk) == rows:
                    yield chunk
                    chunk = []
    if chunk:
        yield chunk


def design_matrix(vectorizer: Vectorizer, rows: list[dict[str, Any]]):
    """The feature rows (float32 CSR, columns sorted in each row) of prepared examples: the
    TF-IDF blocks side by side (a further block of columns is stacked here)."""
    x = vectorizer.transform([row["text"] for row in rows])
    x.sort_indices()
    return x


def write_shard(path: Path, x, ids: np.ndarray, y: np.ndarray) -> None:
    """Write one shard: a zip of ``.npy`` arrays (what ``np.load`` reads as an npz), deflated,
    with fixed timestamps and permissions so that equal arrays give equal bytes."""
    arrays = {
        "data": x.data.astype(np.float32), "indices": x.indices.astype(np.int32),
        "indptr": x.indptr.astype(np.int64), "shape": np.array(x.shape, dtype=np.int64),
        "ids": ids.astype(np.int64), "Y": y.astype(np.uint8),
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=6)


def read_shard(path: Path) -> dict[str, Any]:
    """One shard: ``X`` (float32 CSR), ``ids`` and ``Y``."""
    import scipy.sparse as sp

    with np.load(path, allow_pickle=False) as shard:
        x = sp.csr_matrix((shard["data"], shard["indices"], shard["indptr"]),
                          shape=tuple(shard["shape"].tolist()))
        return {"X": x, "ids": shard["ids"], "Y": shard["Y"]}


def split_shards(features: Path, split: str) -> Iterator[dict[str, Any]]:
    """The shards of one split written by this stage, in row (id) order."""
    directory = features / split
    if not directory.is_dir():
        raise TmdbGenresError(f"features {str(directory)!r} not found",
                              "run `dvc repro featurize`")
    for path in sorted(directory.glob("*.npz")):
        yield read_shard(path)


def load_split(features: Path, split: str) -> dict[str, Any]:
    """One whole split (its shards stacked): ``X``, ``ids``, ``Y`` and ``genres``; for small
    data and tests (the stages read shard by shard)."""
    import scipy.sparse as sp

    shards = list(split_shards(features, split))
    return {"X": sp.vstack([s["X"] for s in shards], format="csr"),
            "ids": np.concatenate([s["ids"] for s in shards]),
            "Y": np.concatenate([s["Y"] for s in shards]), "genres": genre_names()}


def featurize(params: FeaturizeParams, prepared: Path, out_dir: Path,
              vectorizer_path: Path) -> dict:
    """Run the stage; return the number of features and of rows per split."""
    recipe_path = prepared / paths.TEXT_RECIPE
    texts = [row["text"] for chunk in split_chunks(prepared, "train") for row in chunk]
    if not recipe_path.is_file():
        raise TmdbGenresError(f"{str(recipe_path)!r} not found", "run `dvc repro prepare` first")
    recipe = read_json(recipe_path)
    try:
        vectorizer = fit_vectorizer(params, texts)
    except ValueError as exc:  # e.g. "After pruning, no terms remain"
        raise TmdbGenresError(f"TF-IDF could not be fitted: {exc}",
                              "lower featurize min_df or use a larger snapshot") from None
    del texts
    genres = genre_names()
    summary: dict[str, Any] = {"features": len(vectorizer.feature_names)}
    with atomic_dir(out_dir) as tmp:
        for name in paths.SPLITS:
            (tmp / name).mkdir()
            summary[name] = 0
            for number, rows in enumerate(split_chunks(prepared, name)):
                write_shard(tmp / name / f"{number:05d}.npz", design_matrix(vectorizer, rows),
                            np.array([row["id"] for row in rows], dtype=np.int64),
                            label_matrix(rows, genres))
                summary[name] += len(rows)
    dump_joblib(vectorizer_path, {"format": MODEL_FORMAT, **recipe, "vectorizer": vectorizer})
    return summary


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--prepared", type=Path, default=paths.PREPARED_DIR,
                        help="directory of prepared splits")
    parser.add_argument("--out", type=Path, default=paths.FEATURES_DIR,
                        help="directory for the feature shards")
    parser.add_argument("--vectorizer", type=Path, default=paths.VECTORIZER,
                        help="where to save the fitted vectoriser")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the featurize stage."""
    params = load_params(args.params).featurize
    summary = featurize(params, args.prepared, args.out, args.vectorizer)
    rows = ", ".join(f"{name} {summary[name]}" for name in paths.SPLITS)
    print(f"featurize: {summary['features']} features fitted on train ({rows})")
