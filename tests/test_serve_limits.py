"""The service's bounds (serve/limits.py) against hostile and unlucky clients: the real
command on loopback, raw sockets, and the server process measured with psutil.

Each test reproduces one finding of issue 18 (what the server did before the bounds is in
the comments) and asserts the bound with a generous but failing margin.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
import requests

from .serve_helpers import project_copy, serve_command

pytest.importorskip("fastapi", reason="the serve extra is not installed "
                    "(pip install -e '.[serve]')")

MB = 1024 * 1024


@pytest.fixture(scope="module")
def project(_toy_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The toy pipeline's outputs with the committed params.yaml, as a project root."""
    return project_copy(_toy_outputs, tmp_path_factory.mktemp("limits") / "project")


@contextmanager
def served(project: Path, *args: str) -> Iterator[tuple[str, int, psutil.Process, Path]]:
    """``tmdb-genres serve --port 0 ARGS`` with its stderr in a file; yields (base URL, port,
    the server process, the stderr file)."""
    log = project / f"serve-{time.monotonic_ns()}.log"
    with serve_command(list(args), project, log=log) as (url, process):
        yield url, int(url.rsplit(":", 1)[1]), psutil.Process(process.pid), log


def connect(port: int, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    if data:
        sock.sendall(data)
    return sock


def answer(sock: socket.socket, timeout: float = 10) -> bytes:
    """What the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return received


def health_latencies(url: str, count: int) -> list[float]:
    session = requests.Session()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        assert session.get(f"{url}/health", timeout=10).status_code == 200
        times.append(time.perf_counter() - start)
    return sorted(times)


def overload_lines(log: Path, kind: str) -> list[str]:
    return [line for line in log.read_text().splitlines() if f"overload: {kind}:" in line]


# ------------------------------------------------------------------ slow clients


def test_stalled_connections_neither_block_health_nor_stay_open(project: Path) -> None:
    """Before: a request announcing Content-Length: 1000 and sending 15 bytes was held
    forever (1,000 were all open after 75 s), and 21,000 exhausted the open files."""
    with served(project, "--header-timeout", "3", "--body-timeout", "3") as (url, port, _, log):
        partial_head = [connect(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Le")
                        for _ in range(150)]
        partial_body = [connect(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                b"application/json\r\nContent-Length: 1000\r\n\r\n{\"title\": \"")
                        for _ in range(150)]
        opened = time.monotonic()
        times = health_latencies(url, 200)
        p99 = times[int(0.99 * len(times)) - 1]
        assert p99 < 0.100, f"/health p99 {p99 * 1000:.1f} ms with 300 stalled connections"
        assert time.monotonic() - opened < 3  # measured while all 300 were open and stalled
        for sock in partial_head + partial_body:  # each is answered 408 and closed
            received = answer(sock, timeout=15)
            assert received.startswith(b"HTTP/1.1 408 "), received[:80]
            sock.close()
        assert time.monotonic() - opened < 15
        # one line per kind of overload per interval, not one per event
        assert len(overload_lines(log, "slow clients")) == 1, log.read_text()
        assert "300 events" not in log.read_text()


def test_over_the_connection_cap_is_a_503_not_a_dying_server(project: Path) -> None:
    with served(project, "--max-connections", "20", "--header-timeout", "30") as (
            url, port, server, log):
        held = [connect(port) for _ in range(20)]
        time.sleep(0.5)
        extra = [connect(port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n") for _ in range(30)]
        for sock in extra:
            received = answer(sock)
            assert received.startswith(b"HTTP/1.1 503 "), received[:80]
            assert b"--max-connections" not in received and b"retry" in received
            sock.close()
        assert len(server.net_connections(kind="tcp")) < 20 + 30 + 5
        for sock in held:
            sock.close()
        time.sleep(0.5)
        assert requests.get(f"{url}/health", timeout=10).status_code == 200
        assert len(overload_lines(log, "connections over the cap")) == 1, log.read_text()


# ------------------------------------------------------------------ sizes


def test_a_100_mb_body_is_refused_having_read_at_most_the_cap(project: Path) -> None:
    """Before: a 100 MB POST /predict was read and parsed in full before its 413 (1.5 s and
    +300 MB RSS; four at once took RSS from 196 MB to 971 MB)."""
    cap = 12 * MB  # the default --max-body-bytes
    with served(project) as (url, port, server, _):
        requests.post(f"{url}/predict", json={"title": "warm", "overview": "up"}, timeout=10)
        rss, read = server.memory_info().rss, server.io_counters().read_chars
        # a declared Content-Length over the cap: refused before a byte of the body is read
        sock = connect(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       b"application/json\r\nContent-Length: 104857600\r\n\r\n")
        received = answer(sock)
        assert received.startswith(b"HTTP/1.1 413 "), received[:80]
        assert b"104,857,600 bytes, over the cap of 12,582,912" in received
        sock.close()
        # a chunked body that never says its size: refused once the cap is passed
        sock = connect(port, b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: "
                       b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (MB, b"x" * MB)
        sent = 0
        try:
            for _ in range(100):
                sock.sendall(chunk)
                sent += MB
        except OSError:  # the server answered and closed: the rest is refused
            pass
        received = answer(sock)
        sock.close()
        assert sent < 100 * MB or received.startswith(b"HTTP/1.1 413 "), received[:80]
        extra_read = server.io_counters().read_chars - read
        assert extra_read <= cap + MB, f"read {extra_read / MB:.1f} MB of a 100 MB body"
        grown = (server.memory_info().rss - rss) / MB
        assert grown < 20, f"RSS grew by {grown:.1f} MB"
        assert requests.get(f"{url}/health", timeout=10).status_code == 200


def test_oversized_url_and_headers_get_414_and_431_and_head_works(project: Path) -> None:
    """Before: both reset the connection, and HEAD / and HEAD /health answered 405."""
    with served(project) as (url, port, _, _):
        sock = connect(port, b"GET /health?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 414 ")
        sock = connect(port, b"GET /health HTTP/1.1\r\nHost: x\r\n"
                       + b"".join(b"X-Filler-%d: %s\r\n" % (i, b"y" * 1000) for i in range(20))
                       + b"\r\n")
        assert answer(sock).startswith(b"HTTP/1.1 431 ")
        for path in ("/", "/health", "/genres", "/static/app.js"):
            head, get = (requests.request(m, f"{url}{path}", timeout=10) for m in ("HEAD", "GET"))
            assert head.status_code == get.status_code == 200, path
            assert head.content == b"" and head.headers["content-type"] == \
                get.headers["content-type"], path
        assert requests.get(f"{url}/health", headers={"X-Ok": "y" * 8000},
                            timeout=10).status_code == 200  # within the default caps


# ------------------------------------------------------------------ CPU and memory


def test_a_long_word_flood_leaves_rss_flat_and_health_answering(project: Path) -> None:
    """Before: batches of 250 movies, each one unique 10,000-character word, took RSS from
    154 MB to 526 MB (the single-text cache kept ~265 KB a word) at 27-36 s of CPU a batch."""
    with served(project) as (url, _, server, _):
        requests.post(f"{url}/predict", json={"title": "warm", "overview": "up"}, timeout=10)
        rss = server.memory_info().rss
        letters = "abcdefghijklmnopqrstuvwxyz"
        cpu = server.cpu_times()
        for batch in range(8):
            movies = [{"title": "", "overview": "".join(letters[(i * 7 + batch + k) % 26]
                                                        for k in range(9_990))
                       + f"{batch}x{i}"} for i in range(250)]
            for explain in ("predicted", "none"):
                done = requests.post(f"{url}/predict?explain={explain}",
                                     json={"movies": movies}, timeout=60)
                assert done.status_code == 200, done.text[:200]
            for movie in movies[:25]:  # singles, on the event loop's side of the service
                assert requests.post(f"{url}/predict", json=movie, timeout=60).ok
        used = sum(server.cpu_times()[:2]) - sum(cpu[:2])
        grown = (server.memory_info().rss - rss) / MB
        assert grown < 50, f"RSS grew by {grown:.1f} MB"
        assert used < 60, f"{used:.0f} s of CPU for 16 batches of 2.5 MB"


def test_long_single_movies_leave_the_event_loop(project: Path) -> None:
    """Before: four clients sending one 10,000-character movie each took /health p50 from
    8.9 ms to 440 ms."""
    words = " ".join(f"w{i}ord{i % 97}" for i in range(1400))[:10_000]
    stop = threading.Event()

    def flood(url: str) -> None:
        session = requests.Session()
        while not stop.is_set():
            session.post(f"{url}/predict?explain=all", json={"title": "t", "overview": words},
                         timeout=60)

    with served(project) as (url, _, _, _):
        threads = [threading.Thread(target=flood, args=(url,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(1)
            times = health_latencies(url, 60)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=60)
        p50 = times[len(times) // 2]
        assert p50 < 0.100, f"/health p50 {p50 * 1000:.0f} ms beside 4 long-movie clients"


def test_a_limit_out_of_range_is_a_one_line_error(project: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tmdb_genres", "serve", "--port", "0",
                           "--max-body-bytes", "0"], cwd=project, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--max-body-bytes must be positive, got 0" in done.stderr
