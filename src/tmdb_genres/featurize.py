"""Stage 3, featurize: fit TF-IDF on the training split only and transform every split.

Word n-grams (with optional English stop words) and character n-grams within word
boundaries are weighted separately and concatenated. The fitted vectoriser is saved for
prediction; each split's matrix, label matrix and ids are saved under ``data/features``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .genres import genre_names
from .io import atomic_dir, dump_joblib, read_json, read_jsonl
from .params import FeaturizeParams, load_params


def build_vectorizer(params: FeaturizeParams) -> Any:
    """An unfitted TF-IDF vectoriser (word n-grams, plus character n-grams when enabled).

    Each part counts n-grams with the fast counters of :mod:`tmdb_genres.vectorize` (the
    same counts as scikit-learn's ``CountVectorizer``) and weights them with
    ``TfidfTransformer``; the parts are L2-normalised separately and concatenated.
    """
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    from .vectorize import CharNgramCounts, WordNgramCounts

    def tfidf(counter: Any) -> Pipeline:
        return Pipeline([("counts", counter),
                         ("tfidf", TfidfTransformer(sublinear_tf=params.sublinear_tf))])

    parts = [("word", tfidf(WordNgramCounts(
        ngram_max=params.word_ngram_max, min_df=params.word_min_df,
        max_features=params.word_max_features, stop_words=params.stop_words)))]
    if params.use_chars:
        parts.append(("char", tfidf(CharNgramCounts(
            ngram_min=params.char_ngram_min, ngram_max=params.char_ngram_max,
            min_df=params.char_min_df, max_features=params.char_max_features))))
    return FeatureUnion(parts)


def label_matrix(rows: list[dict[str, Any]], genres: list[str]) -> np.ndarray:
    """Binary (rows x genres) matrix of the examples' genres."""
    column = {name: j for j, name in enumerate(genres)}
    y = np.zeros((len(rows), len(genres)), dtype=np.uint8)
    for i, row in enumerate(rows):
        for name in row["genres"]:
            y[i, column[name]] = 1
    return y


def featurize(
    params: FeaturizeParams, prepared: Path, out_dir: Path, vectorizer_path: Path
) -> dict:
    """Run the stage; return the number of features and rows per split."""
    splits = {}
    for name in paths.SPLITS:
        path = paths.split_file(prepared, name, ".jsonl")
        if not path.is_file():
            raise TmdbGenresError(f"prepared split {str(path)!r} not found",
                                  "run `dvc repro prepare` first")
        splits[name] = read_jsonl(path)
    recipe_path = prepared / paths.TEXT_RECIPE
    if not recipe_path.is_file():
        raise TmdbGenresError(f"{str(recipe_path)!r} not found", "run `dvc repro prepare` first")
    recipe = read_json(recipe_path)
    genres = genre_names()
    vectorizer = build_vectorizer(params)
    try:
        vectorizer.fit([row["text"] for row in splits["train"]])
    except ValueError as exc:  # e.g. "After pruning, no terms remain"
        raise TmdbGenresError(f"TF-IDF could not be fitted: {exc}",
                              "lower featurize min_df or use a larger snapshot") from None
    summary: dict[str, Any] = {}
    with atomic_dir(out_dir) as tmp:
        for name, rows in splits.items():
            x = vectorizer.transform([row["text"] for row in rows]).tocsr()
            x.sort_indices()
            dump_joblib(
                paths.split_file(tmp, name, ".joblib"),
                {
                    "ids": np.array([row["id"] for row in rows], dtype=np.int64),
                    "X": x,
                    "Y": label_matrix(rows, genres),
                    "genres": genres,
                },
            )
            summary[name] = x.shape[0]
    dump_joblib(vectorizer_path, {**recipe, "vectorizer": vectorizer})
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
