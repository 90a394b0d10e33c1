"""Benchmark of the accurate model (needs the `embeddings` extra); prints every figure.

Figures, on a sample of ``--movies`` real movies from the shared data (default: all of it):
- embedding throughput (docs/s) of the engine, from an empty text-hash cache,
- seconds of the accurate pipeline (embed, head, ensemble, evaluate) from an empty cache, and
  after adding 10% new movies to the snapshot (the cache at work: only those are embedded),
- each model's train seconds (SVM, embedding head) and predict throughput (overviews/s) and
  single-overview latency (ms) of the fast and the accurate model.

Everything runs in a temporary folder (the checkout's outputs and cache are never touched).
``--metrics-out`` also writes the figures as JSON (the README's side-by-side timings come from
``accurate/metrics/timings.json``, written this way; no pipeline stage depends on it).

    python benchmarks/bench_accurate.py [--movies N] [--predict-docs N] [--metrics-out PATH]
    python benchmarks/bench_accurate.py --cache-texts 1000000 [--weekly-new N]

``--cache-texts N`` measures the embedding cache at N texts instead (segments written as a run
writes them, the merge, a rerun's lookup and read) and the engine's texts/s on a real sample,
multiplied out: the hours N texts take once and the minutes a refresh of new texts takes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    """Wall seconds of one call, and its result."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def main_pipeline(root: Path, params) -> dict[str, float]:
    """prepare -> featurize -> train -> evaluate on ``root/data/raw/movies.jsonl``; seconds."""
    from tmdb_genres.evaluate import evaluate
    from tmdb_genres.featurize import featurize
    from tmdb_genres.prepare import prepare
    from tmdb_genres.train import train

    prepare(params.prepare, root / "data/raw/movies.jsonl", root / "data/prepared",
            root / "metrics/prepare.json")
    featurize(params.featurize, root / "data/prepared", root / "data/features",
              root / "models/vectorizer.joblib")
    seconds, _ = timed(train, params.train, root / "data/features", root / "models/model.joblib",
                       root / "data/scores")
    evaluate(params.evaluate, root / "data/scores", root / "models/thresholds.json",
             root / "metrics/metrics.json", root / "metrics/plots")
    return {"svm_train_s": seconds}


def accurate_pipeline(root: Path, params, accurate) -> dict[str, float]:
    """embed -> head -> ensemble -> evaluate under ``root/accurate``; seconds of each."""
    from tmdb_genres.accurate.embed import embed, load_embeddings
    from tmdb_genres.accurate.ensemble import ensemble
    from tmdb_genres.accurate.head import fit_head
    from tmdb_genres.evaluate import evaluate
    from tmdb_genres.io import write_json

    a = root / "accurate"
    out: dict[str, float] = {}
    out["embed_s"], counts = timed(embed, accurate.embed, root / "data/prepared",
                                   a / "data/embeddings", root / "data/cache/embeddings")
    out["embedded"] = counts["embedded"]
    start = time.perf_counter()
    head = fit_head(accurate.head, load_embeddings(a / "data/embeddings", "train"),
                    load_embeddings(a / "data/embeddings", "validation"), accurate.embed.engine)
    write_json(a / "models/head.json", head)
    out["head_train_s"] = time.perf_counter() - start
    out["ensemble_s"], _ = timed(ensemble, accurate.ensemble, params.evaluate, root / "data/scores",
                                 a / "data/embeddings", a / "models/head.json", a / "data/scores",
                                 a / "models/ensemble.json", a / "metrics/compare.json")
    out["evaluate_s"], _ = timed(evaluate, params.evaluate, a / "data/scores",
                                 a / "models/thresholds.json", a / "metrics/metrics.json",
                                 a / "metrics/plots")
    out["total_s"] = out["embed_s"] + out["head_train_s"] + out["ensemble_s"] + out["evaluate_s"]
    return out


def predict_figures(model, texts: list[str]) -> dict[str, float]:
    """Throughput over ``texts`` and the median latency of one overview (5 tries)."""
    seconds, _ = timed(model.probabilities, texts)
    single = [timed(model.probabilities, [t])[0] for t in texts[:5]]
    return {"docs_per_s": len(texts) / seconds, "latency_ms": 1000 * statistics.median(single)}


