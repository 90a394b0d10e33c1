"""A loopback-only TMDB API v3 emulator serving a snapshot, with injectable faults.

It answers ``/3/genre/movie/list`` and ``/3/discover/movie`` with TMDB's semantics (20 results
a page, the 500-page cap, ``total_results``/``total_pages``, ``primary_release_date.gte/lte``,
``with_original_language``, ``vote_count.gte``, ``sort_by``, a bearer-token or ``api_key``
check) so the live fetch path can be tried and tested without a TMDB account. Faults (429 with
Retry-After, 500/502/503, slow answers, truncated bodies, dropped connections) are injected
on a seeded random fraction of requests. Two quirks of the real service can be switched on:
``shuffle_ties`` reorders, on every request, the results that tie on the sort key (as TMDB's
``/discover/movie`` does, so a tied movie can slip across a page boundary while paging), and
``hide_fraction`` counts a seeded fraction of movies in ``total_results`` but never returns
them (a server that keeps losing movies). It binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import json
import math
import random
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import TmdbGenresError

PAGE_SIZE = 20
MAX_PAGE = 500
DEFAULT_SNAPSHOT = Path("../shared/data/movies.jsonl.gz")
DEFAULT_TOKEN = "emulator-token"
FAULT_KINDS = ("429", "500", "502", "503", "slow", "truncate", "drop")
SORT_FIELDS = ("popularity", "primary_release_date", "release_date", "vote_average",
               "vote_count", "original_title")


@dataclass
class EmulatorConfig:
    """How the emulator behaves: its data, credentials, faults and rate limit."""

    movies: list[dict[str, Any]]
    token: str = DEFAULT_TOKEN
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: int = 1
    slow_seconds: float = 2.0
    rate_limit: float = 0.0  # requests per second before answering 429; 0 is off
    genres: list[dict[str, Any]] = field(default_factory=list)
    shuffle_ties: bool = False  # reorder results that tie on the sort key, per request
    hide_fraction: float = 0.0  # counted in total_results, never returned (seeded by id)


@dataclass
class Stats:
    """Counts of what the emulator served (thread-safe through ``lock``)."""

    requests: int = 0
    faults: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, path: str, faulted: bool) -> None:
        """Record one request."""
        with self.lock:
            self.requests += 1
            self.faults += faulted
            self.by_path[path] = self.by_path.get(path, 0) + 1


def load_movies(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL(.gz) snapshot of TMDB movie objects, dropping non-TMDB fields."""
    from ..io import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise TmdbGenresError(
            f"emulator snapshot {str(path)!r} not found",
            "pass --snapshot PATH to a JSONL(.gz) file of TMDB movie objects",
        )
    return [{k: v for k, v in m.items() if k != "source"} for m in read_jsonl(path)]


def default_genres() -> list[dict[str, Any]]:
    """TMDB's genre list in the shape of ``/genre/movie/list``."""
    from ..genres import TMDB_GENRES

    return [{"id": gid, "name": name} for gid, name in TMDB_GENRES.items()]


def _sort_key(sort_by: str) -> tuple[str, bool]:
    name, _, direction = sort_by.partition(".")
    if name not in SORT_FIELDS or direction not in ("asc", "desc"):
        raise ValueError(sort_by)
    return name, direction == "desc"


def hidden_ids(movies: list[dict[str, Any]], fraction: float, seed: int) -> frozenset[Any]:
    """The ids a server with ``hide_fraction`` never returns: a seeded hash of each id."""
    if fraction <= 0:
        return frozenset()
    scale = float(1 << 64)
    return frozenset(
        m.get("id") for m in movies
        if int.from_bytes(hashlib.sha256(f"{seed}:{m.get('id')}".encode()).digest()[:8],
                          "big") / scale < fraction
    )


Selection = tuple[list[dict[str, Any]], list[int]]


def discover(movies: list[dict[str, Any]], query: dict[str, str],
             cache: dict[tuple[Any, ...], Selection] | None = None,
             rng: random.Random | None = None, hidden: frozenset[Any] = frozenset(),
             ) -> tuple[int, dict[str, Any]]:
    """Answer one ``/discover/movie`` query: ``(status, body)`` as TMDB would.

    ``cache`` keeps each filtered, sorted selection so paging through it stays cheap. With
    ``rng``, the results of the page that tie on the sort key (with each other or with
    results on the neighbouring pages) are put in a fresh random order for this request.
    Movies whose id is in ``hidden`` are counted in ``total_results`` but left out of pages.
    """
    try:
        page = int(query.get("page", "1"))
    except ValueError:
        page = 0
    if not 1 <= page <= MAX_PAGE:
        return 400, {"success": False, "status_code": 22,
                     "status_message": "Invalid page: Pages start at 1 and max at 500. "
                                       "They are expected to be an integer."}
    try:
        field_name, reverse = _sort_key(query.get("sort_by", "popularity.desc"))
    except ValueError:
        return 422, {"success": False, "errors": ["sort_by must be one of the TMDB values"]}
    gte = query.get("primary_release_date.gte") or query.get("release_date.gte")
    lte = query.get("primary_release_date.lte") or query.get("release_date.lte")
    langs = {c for c in query.get("with_original_language", "").split("|") if c}
    try:
        min_votes = int(query.get("vote_count.gte", "0") or 0)
        max_votes = query.get("vote_count.lte")
        max_votes_n = int(max_votes) if max_votes is not None else None
    except ValueError:
        return 422, {"success": False, "errors": ["vote_count must be an integer"]}
    key = (gte, lte, tuple(sorted(langs)), min_votes, max_votes_n, field_name, reverse)
    if cache is not None and key in cache:
        selected, starts = cache[key]
    else:
        selected, starts = _select(movies, gte, lte, langs, min_votes, max_votes_n, field_name,
                                   reverse)
        if cache is not None:
            cache[key] = selected, starts
    total = len(selected)
    first, stop = (page - 1) * PAGE_SIZE, min(page * PAGE_SIZE, total)
    if rng is None or first >= stop:
        results = selected[first:stop]
    else:
        results = _shuffled_ties(selected, starts, first, stop, rng)
    if hidden:
        results = [m for m in results if m.get("id") not in hidden]
    return 200, {"page": page, "results": results, "total_results": total,
                 "total_pages": math.ceil(total / PAGE_SIZE)}


