"""Prediction speed with and without the metadata block, on the real shared data.

Prints, for the model in ``--models`` (run `dvc repro` first): batch throughput of
``GenreModel.probabilities`` over every movie of ../shared/data in batches of 2,048 (the
predict command's batch size), text only and with each movie's raw metadata fields; and the
single-text path's p50 / p99 latency (``probabilities_one``) on unseen movies, text only and
with metadata. Medians over ``--repeats`` runs. A model without a metadata block (an older
release) is timed text only, so running this script from an older checkout gives the
baseline to compare against:

    python benchmarks/bench_metadata.py --models models
"""

from __future__ import annotations

import argparse
import gzip
import inspect
import json
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"
FIELDS = ("original_language", "release_date", "vote_count", "popularity", "vote_average")
BATCH = 2048


def main() -> None:
    """Time the model and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--single", type=int, default=1000, help="movies timed one at a time")
    args = parser.parse_args()
    from tmdb_genres.model import GenreModel

    model = GenreModel.load(args.models / "vectorizer.joblib", args.models / "model.joblib",
                            args.models / "thresholds.json")
    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        movies = [json.loads(line) for line in handle]
    texts = [model.text(m["title"], m.get("overview") or "") for m in movies]
    metadata = [{k: m[k] for k in FIELDS if k in m} for m in movies]
    has_metadata = getattr(model.vectorizer, "metadata", None) is not None
    takes_metadata = "metadata" in inspect.signature(model.probabilities).parameters
    variants = [("text only", None)] + ([("with metadata", metadata)] if has_metadata else [])
    print(f"{len(movies)} movies; model {'with' if has_metadata else 'without'} a metadata block")
    for label, meta in variants:
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for i in range(0, len(texts), BATCH):
                chunk = texts[i:i + BATCH]
                if takes_metadata:
                    model.probabilities(chunk, None if meta is None else meta[i:i + BATCH])
                else:
                    model.probabilities(chunk)
            seconds.append(time.perf_counter() - start)
        median = statistics.median(seconds)
        print(f"batch {label:14s} {len(texts) / median:8.0f} movies/s (median {median:.2f} s "
              f"of {args.repeats}, range {min(seconds):.2f}-{max(seconds):.2f})")
    model.probabilities_one("warm up")
    unseen = list(range(len(texts) - args.single, len(texts)))
    for label, meta in variants:
        runs = []
        for _ in range(args.repeats):
            model = GenreModel.load(args.models / "vectorizer.joblib",
                                    args.models / "model.joblib",
                                    args.models / "thresholds.json")  # a cold word cache
            model.probabilities_one("warm up")
            times = []
            for i in unseen:
                start = time.perf_counter()
                if meta is None:
                    model.probabilities_one(texts[i])
                else:
                    model.probabilities_one(texts[i], meta[i])
                times.append(time.perf_counter() - start)
            runs.append(np.percentile(times, [50, 99]) * 1000)
        p50, p99 = np.median(np.array(runs), axis=0)
        print(f"single {label:13s} p50 {p50:.3f} ms, p99 {p99:.3f} ms ({len(unseen)} unseen "
              f"movies, median of {args.repeats})")


if __name__ == "__main__":
    main()
