"""Accurate stage 1, embed: the prepared texts of every split as sentence vectors.

Reads the main pipeline's ``data/prepared`` splits and embeds each movie's model text (the
same text the SVM sees) with the engine named in ``accurate/params.yaml``. Vectors come from
the text-hash cache where they are already known, so a grown snapshot embeds only its new
movies. ``embed.train_limit`` caps the training movies embedded (the first N by the hashed id
that decides the split, so the subset is stable and grows with the limit); validation and test
are always embedded whole.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import paths
from ..errors import TmdbGenresError
from ..featurize import label_matrix, read_prepared_splits
from ..genres import genre_names
from ..io import atomic_dir, dump_joblib, load_joblib
from ..params import EmbedParams, load_accurate_params
from .embeddings import CACHE_DIR, ENGINES, embed_texts


def training_subset(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """At most ``limit`` rows, the first by a hash of their id, returned in id order."""
    if limit is None or len(rows) <= limit:
        return rows
    ranked = sorted(rows, key=lambda r: hashlib.sha256(f"embed:{r['id']}".encode()).digest())
    return sorted(ranked[:limit], key=lambda r: r["id"])


def read_splits(prepared: Path, params: EmbedParams) -> dict[str, list[dict[str, Any]]]:
    """The prepared rows of each split (train capped by ``train_limit``)."""
    splits = read_prepared_splits(prepared)
    splits["train"] = training_subset(splits["train"], params.train_limit)
    return splits


def embed(params: EmbedParams, prepared: Path, out_dir: Path, cache: Path,
          encoder: Callable[[Sequence[str]], np.ndarray] | None = None) -> dict[str, Any]:
    """Run the stage: write ``<split>.joblib`` (ids, X, Y, genres and each movie's raw
    metadata) per split; return counts.

    ``encoder`` replaces the engine's own (tests give a small deterministic one).
    """
    from tqdm import tqdm

    splits = read_splits(prepared, params)
    genres = genre_names()
    total = sum(len(rows) for rows in splits.values())
    new = 0
    with tqdm(total=total, desc="embed", unit=" texts", file=sys.stderr, disable=None) as bar, \
            atomic_dir(out_dir) as tmp:
        for split, rows in splits.items():
            vectors, fresh = embed_texts([r["text"] for r in rows], params.engine, cache,
                                         params.batch_size, encoder=encoder, progress=bar)
            bar.update(len(rows) - fresh)
            new += fresh
            dump_joblib(paths.split_file(tmp, split, ".joblib"), {
                "ids": np.array([r["id"] for r in rows], dtype=np.int64),
                "X": vectors,
                "Y": label_matrix(rows, genres),
                "genres": genres,
                "metadata": [row.get("metadata") for row in rows],  # raw fields, for the head
            })
    return {"texts": total, "embedded": new, "cached": total - new}


def load_embeddings(directory: Path, split: str) -> dict[str, Any]:
    """One split written by :func:`embed`."""
    path = paths.split_file(directory, split, ".joblib")
    if not path.is_file():
        raise TmdbGenresError(f"embeddings {str(path)!r} not found",
                              "run `dvc repro` in accurate/ (see the README)")
    return load_joblib(path)


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=Path("params.yaml"),
                        help="the accurate model's params file")
    parser.add_argument("--prepared", type=Path, default=Path("..") / paths.PREPARED_DIR,
                        help="directory written by the main pipeline's prepare stage")
    parser.add_argument("--out", type=Path, default=Path("data/embeddings"),
                        help="directory for the vectors of each split")
    parser.add_argument("--cache", type=Path, default=Path("..") / CACHE_DIR,
                        help="text-hash cache of vectors, kept across runs")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the embed stage."""
    params = load_accurate_params(args.params, ENGINES).embed
    counts = embed(params, args.prepared, args.out, args.cache)
    print(f"embed ({params.engine}): {counts['texts']} texts, {counts['embedded']} embedded, "
          f"{counts['cached']} from the cache -> {args.out}")
