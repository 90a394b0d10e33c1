"""Benchmark of the live ingestion path against the loopback TMDB emulator.

Prints movies/s for a full pull of the shared data with the client rate limit off: with a
well-behaved server, with 10% of requests faulted, and with ties on the sort key reordered on
every request (as TMDB does), alone and on top of the faults; and, for each, the requests
made per movie (ideal: 1/20 = 0.05) and the re-queries the completeness check needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"
TOKEN = "bench-token"
CASES = {  # name: emulator options
    "clean": {},
    "faults": {"fault_rate": 0.10},
    "ties": {"shuffle_ties": True},
    "ties+faults": {"fault_rate": 0.10, "shuffle_ties": True},
}


def pull_once(movies: list, **server: Any) -> tuple[float, int, dict[str, Any]]:
    """One full pull into a fresh directory: ``(seconds, movies, manifest)``."""
    from tmdb_genres.fetch import fetch
    from tmdb_genres.params import FetchParams
    from tmdb_genres.sources import emulator

    params = FetchParams(source="tmdb", snapshot="bench", requests_per_second=0.0,
                         concurrency=4, timeout_seconds=0.5, max_retries=8)
    config = emulator.EmulatorConfig(movies=movies, token=TOKEN, seed=1, retry_after=0,
                                     slow_seconds=0.8, **server)
    server_, thread = emulator.start(config)
    cwd = os.getcwd()
    saved = {k: os.environ.get(k) for k in ("TMDB_API_BASE", "TMDB_API_TOKEN")}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.chdir(tmp)
            os.environ.update(TMDB_API_BASE=server_.base_url, TMDB_API_TOKEN=TOKEN)
            start = time.perf_counter()
            report = fetch(params, Path("raw/movies.jsonl"), Path("metrics/fetch.json"))
            seconds = time.perf_counter() - start
        finally:
            os.chdir(cwd)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            server_.shutdown()
            server_.server_close()
            thread.join(5)
    return seconds, report.movies, report.manifest


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(
        description="Time full pulls of the shared movies (../shared/data/movies.jsonl.gz) "
                    "from the loopback TMDB emulator: clean, with 10% of requests faulted, "
                    "and with ties shuffled per request, alone and with the faults.")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated cases to run (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Print the ingestion figures (skips, saying why, without the shared data)."""
    args = build_parser().parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        build_parser().error(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    if not SHARED_MOVIES.is_file():
        print(f"bench_ingest: skipped, {SHARED_MOVIES} not found")
        return
    from tmdb_genres.sources import emulator

    movies = emulator.load_movies(SHARED_MOVIES)
    for case in cases:
        seconds, count, manifest = pull_once(movies, **CASES[case])
        requests = manifest["requests"]
        completeness = manifest["completeness"]
        requeries = ", ".join(f"{k} {v}" for k, v in completeness["requeries"].items())
        print(f"ingest [{case}]: {count / seconds:,.0f} movies/s ({count} movies in "
              f"{seconds:.1f} s); {requests} requests ({manifest['retries']} retries), "
              f"{requests / count:.4f} per movie (ideal 1/20 = 0.0500); "
              f"collected {completeness['collected']} of {completeness['expected']}; "
              f"re-queries: {requeries}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
