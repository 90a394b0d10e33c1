"""Stage 3, featurize: fit TF-IDF on the training split only, write every split's features.

Word n-grams (with optional English stop words) and character n-grams within word
boundaries are weighted separately and concatenated; the metadata block (release decade,
language, vote-count band, ...; see :mod:`metadata`), fitted on the training movies only,
comes last. The fitted vectoriser is saved for prediction; each split's feature rows, labels
and ids (validation and test also without their metadata) are saved under ``data/features`` in
shards of :data:`SHARD_ROWS` rows (``<split>/00000.npz``, ...: float32 values, int32 column
indices, zip-deflated with fixed timestamps so equal features give equal bytes), written and
read a shard at a time, so memory stays bounded whatever the catalogue's size.
"""

from __future__ import annotations

import argparse
import io
import json
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .genres import genre_names
from .io import atomic_dir, dump_joblib, open_text, read_json, read_jsonl
from .metadata import MetadataEncoder, training_metadata
from .model import MODEL_FORMAT
from .params import FeaturizeParams, load_params
from .vectorize import CharNgrams, TfidfBlock, Vectorizer, WordNgrams

SHARD_ROWS = 8192  # rows of one feature shard: prepared rows turned into features at a time
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: shard bytes hold no clock


def fit_vectorizer(params: FeaturizeParams, texts: list[str],
                   metadata: Sequence[Mapping[str, Any] | None] | None = None) -> Vectorizer:
    """Fit the TF-IDF blocks on the training texts, and the metadata encoder on the training
    movies' ``metadata`` (when given and ``featurize.metadata.features`` names any).

    Word n-grams, then (when enabled) character n-grams within word boundaries; each block
    is L2-normalised on its own; the metadata block comes last.
    """
    blocks = [TfidfBlock.fit("word", WordNgrams.fit(
        texts, params.word_ngram_max, params.word_min_df, params.word_max_features,
        params.stop_words), texts, params.sublinear_tf)]
    if params.use_chars:
        blocks.append(TfidfBlock.fit("char", CharNgrams.fit(
            texts, params.char_ngram_min, params.char_ngram_max, params.char_min_df,
            params.char_max_features), texts, params.sublinear_tf))
    encoder = (MetadataEncoder.fit(params.metadata, metadata)
               if metadata is not None and params.metadata.features else None)
    return Vectorizer(tuple(blocks), encoder)


def text_features(vectorizer: Vectorizer, rows: list[dict[str, Any]]) -> Any:
    """The TF-IDF part of the features of prepared ``rows`` (:meth:`Vectorizer.transform_text`),
    for :func:`features` to make several matrices of the same rows (with, without metadata)
    without transforming their texts again."""
    return vectorizer.transform_text([row["text"] for row in rows])


def features(vectorizer: Vectorizer, params: FeaturizeParams, rows: list[dict[str, Any]],
             training: bool = False, with_metadata: bool = True, text: Any = None) -> Any:
    """The canonical CSR feature matrix of prepared ``rows``.

    ``training`` removes metadata from the seeded share of movies that learn to do without
    (:func:`metadata.training_metadata`); ``with_metadata=False`` removes every movie's
    metadata (the robustness figure). ``text`` is the rows' :func:`text_features` when
    already made (it is not modified; the result is the same as without it).
    """
    metadata: list[Mapping[str, Any] | None] | None = None
    if with_metadata:
        metadata = [row.get("metadata") for row in rows]
        if training:
            metadata = training_metadata(params.metadata, [row["id"] for row in rows],
                                         metadata)
    given = text is not None
    if not given:
        text = text_features(vectorizer, rows)
    x = vectorizer.append_metadata(text, metadata)
    if given and x is text:
        x = x.copy()  # no metadata block: the caller's matrix stays theirs
    x.sort_indices()  # canonical CSR for whoever reads the saved matrices
    return x


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


def _csr_arrays(x, suffix: str = "") -> dict[str, np.ndarray]:
    """A CSR matrix as the compact arrays of a shard (float32 values, int32 indices)."""
    return {f"data{suffix}": x.data.astype(np.float32),
            f"indices{suffix}": x.indices.astype(np.int32),
            f"indptr{suffix}": x.indptr.astype(np.int64),
            f"shape{suffix}": np.array(x.shape, dtype=np.int64)}