def _shuffled_ties(selected: list[dict[str, Any]], starts: list[int], first: int, stop: int,
                   rng: random.Random) -> list[dict[str, Any]]:
    """``selected[first:stop]`` after shuffling every tie group that overlaps it."""
    below = bisect.bisect_right(starts, first) - 1
    after = bisect.bisect_left(starts, stop)
    lo = starts[below]
    hi = starts[after] if after < len(starts) else len(selected)
    bounds = [*starts[below:after], hi]
    segment: list[dict[str, Any]] = []
    for a, b in itertools.pairwise(bounds):
        group = selected[a:b]
        rng.shuffle(group)
        segment.extend(group)
    return segment[first - lo: stop - lo]


def _select(movies: list[dict[str, Any]], gte: str | None, lte: str | None, langs: set[str],
            min_votes: int, max_votes: int | None, field_name: str, reverse: bool,
            ) -> Selection:
    """The filtered, sorted movies and the start index of each run that ties on the key."""
    selected = []
    for movie in movies:
        date = movie.get("release_date") or ""
        if (gte or lte) and not date:
            continue
        if (gte and date < gte) or (lte and date > lte):
            continue
        if langs and movie.get("original_language") not in langs:
            continue
        votes = movie.get("vote_count") or 0
        if votes < min_votes or (max_votes is not None and votes > max_votes):
            continue
        selected.append(movie)
    attr = {"primary_release_date": "release_date", "original_title": "title"}.get(
        field_name, field_name
    )
    def sort_key(m: dict[str, Any]) -> tuple[bool, Any]:
        if attr == "title":
            return False, m.get("title") or ""
        return m.get(attr) is None, m.get(attr) or 0

    # Without shuffle_ties the order is stable for equal keys: ties are broken by id.
    selected.sort(key=lambda m: m.get("id", 0))
    selected.sort(key=sort_key, reverse=reverse)
    keys = [sort_key(m) for m in selected]
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    return selected, starts


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging (the token could be in a query string)."""

    def _send(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None,
              truncate: bool = False) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if truncate:
            self.wfile.write(data[: max(1, len(data) // 2)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)

    def _authorised(self, query: dict[str, str]) -> bool:
        token = self.server.config.token
        header = self.headers.get("Authorization", "")
        return header == f"Bearer {token}" or query.get("api_key") == token

    def do_GET(self) -> None:
        """Serve one GET request, perhaps with an injected fault."""
        server = self.server
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.rstrip("/")
        fault = server.pick_fault()
        server.stats.count(path, fault is not None)
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if fault == "slow":
            time.sleep(server.config.slow_seconds)
        elif fault == "429" or (fault is None and server.over_rate_limit()):
            self._send(429, {"success": False, "status_code": 25,
                             "status_message": "Your request count is over the allowed limit."},
                       {"Retry-After": str(server.config.retry_after)})
            return
        elif fault in ("500", "502", "503"):
            self._send(int(fault), {"success": False, "status_code": 11,
                                    "status_message": "Internal error."})
            return
        if path not in ("/3/genre/movie/list", "/3/discover/movie"):
            self._send(404, {"success": False, "status_code": 34,
                             "status_message": "The resource you requested could not be found."})
            return
        if not self._authorised(query):
            self._send(401, {"success": False, "status_code": 7,
                             "status_message": "Invalid API key: You must be granted a valid key."})
            return
        if path == "/3/genre/movie/list":
            status, body = 200, {"genres": server.config.genres or default_genres()}
        else:
            status, body = discover(server.config.movies, query, server.selections,
                                    server.tie_rng(), server.hidden)
        self._send(status, body, truncate=fault == "truncate")


class EmulatorServer(ThreadingHTTPServer):
    """The emulator's HTTP server; ``stats`` counts requests and faults."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, config: EmulatorConfig, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.config = config
        self.stats = Stats()
        self._rng = random.Random(config.seed)
        self._rng_lock = threading.Lock()
        self._window: list[float] = []
        self.selections: dict[tuple[Any, ...], Selection] = {}
        self.hidden = hidden_ids(config.movies, config.hide_fraction, config.seed)
        self._tie_seeds = random.Random(f"ties:{config.seed}")

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that gave up (timeouts) or were cut off (faults) are not errors here."""
        if not isinstance(sys.exc_info()[1], ConnectionError | OSError):
            super().handle_error(request, client_address)

    @property
    def base_url(self) -> str:
        """The value for ``TMDB_API_BASE``."""
        return f"http://127.0.0.1:{self.server_address[1]}/3"

    def pick_fault(self) -> str | None:
        """Draw (seeded) whether this request fails, and how."""
        with self._rng_lock:
            if self.config.fault_rate and self._rng.random() < self.config.fault_rate:
                return self._rng.choice(self.config.fault_kinds)
        return None

    def tie_rng(self) -> random.Random | None:
        """A fresh seeded generator that orders this request's ties (None: stable order)."""
        if not self.config.shuffle_ties:
            return None
        with self._rng_lock:
            return random.Random(self._tie_seeds.getrandbits(64))

    def over_rate_limit(self) -> bool:
        """Whether this request exceeds ``rate_limit`` requests in the last second."""
        if not self.config.rate_limit:
            return False
        now = time.monotonic()
        with self._rng_lock:
            self._window = [t for t in self._window if now - t < 1.0]
            if len(self._window) >= self.config.rate_limit:
                return True
            self._window.append(now)
        return False


