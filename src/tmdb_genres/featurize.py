"""Stage 3, featurize: fit TF-IDF on the training split only and transform every split.

Word n-grams (with optional English stop words) and character n-grams within word
boundaries are weighted separately and concatenated; the metadata block (release decade,
language, vote-count band, ...; see :mod:`metadata`), fitted on the training movies only,
comes last. The fitted vectoriser is saved for prediction; each split's matrix, label matrix
and ids are saved under ``data/features`` (validation and test also without their metadata).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .genres import genre_names
from .io import atomic_dir, dump_joblib, read_json, read_jsonl
from .metadata import MetadataEncoder, training_metadata
from .model import MODEL_FORMAT
from .params import FeaturizeParams, load_params
from .vectorize import CharNgrams, TfidfBlock, Vectorizer, WordNgrams


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


def features(vectorizer: Vectorizer, params: FeaturizeParams, rows: list[dict[str, Any]],
             training: bool = False, with_metadata: bool = True) -> Any:
    """The canonical CSR feature matrix of prepared ``rows``.

    ``training`` removes metadata from the seeded share of movies that learn to do without
    (:func:`metadata.training_metadata`); ``with_metadata=False`` removes every movie's
    metadata (the robustness figure).
    """
    metadata: list[Mapping[str, Any] | None] | None = None
    if with_metadata:
        metadata = [row.get("metadata") for row in rows]
        if training:
            metadata = training_metadata(params.metadata, [row["id"] for row in rows],
                                         metadata)
    x = vectorizer.transform([row["text"] for row in rows], metadata)
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


def read_prepared_splits(prepared: Path) -> dict[str, list[dict[str, Any]]]:
    """The rows of every split the prepare stage wrote under ``prepared``."""
    splits = {}
    for name in paths.SPLITS:
        path = paths.split_file(prepared, name, ".jsonl")
        if not path.is_file():
            raise TmdbGenresError(f"prepared split {str(path)!r} not found",
                                  "run `dvc repro prepare` in the project root first")
        splits[name] = read_jsonl(path)
    return splits


def featurize(
    params: FeaturizeParams, prepared: Path, out_dir: Path, vectorizer_path: Path
) -> dict:
    """Run the stage; return the number of features and rows per split."""
    splits = read_prepared_splits(prepared)
    recipe_path = prepared / paths.TEXT_RECIPE
    if not recipe_path.is_file():
        raise TmdbGenresError(f"{str(recipe_path)!r} not found", "run `dvc repro prepare` first")
    recipe = read_json(recipe_path)
    genres = genre_names()
    try:
        vectorizer = fit_vectorizer(params, [row["text"] for row in splits["train"]],
                                    [row.get("metadata") for row in splits["train"]])
    except ValueError as exc:  # e.g. "After pruning, no terms remain"
        raise TmdbGenresError(f"TF-IDF could not be fitted: {exc}",
                              "lower featurize min_df or use a larger snapshot") from None
    summary: dict[str, Any] = {}
    with atomic_dir(out_dir) as tmp:
        for name, rows in splits.items():
            x = features(vectorizer, params, rows, training=name == "train")
            split = {
                "ids": np.array([row["id"] for row in rows], dtype=np.int64),
                "X": x,
                "Y": label_matrix(rows, genres),
                "genres": genres,
            }
            if name != "train" and vectorizer.metadata is not None:
                # the same movies with every metadata field removed: what text-only callers
                # get (train calibrates on validation's too; evaluate reports test's)
                split["X_no_metadata"] = features(vectorizer, params, rows,
                                                  with_metadata=False)
            dump_joblib(paths.split_file(tmp, name, ".joblib"), split)
            summary[name] = x.shape[0]
    dump_joblib(vectorizer_path, {"format": MODEL_FORMAT, **recipe, "vectorizer": vectorizer})
    summary["features"] = int(x.shape[1])
    return summary


def load_split(features: Path, split: str) -> dict[str, Any]:
    """Load one split written by this stage."""
    from .io import load_joblib

    path = paths.split_file(features, split, ".joblib")
    if not path.is_file():
        raise TmdbGenresError(f"features {str(path)!r} not found", "run `dvc repro featurize`")
    return load_joblib(path)


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--prepared", type=Path, default=paths.PREPARED_DIR,
                        help="directory of prepared splits")
    parser.add_argument("--out", type=Path, default=paths.FEATURES_DIR,
                        help="directory for the feature matrices")
    parser.add_argument("--vectorizer", type=Path, default=paths.VECTORIZER,
                        help="where to save the fitted vectoriser")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the featurize stage."""
    params = load_params(args.params).featurize
    summary = featurize(params, args.prepared, args.out, args.vectorizer)
    rows = ", ".join(f"{name} {summary[name]}" for name in paths.SPLITS)
    print(f"featurize: {summary['features']} features fitted on train ({rows})")
