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
import itertools
import json
import math
import os
import random
import socket
import sys
import tempfile
import threading
import time
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from ..errors import TmdbGenresError
from ..idhash import unit_hash
from .synthetic import as_number

PAGE_SIZE = 20
MAX_PAGE = 500
DEFAULT_SNAPSHOT = Path("../shared/data/movies.jsonl.gz")
DEFAULT_TOKEN = "emulator-token"
FAULT_KINDS = ("429", "500", "502", "503", "slow", "truncate", "drop")
SORT_FIELDS = ("popularity", "primary_release_date", "release_date", "vote_average",
               "vote_count", "original_title")


@dataclass
class EmulatorConfig:
    """How the emulator behaves: its data, credentials, faults and rate limit.

    ``movies`` is a :class:`Catalogue` (a list of movie objects is turned into one).
    """

    movies: Catalogue | list[dict[str, Any]]
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


NUMERIC_FIELDS = ("popularity", "vote_average", "vote_count")


class Catalogue:
    """The movies an emulator serves, held compactly: a few numpy columns (id, release date,
    language, popularity, votes) to filter and sort on, and each movie's JSON in an unlinked
    temporary file, read back only for the 20 results of a page. A movie takes about 60
    bytes of memory (0.1 GiB for a million) instead of the kilobyte or so of a dict.
    """

    def __init__(self, movies: Iterable[Any]) -> None:
        ids, langs, offsets, lengths = array("q"), array("h"), array("q"), array("i")
        dates, date_missing = bytearray(), bytearray()
        numbers = {name: array("d") for name in NUMERIC_FIELDS}
        missing = {name: bytearray() for name in NUMERIC_FIELDS}
        lang_codes: dict[str, int] = {}
        self._file = tempfile.TemporaryFile(prefix="tmdb-emulator-")  # noqa: SIM115 kept open
        offset = 0
        for movie in movies:
            if isinstance(movie, dict):
                movie = {k: v for k, v in movie.items() if k != "source"}
                get = movie.get
            else:
                get = {}.get
            body = json.dumps(movie).encode()
            self._file.write(body)
            offsets.append(offset)
            lengths.append(len(body))
            offset += len(body)
            movie_id = get("id")
            ids.append(movie_id if isinstance(movie_id, int) and not isinstance(movie_id, bool)
                       and -(1 << 63) <= movie_id < 1 << 63 else 0)
            date = get("release_date")
            date = date if isinstance(date, str) else ""
            dates += date.encode()[:10].ljust(10, b"\0")
            date_missing.append(not date)
            lang = get("original_language")
            langs.append(lang_codes.setdefault(lang, len(lang_codes))
                         if isinstance(lang, str) else -1)
            for name in NUMERIC_FIELDS:
                value = as_number(get(name))
                numbers[name].append(value or 0.0)
                missing[name].append(value is None)
        self._file.flush()
        self.ids = np.frombuffer(ids, dtype=np.int64)
        self.dates = np.frombuffer(bytes(dates), dtype="S10")
        self.date_missing = np.frombuffer(bytes(date_missing), dtype=np.bool_)
        self.langs = np.frombuffer(langs, dtype=np.int16)
        self.lang_codes = lang_codes
        self.numbers = {k: np.frombuffer(v, dtype=np.float64) for k, v in numbers.items()}
        self.missing = {k: np.frombuffer(bytes(v), dtype=np.bool_) for k, v in missing.items()}
        self.offsets = np.frombuffer(offsets, dtype=np.int64)
        self.lengths = np.frombuffer(lengths, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ids)

    def body(self, index: int) -> bytes:
        """The JSON of one movie, as served."""
        return os.pread(self._file.fileno(), int(self.lengths[index]),
                        int(self.offsets[index]))

    def movie(self, index: int) -> Any:
        """One movie object."""
        return json.loads(self.body(index))

    def select(self, gte: str | None, lte: str | None, langs: set[str], min_votes: int,
               max_votes: int | None, field_name: str, reverse: bool) -> Selection:
        """The filtered, sorted movie indices and the start of each run that ties on the key.

        Ties are broken by id (ascending, in either direction), as a stable sort would.
        """
        mask = np.ones(len(self), dtype=np.bool_)
        if gte or lte:
            mask &= ~self.date_missing
        if gte:
            mask &= self.dates >= gte.encode()
        if lte:
            mask &= self.dates <= lte.encode()
        if langs:
            mask &= np.isin(self.langs, [self.lang_codes[c] for c in langs
                                         if c in self.lang_codes])
        votes = self.numbers["vote_count"]
        mask &= votes >= min_votes
        if max_votes is not None:
            mask &= votes <= max_votes
        chosen = np.flatnonzero(mask)
        if field_name == "original_title":
            titles = [self.movie(int(i)).get("title") or "" for i in chosen]
            rank = np.unique(np.array(titles, dtype=str), return_inverse=True)[1] \
                if titles else np.zeros(0, dtype=np.int64)
            none = np.zeros(len(chosen), dtype=np.bool_)
        else:
            attr = "release_date" if field_name in ("primary_release_date", "release_date") \
                else field_name
            if attr == "release_date":
                values, none = self.dates[chosen], self.date_missing[chosen]
            else:
                values, none = self.numbers[attr][chosen], self.missing[attr][chosen]
            rank = np.unique(values, return_inverse=True)[1].reshape(-1) if len(chosen) \
                else np.zeros(0, dtype=np.int64)
            rank[none] = 0
        if reverse:  # missing values first, then the highest; ties still by ascending id
            order = np.lexsort((self.ids[chosen], -rank, ~none))
        else:
            order = np.lexsort((self.ids[chosen], rank, none))
        chosen, rank, none = chosen[order], rank[order], none[order]
        change = np.ones(len(chosen), dtype=np.bool_)
        change[1:] = (rank[1:] != rank[:-1]) | (none[1:] != none[:-1])
        return chosen.astype(np.int32), np.flatnonzero(change).astype(np.int32)

    def hidden(self, fraction: float, seed: int) -> np.ndarray:
        """Which movies a server with ``hide_fraction`` never returns (a seeded id hash)."""
        mask = np.zeros(len(self), dtype=np.bool_)
        if fraction > 0:
            for index, movie_id in enumerate(self.ids.tolist()):
                mask[index] = unit_hash(f"{seed}:{movie_id}") < fraction
        return mask