def start(config: EmulatorConfig, port: int = 0) -> tuple[EmulatorServer, threading.Thread]:
    """Start an emulator on 127.0.0.1 in a daemon thread; call ``server.shutdown()`` to stop."""
    server = EmulatorServer(config, port)
    thread = threading.Thread(target=server.serve_forever, name="tmdb-emulator", daemon=True)
    thread.start()
    return server, thread


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the emulator's options to ``parser``."""
    parser.add_argument("--snapshot", type=Path, default=DEFAULT_SNAPSHOT,
                        help="JSONL(.gz) of TMDB movie objects to serve (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (0: any)")
    parser.add_argument("--token", default=DEFAULT_TOKEN,
                        help="the token clients must send (default: %(default)s)")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="fraction of requests that fail (0..1)")
    parser.add_argument("--faults", default=",".join(FAULT_KINDS),
                        help="comma-separated fault kinds: " + ", ".join(FAULT_KINDS))
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of a 429 (s)")
    parser.add_argument("--slow-seconds", type=float, default=15.0,
                        help="delay of a slow answer (past the client timeout)")
    parser.add_argument("--rate-limit", type=float, default=40.0,
                        help="requests/s before answering 429, like TMDB; 0 turns it off")
    parser.add_argument("--shuffle-ties", action="store_true",
                        help="reorder results that tie on the sort key (e.g. the same "
                             "release date) on every request, as TMDB does")
    parser.add_argument("--hide-fraction", type=float, default=0.0,
                        help="fraction of movies counted in total_results but never "
                             "returned (seeded by --seed; 0..1)")
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """Validate the CLI options into an :class:`EmulatorConfig`."""
    kinds = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise TmdbGenresError(f"unknown fault kind {unknown[0] if unknown else '(none)'!r}",
                              f"use --faults with some of: {', '.join(FAULT_KINDS)}")
    if not 0.0 <= args.fault_rate <= 1.0:
        raise TmdbGenresError(f"--fault-rate must be in [0, 1], got {args.fault_rate}",
                              "pass a fraction such as 0.1")
    if not 0.0 <= args.hide_fraction <= 1.0:
        raise TmdbGenresError(f"--hide-fraction must be in [0, 1], got {args.hide_fraction}",
                              "pass a fraction such as 0.01")
    return EmulatorConfig(movies=load_movies(args.snapshot), token=args.token,
                          fault_rate=args.fault_rate, fault_kinds=kinds, seed=args.seed,
                          retry_after=args.retry_after, slow_seconds=args.slow_seconds,
                          rate_limit=args.rate_limit, shuffle_ties=args.shuffle_ties,
                          hide_fraction=args.hide_fraction)


def start_hint(base_url: str, token: str, movies: int) -> str:
    """What the emulator prints at start: the two exports and the params that use it."""
    return (f"TMDB emulator: {movies} movies at {base_url}\n"
            f"  export TMDB_API_BASE={base_url}\n"
            f"  export TMDB_API_TOKEN={token}\n"
            "  then set, in params.yaml, fetch.source: tmdb and\n"
            "  fetch.watch: src/tmdb_genres/sources/tmdb_api.py, and run dvc repro fetch")


def main(args: argparse.Namespace) -> None:
    """Serve until interrupted."""
    config = config_from_args(args)
    try:
        server = EmulatorServer(config, args.port)
    except OSError as exc:
        raise TmdbGenresError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}",
                              "pick another --port (0 picks a free one)") from None
    print(start_hint(server.base_url, config.token, len(config.movies)), file=sys.stderr,
          flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
