"""Soak benchmark of ``tmdb-genres serve`` within its limits (serve/limits.py), on loopback.

Prints three figures, each from the real command over the trained model (``models/``) and
real movies from ../shared/data:

1. ``--clients`` clients for ``--seconds`` s, each sending single movies and batches of
   ``--batch`` movies in turn on a kept-alive connection: requests, errors, p50/p99, and the
   server's RSS at the start and the end;
2. the same with ``--stalled`` stalled connections alongside (half send part of a request
   head, half announce a body and send part of it; each is reopened as soon as the server
   closes it): plus how many the server closed (408) and ``/health`` p99;
3. a burst of ``--burst`` clients at once against ``--max-connections`` (default: the
   server's default): how many were answered, shed with 503, or failed, and the p99.

Run from the project root after ``dvc repro``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import real_movies, start_server, stop

MB = 1024 * 1024


def ms(seconds: list[float]) -> str:
    if not seconds:
        return "n/a"
    p50, p99 = np.percentile(np.array(seconds) * 1e3, [50, 99])
    return f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"


def load(port: int, movies: list[dict[str, str]], clients: int, seconds: float,
         batch: int) -> tuple[int, int, list[float]]:
    """``clients`` clients alternating single movies and batches for ``seconds``:
    (requests, errors, latencies)."""
    deadline = time.monotonic() + seconds

    def client(k: int) -> tuple[int, int, list[float]]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        done = errors = 0
        times = []
        i = k
        while time.monotonic() < deadline:
            if i % 5 == 4:
                chosen = [movies[(i * batch + j) % len(movies)] for j in range(batch)]
                body = json.dumps({"movies": chosen}).encode()
                path = "/predict?explain=none" if i % 10 == 4 else "/predict"
            else:
                body, path = json.dumps(movies[i % len(movies)]).encode(), "/predict"
            start = time.perf_counter()
            try:
                connection.request("POST", path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            times.append(time.perf_counter() - start)
            done += 1
            errors += not ok
            i += clients
        return done, errors, times

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    return (sum(r[0] for r in results), sum(r[1] for r in results),
            [t for r in results for t in r[2]])


class Stalled:
    """``count`` stalled connections, each reopened as soon as the server closes it."""

    HEADS = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le",
             b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             b"Content-Length: 1000\r\n\r\n{\"title\": \"")

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count, self.closed, self.timeouts = port, count, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, k: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.sendall(self.HEADS[k % 2])
        sock.setblocking(False)
        return sock

    def _run(self) -> None:
        import selectors

        selector = selectors.DefaultSelector()
        for k in range(self.count):
            selector.register(self._open(k), selectors.EVENT_READ, k)
        while not self.stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408"):
                    self.timeouts += 1
                if not data or data.startswith(b"HTTP/"):
                    selector.unregister(sock)
                    sock.close()
                    self.closed += 1
                    selector.register(self._open(key.data), selectors.EVENT_READ, key.data)
        for key in list(selector.get_map().values()):
            key.fileobj.close()

    def __enter__(self) -> Stalled:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def health(port: int, seconds: float) -> list[float]:
    """``/health`` latencies, one request every 50 ms for ``seconds``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        start = time.perf_counter()
        connection.request("GET", "/health")
        connection.getresponse().read()
        times.append(time.perf_counter() - start)
        time.sleep(0.05)
    return times


def burst(port: int, movie: dict[str, str], clients: int) -> tuple[int, int, int, list[float]]:
    """``clients`` new connections at once, one request each: (200s, 503s, failed, times)."""
    gate = threading.Barrier(clients)
    body = json.dumps(movie).encode()

    def one(_: int) -> tuple[int | None, float]:
        gate.wait()
        start = time.perf_counter()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
            status = connection.getresponse().status
        except OSError:
            status = None
        return status, time.perf_counter() - start

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one, range(clients)))
    return (sum(s == 200 for s, _ in results), sum(s == 503 for s, _ in results),
            sum(s is None for s, _ in results), [t for _, t in results])


def main() -> None:
    """Run the three soaks and print their figures."""
    import psutil

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"),
                        help="the trained model's directory (default models/)")
    parser.add_argument("--clients", type=int, default=8, help="clients of the soak")
    parser.add_argument("--seconds", type=float, default=60, help="seconds of each soak")
    parser.add_argument("--batch", type=int, default=64, help="movies a batch request")
    parser.add_argument("--stalled", type=int, default=500, help="stalled connections")
    parser.add_argument("--burst", type=int, default=32, help="clients of the burst")
    parser.add_argument("--max-connections", type=int, default=None,
                        help="the server's --max-connections in the burst (default: its own)")
    args = parser.parse_args()
    movies = real_movies(2000)
    print(f"bench_soak: {args.clients} clients x {args.seconds:g} s, singles and batches of "
          f"{args.batch}; load average {psutil.getloadavg()[0]:.1f} on "
          f"{psutil.cpu_count()} CPUs")

    process, port, _, _ = start_server(args.models)
    server = psutil.Process(process.pid)
    try:
        load(port, movies, 2, 2, args.batch)  # warm up
        rss = server.memory_info().rss / MB
        done, errors, times = load(port, movies, args.clients, args.seconds, args.batch)
        print(f"soak: {done:,} requests, {errors} errors, {ms(times)}; RSS {rss:.0f} MB at "
              f"the start, {server.memory_info().rss / MB:.0f} MB at the end")
        rss = server.memory_info().rss / MB
        with Stalled(port, args.stalled) as stalled:
            time.sleep(1)
            checks: list[float] = []
            watcher = threading.Thread(target=lambda: checks.extend(health(port,
                                                                           args.seconds)))
            watcher.start()
            done, errors, times = load(port, movies, args.clients, args.seconds, args.batch)
            watcher.join()
        print(f"soak with {args.stalled} stalled connections: {done:,} requests, {errors} "
              f"errors, {ms(times)}; /health {ms(checks)}; the server closed "
              f"{stalled.closed:,} stalled connections ({stalled.timeouts:,} with 408); RSS "
              f"{rss:.0f} MB at the start, {server.memory_info().rss / MB:.0f} MB at the end")
    finally:
        stop(process, timeout=30)

    options = ([] if args.max_connections is None
               else ["--max-connections", str(args.max_connections)])
    process, port, _, _ = start_server(args.models, options=options)
    try:
        load(port, movies, 2, 1, args.batch)
        ok, shed, failed, times = burst(port, movies[0], args.burst)
        cap = args.max_connections or "default"
        print(f"burst of {args.burst} clients (--max-connections {cap}): {ok} answered, "
              f"{shed} shed with 503, {failed} failed; {ms(times)}")
    finally:
        stop(process, timeout=30)


if __name__ == "__main__":
    main()
