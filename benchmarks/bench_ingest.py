"""Benchmark of the live ingestion path against the loopback TMDB emulator.

Prints movies/s for a full pull of the shared data with the client rate limit off, the same
with 10% of requests faulted, and the requests made per movie (ideal: 1/20 = 0.05).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"
TOKEN = "bench-token"


def pull_once(movies: list, fault_rate: float) -> tuple[float, int, int]:
    """One full pull into a fresh directory: ``(seconds, movies, requests)``."""
    from tmdb_genres.fetch import fetch
    from tmdb_genres.params import FetchParams
    from tmdb_genres.sources import emulator

    params = FetchParams(source="tmdb", snapshot="bench", requests_per_second=0.0,
                         concurrency=4, timeout_seconds=0.5, max_retries=8)
    config = emulator.EmulatorConfig(movies=movies, token=TOKEN, fault_rate=fault_rate,
                                     seed=1, retry_after=0, slow_seconds=0.8)
    server, thread = emulator.start(config)
    cwd = os.getcwd()
    saved = {k: os.environ.get(k) for k in ("TMDB_API_BASE", "TMDB_API_TOKEN")}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.chdir(tmp)
            os.environ.update(TMDB_API_BASE=server.base_url, TMDB_API_TOKEN=TOKEN)
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
            server.shutdown()
            server.server_close()
            thread.join(5)
    return seconds, report.movies, server.stats.requests


def main() -> None:
    """Print the ingestion figures (skips, saying why, without the shared data)."""
    if not SHARED_MOVIES.is_file():
        print(f"bench_ingest: skipped, {SHARED_MOVIES} not found")
        return
    from tmdb_genres.sources import emulator

    movies = emulator.load_movies(SHARED_MOVIES)
    clean_s, count, requests = pull_once(movies, 0.0)
    faulty_s, faulty_count, faulty_requests = pull_once(movies, 0.10)
    print(f"ingest: full pull from the emulator, rate limit off: {count / clean_s:,.0f} movies/s "
          f"({count} movies in {clean_s:.1f} s)")
    print(f"ingest: same with 10% faults: {faulty_count / faulty_s:,.0f} movies/s "
          f"({faulty_s:.1f} s, {faulty_requests} requests)")
    print(f"ingest: requests per movie: {requests / count:.4f} (ideal 1/20 = 0.0500)")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
