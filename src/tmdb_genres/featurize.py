"""Stage 3, featurize: fit TF-IDF on the training split only.

Word n-grams (with optional English stop words) and character n-grams within word
boundaries are weighted separately and concatenated. The fitted vectoriser is saved for train
and prediction; feature matrices are not stored (at a million movies they would outweigh
everything else on disk): :func:`design_matrix` rebuilds any split's rows from the prepared
texts in seconds, chunk by chunk (:func:`split_chunks`), so memory stays bounded.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .io import dump_joblib, open_text, read_json, read_jsonl
from .model import MODEL_FORMAT
from .params import FeaturizeParams, load_params
from .vectorize import CharNgrams, TfidfBlock, Vectorizer, WordNgrams

CHUNK_ROWS = 8192  # prepared rows turned into features at a time


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


def split_chunks(prepared: Path, name: str, rows: int = CHUNK_ROWS
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


def load_vectorizer(path: Path) -> Vectorizer:
    """The vectoriser saved by this stage; one clear error when it is missing."""
    from .io import load_joblib

    if not Path(path).is_file():
        raise TmdbGenresError(f"vectoriser {str(path)!r} not found", "run `dvc repro featurize`")
    return load_joblib(path)["vectorizer"]


def featurize(params: FeaturizeParams, prepared: Path, vectorizer_path: Path) -> dict:
    """Run the stage; return the number of features and of training rows."""
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
    dump_joblib(vectorizer_path, {"format": MODEL_FORMAT, **recipe, "vectorizer": vectorizer})
    return {"features": len(vectorizer.feature_names), "train": len(texts)}


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--prepared", type=Path, default=paths.PREPARED_DIR,
                        help="directory of prepared splits")
    parser.add_argument("--vectorizer", type=Path, default=paths.VECTORIZER,
                        help="where to save the fitted vectoriser")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the featurize stage."""
    params = load_params(args.params).featurize
    summary = featurize(params, args.prepared, args.vectorizer)
    print(f"featurize: {summary['features']} features fitted on {summary['train']} training "
          "movies")