Selection = tuple[np.ndarray, np.ndarray]  # movie indices in order, start of each tie run


def load_movies(path: str | Path) -> Catalogue:
    """Stream a JSONL(.gz) snapshot of TMDB movie objects into a :class:`Catalogue`
    (non-TMDB fields dropped), never holding the movies as objects."""
    from ..io import iter_jsonl

    path = Path(path)
    if not path.is_file():
        raise TmdbGenresError(
            f"emulator snapshot {str(path)!r} not found",
            "pass --snapshot PATH to a JSONL(.gz) file of TMDB movie objects",
        )
    try:
        return Catalogue(iter_jsonl(path))
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
        raise TmdbGenresError(f"cannot read emulator snapshot {str(path)!r}: {exc}",
                              "pass a complete, UTF-8 JSONL(.gz) file of TMDB movie "
                              "objects") from None


def default_genres() -> list[dict[str, Any]]:
    """TMDB's genre list in the shape of ``/genre/movie/list``."""
    from ..genres import TMDB_GENRES

    return [{"id": gid, "name": name} for gid, name in TMDB_GENRES.items()]


def _sort_key(sort_by: str) -> tuple[str, bool]:
    name, _, direction = sort_by.partition(".")
    if name not in SORT_FIELDS or direction not in ("asc", "desc"):
        raise ValueError(sort_by)
    return name, direction == "desc"


def hidden_ids(movies: Catalogue | list[dict[str, Any]], fraction: float, seed: int,
               ) -> frozenset[int]:
    """The ids a server with ``hide_fraction`` never returns: a seeded hash of each id."""
    catalogue = as_catalogue(movies)
    return frozenset(catalogue.ids[catalogue.hidden(fraction, seed)].tolist())


def as_catalogue(movies: Catalogue | list[dict[str, Any]]) -> Catalogue:
    """``movies`` as a :class:`Catalogue`."""
    return movies if isinstance(movies, Catalogue) else Catalogue(movies)