def peak_rss_gib() -> float:
    """This process's peak RSS so far, GiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20)


def engine_rate(sample: int, prepare, embed) -> tuple[float, float]:
    """Texts/s of the engine (loaded beforehand) on ``sample`` real texts from an empty
    cache, and the CPU seconds a text (which the machine's load does not change). The texts
    are built as the prepare stage builds them (``movie_text`` with the ``prepare`` params)
    and embedded as the embed stage does (``embed``'s engine and batch size)."""
    import resource

    from tmdb_genres.accurate.embeddings import embed_texts, load_encoder
    from tmdb_genres.movie import movie_text

    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        movies = [json.loads(line) for line in handle]
    texts = [movie_text(m.get("title") or "", m.get("overview") or "", prepare)
             for m in movies[:: max(1, len(movies) // sample)][:sample]]
    encoder = load_encoder(embed.engine)
    encoder(texts[:1])
    before = resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory(prefix="bench-accurate-") as tmp:
        seconds, _ = timed(embed_texts, texts, embed.engine, Path(tmp), embed.batch_size,
                           encoder=encoder)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return len(texts) / seconds, cpu / len(texts)


def cache_at_scale(n: int, weekly: int, sample: int) -> None:
    """The cost of the embedding cache and of embedding at ``n`` texts (see ``--cache-texts``).

    The cache is filled as a run fills it (a segment every ``batch_size * 8`` texts, as
    ``embed_texts`` adds them), with random rounded vectors of the engine's dimension
    instead of the engine's, so the figures are the cache's own; the engine's rate is
    measured on ``sample`` real texts and multiplied out. Engine and batch size are
    accurate/params.yaml's.
    """
    import numpy as np

    from tmdb_genres.accurate import embeddings as emb
    from tmdb_genres.params import load_accurate_params, load_params

    params = load_params(ROOT / "params.yaml")
    embed = load_accurate_params(ROOT / "accurate/params.yaml", emb.ENGINES).embed
    spec = emb.engine_spec(embed.engine)
    rate, cpu = engine_rate(sample, params.prepare, embed) if sample else (0.0, 0.0)
    engine = emb.engine_id(spec)
    keys = [emb.text_key(engine, f"synthetic text {i}") for i in range(n + weekly)]
    rng = np.random.default_rng(0)
    chunk = embed.batch_size * 8  # embed_texts adds a segment every batch_size * 8 texts
    with tempfile.TemporaryDirectory(prefix="bench-accurate-cache-") as tmp:
        root = Path(tmp)
        cache = emb.EmbeddingCache(root, engine)
        start = time.perf_counter()
        for at in range(0, n, chunk):
            part = keys[at: min(at + chunk, n)]
            cache.add(part, rng.standard_normal((len(part), spec.dim)).astype(np.float32) / 20)
        write_s = time.perf_counter() - start
        compact_s, _ = timed(cache.compact)
        files = len(list(cache.folder.glob("*.seg")))
        size = sum(p.stat().st_size for p in cache.folder.glob("*.seg"))
        del cache
        start = time.perf_counter()
        cache = emb.EmbeddingCache(root, engine)
        todo = cache.missing(keys)
        lookup_s = time.perf_counter() - start
        get_s, vectors = timed(cache.get, keys[:n])
        assert len(todo) == weekly and vectors.shape == (n, spec.dim), (len(todo), vectors.shape)
        print(f"embedding cache at {n:,} texts: {write_s:.0f} s of segment writes "
              f"({1e6 * write_s / n:.0f} us a text; the engine takes "
              f"{1e6 / rate if rate else float('nan'):,.0f}), compaction {compact_s:.0f} s "
              f"into {files} files ({size / 1e9:.2f} GB); a rerun opens it and finds the "
              f"{weekly:,} new texts in {lookup_s:.1f} s, reads all {n:,} vectors in "
              f"{get_s:.1f} s; peak RSS {peak_rss_gib():.2f} GiB "
              f"(the {vectors.nbytes / (1 << 30):.2f} GiB matrix of vectors included)")
    if rate:
        threads = emb._threads()
        idle = threads / cpu  # texts/s if the engine's threads had the cores to themselves
        print(f"engine: {rate:.1f} texts/s on {sample} real texts ({spec.name}, {threads} "
              f"threads, {cpu:.3f} CPU s a text: {idle:.1f} texts/s on {threads} idle cores); "
              f"{n:,} texts once: {n / rate / 3600:.1f} h at this rate, "
              f"{n / idle / 3600:.1f} h on idle cores; a refresh adding {weekly:,}: "
              f"{weekly / rate / 60:.1f} min ({weekly / idle / 60:.1f} min on idle cores) "
              f"of embedding + {lookup_s + get_s:.0f} s of cache")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, default=0,
                        help="movies sampled from the shared data (0: all, about 11,800)")
    parser.add_argument("--predict-docs", type=int, default=200,
                        help="overviews for the predict throughput")
    parser.add_argument("--metrics-out", type=Path, help="also write the figures here (JSON)")
    parser.add_argument("--cache-texts", type=int, default=0,
                        help="instead: the embedding cache filled with this many texts (as a "
                             "run fills it), reopened and read, and the engine's rate on "
                             "--engine-sample real texts multiplied out to this many")
    parser.add_argument("--weekly-new", type=int, default=2000,
                        help="with --cache-texts: new texts a refresh adds (default: "
                             "%(default)s)")
    parser.add_argument("--engine-sample", type=int, default=200,
                        help="with --cache-texts: real texts to time the engine on (0: skip)")
    args = parser.parse_args()
    if not SHARED_MOVIES.is_file():
        sys.exit(f"the shared data is not at {SHARED_MOVIES}")
    if args.cache_texts:
        cache_at_scale(args.cache_texts, args.weekly_new, args.engine_sample)
        return
    from tmdb_genres.accurate.embeddings import ENGINES
    from tmdb_genres.accurate.model import AccurateModel
    from tmdb_genres.io import write_json, write_jsonl
    from tmdb_genres.model import GenreModel
    from tmdb_genres.params import load_accurate_params, parse_params

    params = parse_params(yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8")))
    accurate = load_accurate_params(ROOT / "accurate/params.yaml", ENGINES)
    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        movies = [json.loads(line) for line in handle]
    if args.movies:
        movies = movies[:: max(1, len(movies) // args.movies)][: args.movies]
    old, new = [m for i, m in enumerate(movies) if i % 10], movies[::10]
    figures: dict[str, object] = {"movies": len(movies), "engine": accurate.embed.engine,
                                  "train_limit": accurate.embed.train_limit}
    with tempfile.TemporaryDirectory(prefix="bench-accurate-") as tmp:
        root = Path(tmp)
        write_jsonl(root / "data/raw/movies.jsonl", old)
        figures["svm"] = main_pipeline(root, params)
        cold = accurate_pipeline(root, params, accurate)
        figures["cold_cache"] = cold
        figures["embed_docs_per_s"] = cold["embedded"] / cold["embed_s"]
        print(f"embedding: {cold['embedded']} texts in {cold['embed_s']:.1f} s = "
              f"{figures['embed_docs_per_s']:.2f} docs/s")
        print(f"accurate pipeline from an empty cache: {cold['total_s']:.1f} s "
              f"(head {cold['head_train_s']:.1f} s)")
        write_jsonl(root / "data/raw/movies.jsonl", sorted(old + new, key=lambda m: m["id"]))
        main_pipeline(root, params)
        warm = accurate_pipeline(root, params, accurate)
        figures["after_10pct_new"] = warm
        print(f"after adding {len(new)} movies (10%): {warm['total_s']:.1f} s, "
              f"{warm['embedded']} texts embedded")
        fast = GenreModel.load(root / "models/vectorizer.joblib", root / "models/model.joblib",
                               root / "models/thresholds.json")
        slow = AccurateModel.load(root / "models", root / "accurate/models")
        texts = [fast.text(m.get("title") or "", m.get("overview") or "")
                 for m in movies[: args.predict_docs]]
        figures["predict_fast"] = predict_figures(fast, texts)
        figures["predict_accurate"] = predict_figures(slow, texts)
        for name in ("fast", "accurate"):
            f = figures[f"predict_{name}"]
            print(f"predict {name}: {f['docs_per_s']:.1f} overviews/s, "
                  f"{f['latency_ms']:.1f} ms for one")
    if args.metrics_out:
        rounded = json.loads(json.dumps(figures), parse_float=lambda x: round(float(x), 3))
        write_json(args.metrics_out, rounded)


if __name__ == "__main__":
    main()
