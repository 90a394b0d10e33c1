"""Benchmark of the model in process and of ``tmdb-genres serve`` on loopback.

Prints: model load time and the service's start-up time (process start to the first
answer); in-process single-text prediction p50/p99 (the single-text path, the same with
the contributing words the service adds, and the batch path called with one text); the
service's p50/p99 for single requests from one client; and its throughput for batches of
256 movies from 8 concurrent clients. Movies are real ones from ../shared/data (each
timed movie is one the process has not seen before). Run from the project root after
`dvc repro`, so that models/ holds the trained model.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"


def real_movies(limit: int) -> list[dict[str, str]]:
    """Title and overview of up to ``limit`` real movies with an overview."""
    movies = []
    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        for line in handle:
            movie = json.loads(line)
            if (movie.get("overview") or "").strip():
                movies.append({"title": movie.get("title") or "", "overview": movie["overview"]})
            if len(movies) == limit:
                break
    return movies


def percentiles(seconds: list[float]) -> str:
    """``p50 / p99`` in milliseconds."""
    p50, p99 = np.percentile(np.array(seconds) * 1e3, [50, 99])
    return f"{p50:.2f} / {p99:.2f} ms"


def timed(function, items) -> list[float]:
    """Seconds of each call of ``function`` on each item."""
    times = []
    for item in items:
        start = time.perf_counter()
        function(item)
        times.append(time.perf_counter() - start)
    return times


def in_process(models: Path, movies: list[dict[str, str]], warm: int, repeats: int,
               kind: str = "fast") -> None:
    """Model load time and single-text prediction figures."""
    from tmdb_genres.accurate.model import load_model

    def load():  # a GenreModel or an AccurateModel
        return load_model(kind, models, models.parent / "accurate" / "models")

    loads = []
    for _ in range(repeats):
        start = time.perf_counter()
        model = load()
        model.probabilities_one("warm up")  # the single-text tables, built once
        loads.append(time.perf_counter() - start)
    print(f"model load (joblib files + single-text tables): median "
          f"{statistics.median(loads):.2f} s of {repeats}")
    texts = [model.text(m["title"], m["overview"]) for m in movies]
    for text in texts[:warm]:
        model.predict_one(text)
    timed_texts = texts[warm:]
    print(f"in process, one movie at a time ({len(timed_texts)} unseen movies), p50 / p99:")
    print(f"  probabilities_one (single-text path)   {percentiles(timed(model.probabilities_one, timed_texts))}")  # noqa: E501
    fresh = load()  # its own word cache: the timed movies are unseen again
    fresh.probabilities_one("warm up")
    for text in texts[:warm]:
        fresh.predict_one(text)
    both = timed(fresh.predict_one, timed_texts)
    print(f"  predict_one (+ words, as the service)  {percentiles(both)}")
    batch = timed(lambda t: model.probabilities([t]), timed_texts[:300])
    print(f"  probabilities([text]) (batch path)     {percentiles(batch)}")


def start_server(models: Path, workers: int = 2, kind: str = "fast",
                 options: Sequence[str] = ()) -> tuple[subprocess.Popen, int, float, float]:
    """The real command on a free port, with ``options`` added to its command line:
    (process, port, seconds until it first answered, CPU seconds it had used by then).
    Its stderr is read to the end by a thread, so a server that logs a lot never stalls on
    a full pipe."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tmdb_genres", "serve", "--port", "0", "--models", str(models),
         "--workers", str(workers), "--model", kind, *options], stderr=subprocess.PIPE,
        text=True)
    line = process.stderr.readline()
    found = re.search(r"http://[\d.]+:(\d+)/", line)
    if not found:
        process.wait()
        raise SystemExit(f"bench_serve: the service did not start: {line}")
    threading.Thread(target=_drain, args=(process.stderr,), daemon=True).start()
    port = int(found.group(1))
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.01)
    seconds = time.perf_counter() - start
    cpu = psutil.Process(process.pid).cpu_times()
    return process, port, seconds, cpu.user + cpu.system


def _drain(stream: IO[str]) -> None:
    """Read ``stream`` to its end (the server's exit), then close it."""
    with stream:
        for _ in stream:
            pass


def stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """Stop the server process (its stderr is closed by the thread draining it)."""
    process.terminate()
    process.wait(timeout=timeout)


