"""Learning curve on the real data: what a training budget (``prepare.split.train_limit``) costs.

Runs prepare -> featurize -> train -> evaluate in process, in a temporary directory, on the
real shared movies with the committed params, once per training budget (the lowest split
hashes, as the pipeline picks them), and prints the validation and test micro / macro-F1 and
the training seconds of each. Validation and test are the same movies in every run.

    python benchmarks/learning_curve.py [--limits 2000 4000 6000 8000 0]   (0: no limit)
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"


def run(limit: int | None, params, raw: Path, workdir: Path) -> dict:
    """One pipeline run on the movies of ``raw`` with ``params`` but ``train_limit = limit``;
    its headline figures and timings."""
    from tmdb_genres.evaluate import evaluate
    from tmdb_genres.featurize import featurize
    from tmdb_genres.io import read_json
    from tmdb_genres.prepare import prepare
    from tmdb_genres.train import train

    root = workdir / f"limit-{limit}"
    report = prepare(dataclasses.replace(params.prepare, train_limit=limit), raw,
                     root / "prepared", root / "prepare.json")
    start = time.perf_counter()
    featurize(params.featurize, root / "prepared", root / "features", root / "vectorizer.joblib")
    train(params.train, root / "features", root / "model.joblib", root / "scores")
    seconds = time.perf_counter() - start
    evaluate(params.evaluate, root / "scores", root / "thresholds.json", root / "metrics.json",
             root / "plots", root / "headline")
    figures = {name: read_json(root / "headline" / f"{name}.json")["f1"]
               for name in ("validation_micro", "validation_macro", "test_micro", "test_macro")}
    return {"train": report["splits"]["train"], "seconds": seconds, **figures}


def main() -> None:
    """Parse options, run each budget and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limits", type=int, nargs="+", default=[2000, 4000, 6000, 8000, 0],
                        help="training budgets to run (0: every training movie)")
    args = parser.parse_args()
    if not SHARED_MOVIES.is_file():
        raise SystemExit(f"learning_curve needs the shared data at {SHARED_MOVIES}")
    sys.path.insert(0, str(ROOT / "src"))
    from tmdb_genres.fetch import check_movie
    from tmdb_genres.io import write_jsonl
    from tmdb_genres.params import load_params

    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        movies = [movie for movie, _ in map(check_movie, map(json.loads, handle)) if movie]
    print(f"learning curve on {len(movies)} real movies (committed params, train_limit varied)")
    print("| training movies | validation micro / macro-F1 | test micro / macro-F1 | "
          "featurize + train s |")
    print("|---|---|---|---|")
    params = load_params(ROOT / "params.yaml")
    with tempfile.TemporaryDirectory(prefix="learning-curve-") as tmp:
        raw = Path(tmp) / "raw.jsonl"  # the same movies for every budget: written once
        write_jsonl(raw, movies)
        for limit in args.limits:
            row = run(limit or None, params, raw, Path(tmp))
            print(f"| {row['train']:,} | {row['validation_micro']:.4f} / "
                  f"{row['validation_macro']:.4f} | {row['test_micro']:.4f} / "
                  f"{row['test_macro']:.4f} | {row['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