class Selections:
    """The most recent filtered, sorted selections, up to ``budget`` movies in all (the
    newest is always kept): paging one query stays cheap, and memory stays bounded however
    many queries a pull makes and however large the catalogue."""

    def __init__(self, budget: int = 1_000_000) -> None:
        self.budget = budget
        self._items: OrderedDict[tuple[Any, ...], Selection] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def held(self) -> int:
        """Movies held in all kept selections."""
        with self._lock:
            return sum(len(chosen) for chosen, _ in self._items.values())

    def get(self, key: tuple[Any, ...], make: Callable[[], Selection]) -> Selection:
        """The selection of ``key``, computed by ``make`` when not kept."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        selection = make()
        with self._lock:
            self._items[key] = selection
            held = sum(len(chosen) for chosen, _ in self._items.values())
            while held > self.budget and len(self._items) > 1:
                held -= len(self._items.popitem(last=False)[1][0])
        return selection


def discover(catalogue: Catalogue, query: dict[str, str], selections: Selections | None = None,
             rng: random.Random | None = None, hidden: np.ndarray | None = None,
             ) -> tuple[int, bytes]:
    """Answer one ``/discover/movie`` query: ``(status, JSON body)`` as TMDB would.

    ``selections`` keeps recent filtered, sorted selections so paging through one stays cheap.
    With ``rng``, the results of the page that tie on the sort key (with each other or with
    results on the neighbouring pages) are put in a fresh random order for this request.
    Movies marked in ``hidden`` are counted in ``total_results`` but left out of pages.
    """
    try:
        page = int(query.get("page", "1"))
    except ValueError:
        page = 0
    if not 1 <= page <= MAX_PAGE:
        return 400, _json({"success": False, "status_code": 22,
                           "status_message": "Invalid page: Pages start at 1 and max at 500. "
                                             "They are expected to be an integer."})
    try:
        field_name, reverse = _sort_key(query.get("sort_by", "popularity.desc"))
    except ValueError:
        return 422, _json({"success": False, "errors": ["sort_by must be one of the TMDB values"]})
    gte = query.get("primary_release_date.gte") or query.get("release_date.gte")
    lte = query.get("primary_release_date.lte") or query.get("release_date.lte")
    langs = {c for c in query.get("with_original_language", "").split("|") if c}
    try:
        min_votes = int(query.get("vote_count.gte", "0") or 0)
        max_votes = query.get("vote_count.lte")
        max_votes_n = int(max_votes) if max_votes is not None else None
    except ValueError:
        return 422, _json({"success": False, "errors": ["vote_count must be an integer"]})
    key = (gte, lte, tuple(sorted(langs)), min_votes, max_votes_n, field_name, reverse)

    def make() -> Selection:
        return catalogue.select(gte, lte, langs, min_votes, max_votes_n, field_name, reverse)

    selected, starts = selections.get(key, make) if selections is not None else make()
    total = len(selected)
    first, stop = (page - 1) * PAGE_SIZE, min(page * PAGE_SIZE, total)
    if rng is None or first >= stop:
        results = selected[first:stop].tolist()
    else:
        results = _shuffled_ties(selected, starts, first, stop, rng)
    if hidden is not None:
        results = [i for i in results if not hidden[i]]
    bodies = b", ".join(catalogue.body(i) for i in results)
    return 200, b'{"page": %d, "results": [%s], "total_results": %d, "total_pages": %d}' % (
        page, bodies, total, math.ceil(total / PAGE_SIZE))


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _shuffled_ties(selected: np.ndarray, starts: np.ndarray, first: int, stop: int,
                   rng: random.Random) -> list[int]:
    """``selected[first:stop]`` after shuffling every tie group that overlaps it
    (``starts``: the sorted start of each tie group in ``selected``)."""
    below = int(np.searchsorted(starts, first, side="right")) - 1
    after = int(np.searchsorted(starts, stop, side="left"))
    lo = int(starts[below])
    hi = int(starts[after]) if after < len(starts) else len(selected)
    bounds = [*starts[below:after].tolist(), hi]
    segment: list[int] = []
    for a, b in itertools.pairwise(bounds):
        group = selected[a:b].tolist()
        rng.shuffle(group)
        segment.extend(group)
    return segment[first - lo: stop - lo]


class _Handler(BaseHTTPRequestHandler):
    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging (the token could be in a query string)."""

    def _send(self, status: int, body: dict[str, Any] | bytes,
              headers: dict[str, str] | None = None, truncate: bool = False) -> None:
        data = body if isinstance(body, bytes) else _json(body)
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
        body: dict[str, Any] | bytes
        if path == "/3/genre/movie/list":
            status, body = 200, {"genres": server.config.genres or default_genres()}
        else:
            status, body = discover(server.catalogue, query, server.selections,
                                    server.tie_rng(), server.hidden_mask)
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
        self.catalogue = as_catalogue(config.movies)
        self.selections = Selections()
        mask = self.catalogue.hidden(config.hide_fraction, config.seed)
        self.hidden_mask = mask if mask.any() else None
        self.hidden = frozenset(self.catalogue.ids[mask].tolist())
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