def post(connection: http.client.HTTPConnection, body: bytes, path: str = "/predict") -> bytes:
    """One POST on a kept-alive connection; the answer's body."""
    connection.request("POST", path, body, {"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"bench_serve: HTTP {response.status}: {data[:200]!r}")
    return data


def service(models: Path, movies: list[dict[str, str]], warm: int, workers: int,
            clients: int, batch: int, batches: int, repeats: int, kind: str = "fast") -> None:
    """Start-up time, single-request latency and batch throughput of the real service."""
    starts, cpus = [], []
    for _ in range(repeats):
        process, _, seconds, cpu = start_server(models, workers, kind)
        starts.append(seconds)
        cpus.append(cpu)
        stop(process)
    print(f"service start-up (process start to first answer): median "
          f"{statistics.median(starts):.2f} s of {repeats} (min {min(starts):.2f} s); "
          f"CPU time used by then: median {statistics.median(cpus):.2f} s")
    process, port, _, _ = start_server(models, workers, kind)
    import psutil

    print(f"service memory after start-up (RSS): "
          f"{psutil.Process(process.pid).memory_info().rss / 2**20:.0f} MiB")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for movie in movies[:warm]:
            post(connection, json.dumps(movie).encode())
        singles = [json.dumps(m).encode() for m in movies[warm:]]
        server = psutil.Process(process.pid)
        before = sum(server.cpu_times()[:2])
        times = timed(lambda body: post(connection, body), singles)
        cpu = (sum(server.cpu_times()[:2]) - before) / len(singles)
        print(f"service, single requests from one client ({len(singles)}, keep-alive), "
              f"p50 / p99: {percentiles(times)}; server CPU {cpu * 1e3:.2f} ms a request")
        bodies = [json.dumps({"movies": [movies[(i * batch + j) % len(movies)]
                                         for j in range(batch)]}).encode()
                  for i in range(clients * batches)]
        for path, what in (("/predict", "with words"),
                           ("/predict?explain=none", "?explain=none, no words")):

            def client(k: int, path: str = path) -> list[float]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
                return timed(lambda body: post(conn, body, path), bodies[k::clients])

            with ThreadPoolExecutor(clients) as pool:
                start = time.perf_counter()
                per_client = list(pool.map(client, range(clients)))
                seconds = time.perf_counter() - start
            sent = sum(len(t) for t in per_client) * batch
            all_times = [t for times in per_client for t in times]
            print(f"service, batches of {batch} from {clients} concurrent clients ({what}): "
                  f"{sent / seconds:,.0f} movies/s ({sent:,} movies in {seconds:.1f} s; "
                  f"request p50 / p99 {percentiles(all_times)}; {workers} worker threads)")
    finally:
        stop(process)


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"),
                        help="directory of the trained model (default models/)")
    parser.add_argument("--model", choices=("fast", "accurate"), default="fast",
                        help="the model to measure (accurate: needs the embeddings extra and "
                        "`make accurate`'s outputs)")
    parser.add_argument("--movies", type=int, default=1000,
                        help="timed single movies, in process and over HTTP (default 1000)")
    parser.add_argument("--warm", type=int, default=200,
                        help="movies sent first and not timed (default 200)")
    parser.add_argument("--workers", type=int, default=2, help="server worker threads")
    parser.add_argument("--clients", type=int, default=8, help="concurrent batch clients")
    parser.add_argument("--batch", type=int, default=256, help="movies a batch request")
    parser.add_argument("--batches", type=int, default=4, help="batches each client sends")
    parser.add_argument("--repeats", type=int, default=5,
                        help="load and start-up measurements (default 5)")
    parser.add_argument("--skip-service", action="store_true",
                        help="only the in-process figures")
    args = parser.parse_args()
    if not SHARED_MOVIES.is_file():
        print(f"bench_serve: skipped, {SHARED_MOVIES} not found")
        return
    if not (args.models / "model.joblib").is_file():
        raise SystemExit(f"bench_serve: no model in {args.models} — run `dvc repro` first")
    movies = real_movies(args.warm + args.movies)
    if len(movies) < args.warm + 1:
        raise SystemExit("bench_serve: not enough movies in the shared data")
    in_process(args.models, movies, args.warm, args.repeats, args.model)
    if not args.skip_service:
        service(args.models, movies, args.warm, args.workers, args.clients, args.batch,
                args.batches, args.repeats, args.model)


if __name__ == "__main__":
    main()
