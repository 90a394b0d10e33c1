"""The live TMDB API source (``fetch.source: tmdb``): a fault-tolerant, resumable v3 client.

Credentials come from the environment only: ``TMDB_API_TOKEN`` (a v4 read access token, sent
as ``Authorization: Bearer``) or ``TMDB_API_KEY`` (sent as the ``api_key`` query parameter);
``TMDB_API_BASE`` points the client elsewhere (e.g. at ``tmdb-genres emulator``). The secret
is never printed, logged or written anywhere.

``/discover/movie`` serves at most 500 pages (10,000 results) per query, so the release-date
range is split into windows, recursively, until every window fits. Each finished window is
checkpointed under ``data/cache/tmdb/<query hash>/`` (outside every DVC output, because
``dvc repro`` deletes a stage's outputs before running it), so a killed pull resumes without
refetching finished windows. The movies come out in a deterministic order whatever the
timing of requests, retries and faults.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TmdbGenresError
from ..params import FetchParams

ENV_TOKEN = "TMDB_API_TOKEN"
ENV_KEY = "TMDB_API_KEY"
ENV_BASE = "TMDB_API_BASE"
DEFAULT_BASE = "https://api.themoviedb.org/3"
TOKEN_URL = "https://www.themoviedb.org/settings/api"
CACHE_ROOT = Path("data/cache/tmdb")
MAX_PAGES = 500
PAGE_SIZE = 20
MAX_RESULTS = MAX_PAGES * PAGE_SIZE
SORT_BY = "primary_release_date.asc"  # stable over time, unlike popularity
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0
CHECKPOINT_VERSION = 1


class ApiError(TmdbGenresError):
    """The TMDB API could not be used (bad credentials, unreachable, or a bad answer)."""


@dataclass(frozen=True)
class Credentials:
    """Where to reach TMDB and how to authenticate; ``repr`` never shows the secret."""

    base: str
    variable: str
    secret: str = field(repr=False)

    def auth(self) -> tuple[dict[str, str], dict[str, str]]:
        """``(headers, query params)`` carrying the secret."""
        if self.variable == ENV_TOKEN:
            return {"Authorization": f"Bearer {self.secret}"}, {}
        return {}, {"api_key": self.secret}


def credentials_from_env(env: dict[str, str] | None = None) -> Credentials:
    """Read ``TMDB_API_TOKEN`` / ``TMDB_API_KEY`` / ``TMDB_API_BASE``; fail in one line."""
    env = dict(os.environ if env is None else env)
    base = (env.get(ENV_BASE) or DEFAULT_BASE).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ApiError(f"{ENV_BASE} must be an http(s) URL, got {base!r}",
                       f"unset it to use {DEFAULT_BASE} or point it at the API root")
    for variable in (ENV_TOKEN, ENV_KEY):
        secret = (env.get(variable) or "").strip()
        if secret:
            return Credentials(base, variable, secret)
    raise ApiError(f"fetch.source is tmdb but neither {ENV_TOKEN} nor {ENV_KEY} is set",
                   f"get a read access token at {TOKEN_URL} and export {ENV_TOKEN}=<token> "
                   "(or start `tmdb-genres emulator` to try without one)")


@dataclass
class ClientStats:
    """Requests made and retries, by kind of failure (thread-safe through ``lock``)."""

    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class RateLimiter:
    """Spaces request starts at least ``1/rate`` seconds apart across threads (0: off)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until this thread may start a request."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class TransientFailure(Exception):
    """A request kept failing in a retryable way until the retry budget ran out."""

    def __init__(self, kind: str, attempts: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.attempts = attempts


class TmdbClient:
    """GET JSON from the TMDB API with rate limiting, retries, backoff and Retry-After."""

    def __init__(self, credentials: Credentials, *, requests_per_second: float = 20.0,
                 timeout: float = 10.0, max_retries: int = 6, seed: int = 0,
                 backoff_base: float = BACKOFF_BASE) -> None:
        self.credentials = credentials
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.limiter = RateLimiter(requests_per_second)
        self.stats = ClientStats()
        self._rng = random.Random(seed)
        self._local = threading.local()

    def _session(self) -> Any:
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers["Accept"] = "application/json"
        return session

    def _backoff(self, attempt: int) -> float:
        with self.stats.lock:
            jitter = 0.5 + self._rng.random()
        return min(BACKOFF_CAP, self.backoff_base * 2**attempt) * jitter

    def get(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """GET ``path`` and return its JSON body; retry transient failures, then raise."""
        import requests

        headers, auth_params = self.credentials.auth()
        url = f"{self.credentials.base}/{path.lstrip('/')}"
        query = {**(params or {}), **auth_params}
        for attempt in range(self.max_retries + 1):
            self.limiter.acquire()
            with self.stats.lock:
                self.stats.requests += 1
            wait = None
            try:
                response = self._session().get(url, params=query, headers=headers,
                                               timeout=self.timeout)
                status = response.status_code
                if status == 200:
                    body = response.json()
                    if isinstance(body, dict):
                        return body
                    kind = "bad_json"
                elif status == 401:
                    raise _auth_error(self.credentials)
                elif status == 429:
                    kind = "http_429"
                    wait = _retry_after(response.headers.get("Retry-After"))
                elif status >= 500:
                    kind = f"http_{status}"
                else:
                    raise ApiError(f"TMDB API answered {status} to {path}: "
                                   f"{_status_message(response)}",
                                   "check the fetch query keys in params.yaml")
            except requests.Timeout:
                kind = "timeout"
            except requests.ConnectionError:
                kind = "connection"
            except (requests.RequestException, ValueError):
                kind = "truncated"  # a body cut short, or JSON that does not parse
            with self.stats.lock:
                self.stats.retries[kind] += 1
            if attempt == self.max_retries:
                raise TransientFailure(kind, attempt + 1)
            time.sleep(wait if wait is not None else self._backoff(attempt))
        raise AssertionError("unreachable")


def _retry_after(value: str | None) -> float | None:
    try:
        return min(RETRY_AFTER_CAP, max(0.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _status_message(response: Any) -> str:
    try:
        return str(response.json().get("status_message") or response.reason)
    except ValueError:
        return str(response.reason)


def _auth_error(credentials: Credentials) -> ApiError:
    return ApiError(f"the TMDB API at {credentials.base} rejected the credentials in "
                    f"{credentials.variable} (401 Invalid API key)",
                    f"get a valid read access token at {TOKEN_URL} and export "
                    f"{ENV_TOKEN}=<token>")


@dataclass(frozen=True, order=True)
class Window:
    """One ``/discover/movie`` query: a language (or all) and an inclusive date range."""

    language: str
    gte: str
    lte: str

    @property
    def key(self) -> str:
        """A file-name-safe identifier."""
        return f"{self.language or 'all'}_{self.gte}_{self.lte}"

    def query(self, min_vote_count: int) -> dict[str, Any]:
        """Discover parameters of this window (without the page)."""
        query: dict[str, Any] = {
            "sort_by": SORT_BY,
            "primary_release_date.gte": self.gte,
            "primary_release_date.lte": self.lte,
            "include_adult": "false",
            "include_video": "false",
        }
        if self.language:
            query["with_original_language"] = self.language
        if min_vote_count:
            query["vote_count.gte"] = min_vote_count
        return query

    def halves(self) -> tuple[Window, Window]:
        """Split the date range in two (the window spans at least two days)."""
        lo, hi = dt.date.fromisoformat(self.gte), dt.date.fromisoformat(self.lte)
        mid = lo + (hi - lo) // 2
        return (Window(self.language, self.gte, mid.isoformat()),
                Window(self.language, (mid + dt.timedelta(days=1)).isoformat(), self.lte))


def cache_dir_for(params: FetchParams, base: str, root: Path = CACHE_ROOT) -> Path:
    """The checkpoint directory of one pull: a hash of the API root and the query."""
    key = json.dumps({"base": base, "query": params.query(), "sort_by": SORT_BY,
                      "version": CHECKPOINT_VERSION}, sort_keys=True)
    return root / hashlib.sha256(key.encode()).hexdigest()[:16]


def _ensure_cache_root(root: Path) -> None:
    """Create the cache root and make git ignore it (DVC never looks there)."""
    root.mkdir(parents=True, exist_ok=True)
    top = root.parent if root.name == "tmdb" else root
    ignore = top / ".gitignore"
    if not ignore.exists():
        from ..io import atomic_text

        with atomic_text(ignore) as handle:
            handle.write("# checkpoints of live TMDB pulls; never committed\n*\n")


class Pull:
    """One resumable pull of a query, window by window, with checkpoints."""

    def __init__(self, client: TmdbClient, params: FetchParams, cache_dir: Path,
                 progress: bool = True) -> None:
        self.client = client
        self.params = params
        self.cache_dir = cache_dir
        self.progress = progress
        self.windows_done = 0
        self.windows_resumed = 0
        self.movies_so_far = 0
        self.split_count = 0
        self.shortfall = 0
        self._bar: Any = None

    # -- checkpoints -------------------------------------------------------------------
    def _checkpoint(self, window: Window) -> Path:
        return self.cache_dir / "windows" / f"{window.key}.json"

    def _split_marker(self, window: Window) -> Path:
        return self.cache_dir / "splits" / f"{window.key}"

    def _load(self, window: Window) -> list[dict[str, Any]] | None:
        path = self._checkpoint(window)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return list(data["results"])
        except (ValueError, KeyError, TypeError):
            return None  # a damaged checkpoint is refetched

    def _save(self, window: Window, total: int, results: list[dict[str, Any]]) -> None:
        from ..io import write_json

        write_json(self._checkpoint(window),
                   {"window": window.key, "total_results": total, "results": results})

    # -- fetching ----------------------------------------------------------------------
    def _page(self, window: Window, page: int) -> dict[str, Any]:
        try:
            body = self.client.get("discover/movie",
                                   {**window.query(self.params.min_vote_count), "page": page})
        except TransientFailure as failure:
            raise self._failed(failure, window, page) from None
        if self._bar is not None:
            self._bar.update(1)
        return body

    def _failed(self, failure: TransientFailure, window: Window, page: int) -> ApiError:
        what = {"connection": "cannot connect to", "timeout": "timed out talking to"}.get(
            failure.kind, f"kept failing ({failure.kind}) at")
        return ApiError(
            f"{what} the TMDB API at {self.client.credentials.base} after "
            f"{failure.attempts} attempts (window {window.key}, page {page}); fetched so far: "
            f"{self.windows_done} windows, {self.movies_so_far} movies, checkpointed in "
            f"{self.cache_dir}",
            "rerun to resume from the checkpoints; check the network or TMDB_API_BASE, "
            "or raise fetch.max_retries",
        )

    def _fetch_window(self, window: Window, executor: Any) -> list[dict[str, Any]] | None:
        """Results of one window, or ``None`` when it had to be split."""
        first = self._page(window, 1)
        total = int(first.get("total_results") or 0)
        if total > MAX_RESULTS:
            if window.gte == window.lte:
                raise ApiError(
                    f"{total} movies were released on {window.gte} alone, over TMDB's "
                    f"{MAX_RESULTS}-result cap per query",
                    "narrow the query (fetch.languages or fetch.min_vote_count)")
            return None
        pages = min(int(first.get("total_pages") or 1), MAX_PAGES)
        if self._bar is not None and pages > 1:
            self._bar.total = (self._bar.total or 0) + pages - 1
            self._bar.refresh()
        bodies = [first, *executor.map(lambda p: self._page(window, p), range(2, pages + 1))]
        results = [movie for body in bodies for movie in body.get("results") or []]
        unique = len({m.get("id") for m in results if isinstance(m, dict)})
        self.shortfall += max(0, min(total, MAX_RESULTS) - unique)
        self._save(window, total, results)
        return results

    def _window(self, window: Window, executor: Any) -> Iterator[list[dict[str, Any]]]:
        results = self._load(window)
        if results is not None:
            self.windows_resumed += 1
        elif not self._split_marker(window).exists():
            results = self._fetch_window(window, executor)
            if results is None:
                marker = self._split_marker(window)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
        if results is None:
            self.split_count += 1
            for half in window.halves():
                yield from self._window(half, executor)
            return
        self.windows_done += 1
        self.movies_so_far += len(results)
        yield results

    def genres(self) -> list[dict[str, Any]]:
        """``/genre/movie/list`` (also the credentials check before any paging)."""
        try:
            body = self.client.get("genre/movie/list", {"language": "en-US"})
        except TransientFailure as failure:
            raise self._failed(failure, Window("", "-", "-"), 0) from None
        return list(body.get("genres") or [])

    def run(self) -> Iterator[dict[str, Any]]:
        """Yield raw movie objects in (language, release window, page) order."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        _ensure_cache_root(self.cache_dir.parent)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        languages = self.params.languages or ("",)
        limit = self.params.max_movies
        seen: set[Any] = set()
        executor = ThreadPoolExecutor(self.params.concurrency, thread_name_prefix="tmdb")
        bar = tqdm(total=0, unit="page", desc="tmdb", file=sys.stderr,
                   disable=not self.progress, leave=False)
        self._bar = bar
        try:
            for language in languages:
                root = Window(language, self.params.release_date_gte,
                              self.params.release_date_lte)
                for results in self._window(root, executor):
                    for movie in results:
                        if limit is not None and len(seen) >= limit:
                            return
                        seen.add(movie.get("id") if isinstance(movie, dict) else None)
                        yield movie
        finally:
            # On failure, queued pages are dropped rather than fetched for nothing.
            executor.shutdown(wait=True, cancel_futures=True)
            bar.close()
            self._bar = None


def read_tmdb_source(params: FetchParams, report: Any, progress: bool | None = None,
                     env: dict[str, str] | None = None) -> Iterator[Any]:
    """Yield raw movie objects from the live API; fill ``report.manifest`` when done."""
    credentials = credentials_from_env(env)
    client = TmdbClient(credentials, requests_per_second=params.requests_per_second,
                        timeout=params.timeout_seconds, max_retries=params.max_retries)
    cache_dir = cache_dir_for(params, credentials.base)
    pull = Pull(client, params, cache_dir,
                progress=sys.stderr.isatty() if progress is None else progress)
    genres = pull.genres()
    from ..genres import TMDB_GENRES

    unknown = sorted({g.get("id") for g in genres} - set(TMDB_GENRES), key=str)
    for movie in pull.run():
        report.rows_read += 1
        yield movie
    manifest = {
        "source_kind": "tmdb",
        "api_base": credentials.base,
        "auth_variable": credentials.variable,
        "snapshot": params.snapshot,
        "query": params.query(),
        "sort_by": SORT_BY,
        "checkpoints": str(cache_dir),
        "windows": pull.windows_done,
        "windows_resumed": pull.windows_resumed,
        "window_splits": pull.split_count,
        "requests": client.stats.requests,
        "retries": sum(client.stats.retries.values()),
        "retries_by_kind": dict(sorted(client.stats.retries.items())),
        "results_short_of_total": pull.shortfall,
        "unknown_genre_ids": unknown,
        "fetched_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
    from ..io import write_json

    write_json(cache_dir / "manifest.json", manifest)
    report.manifest.update(manifest)