def write_shard(path: Path, x, ids: np.ndarray, y: np.ndarray, x_no_metadata=None) -> None:
    """Write one shard: a zip of ``.npy`` arrays (what ``np.load`` reads as an npz), deflated,
    with fixed timestamps and permissions so that equal arrays give equal bytes; with
    ``x_no_metadata``, also the same rows with every metadata field removed."""
    arrays = {**_csr_arrays(x), "ids": ids.astype(np.int64), "Y": y.astype(np.uint8)}
    if x_no_metadata is not None:
        arrays.update(_csr_arrays(x_no_metadata, "_no_metadata"))
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            # level 1: the float32 values barely compress at any level; 6 took 2.3 times
            # as long for files 5% smaller (4.5 s of featurize on the 11.8k real movies)
            archive.writestr(info, buffer.getvalue(), compresslevel=1)


def read_shard(path: Path) -> dict[str, Any]:
    """One shard: ``X`` (float32 CSR), ``ids``, ``Y`` and, when written, ``X_no_metadata``."""
    import scipy.sparse as sp

    def matrix(shard: Any, suffix: str = "") -> Any:
        return sp.csr_matrix((shard[f"data{suffix}"], shard[f"indices{suffix}"],
                              shard[f"indptr{suffix}"]),
                             shape=tuple(shard[f"shape{suffix}"].tolist()))

    with np.load(path, allow_pickle=False) as shard:
        found = {"X": matrix(shard), "ids": shard["ids"], "Y": shard["Y"]}
        if "data_no_metadata" in shard.files:
            found["X_no_metadata"] = matrix(shard, "_no_metadata")
        return found


def split_shards(features_dir: Path, split: str) -> Iterator[dict[str, Any]]:
    """The shards of one split written by this stage, in row (id) order."""
    directory = features_dir / split
    if not directory.is_dir():
        raise TmdbGenresError(f"features {str(directory)!r} not found",
                              "run `dvc repro featurize`")
    for path in sorted(directory.glob("*.npz")):
        yield read_shard(path)


def load_split(features_dir: Path, split: str) -> dict[str, Any]:
    """One whole split (its shards stacked): ``X``, ``ids``, ``Y`` and ``genres``; for small
    data and tests (the stages read shard by shard)."""
    import scipy.sparse as sp

    shards = list(split_shards(features_dir, split))
    found = {"X": sp.vstack([s["X"] for s in shards], format="csr"),
             "ids": np.concatenate([s["ids"] for s in shards]),
             "Y": np.concatenate([s["Y"] for s in shards]), "genres": genre_names()}
    if shards and "X_no_metadata" in shards[0]:
        found["X_no_metadata"] = sp.vstack([s["X_no_metadata"] for s in shards], format="csr")
    return found


def featurize(params: FeaturizeParams, prepared: Path, out_dir: Path,
              vectorizer_path: Path) -> dict:
    """Run the stage; return the number of features and of rows per split."""
    recipe_path = prepared / paths.TEXT_RECIPE
    train = [row for chunk in split_chunks(prepared, "train") for row in chunk]
    if not recipe_path.is_file():
        raise TmdbGenresError(f"{str(recipe_path)!r} not found", "run `dvc repro prepare` first")
    recipe = read_json(recipe_path)
    try:
        vectorizer = fit_vectorizer(params, [row["text"] for row in train],
                                    [row.get("metadata") for row in train])
    except ValueError as exc:  # e.g. "After pruning, no terms remain"
        raise TmdbGenresError(f"TF-IDF could not be fitted: {exc}",
                              "lower featurize min_df or use a larger snapshot") from None
    del train
    genres = genre_names()
    summary: dict[str, Any] = {"features": len(vectorizer.feature_names)}
    with atomic_dir(out_dir) as tmp:
        for name in paths.SPLITS:
            (tmp / name).mkdir()
            summary[name] = 0
            for number, rows in enumerate(split_chunks(prepared, name)):
                text = text_features(vectorizer, rows)  # once for both matrices
                # validation and test also without their metadata: what text-only callers
                # get (train calibrates on validation's too; evaluate reports test's)
                removed = (features(vectorizer, params, rows, with_metadata=False, text=text)
                           if name != "train" and vectorizer.metadata is not None else None)
                write_shard(tmp / name / f"{number:05d}.npz",
                            features(vectorizer, params, rows, training=name == "train",
                                     text=text),
                            np.array([row["id"] for row in rows], dtype=np.int64),
                            label_matrix(rows, genres), removed)
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
