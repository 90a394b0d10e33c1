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
import itertools
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
from . import Row

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
CHECKPOINT_VERSION = 2
STALL_PASSES = 5  # repeated passes of one day that add nothing before giving up
MAX_PASSES = 20  # repeated passes of one day at most


class ApiError(TmdbGenresError):
    """The TMDB API could not be used (bad credentials, unreachable, or a bad answer)."""


class IncompletePull(ApiError):
    """A pull collected fewer movies than TMDB counted, even after re-querying."""


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


@dataclass(frozen=True)
class Window:
    """One ``/discover/movie`` query: a language (or all), an inclusive date range and,
    when a single day has to be cut further, an inclusive vote-count range."""

    language: str
    gte: str
    lte: str
    vote_gte: int | None = None
    vote_lte: int | None = None

    @property
    def key(self) -> str:
        """A file-name-safe identifier."""
        key = f"{self.language or 'all'}_{self.gte}_{self.lte}"
        if self.vote_gte is not None or self.vote_lte is not None:
            high = "" if self.vote_lte is None else self.vote_lte
            key += f"_votes{self.vote_gte or 0}-{high}"
        return key

    @property
    def single_day(self) -> bool:
        """Whether the date range is one day (it cannot be halved)."""
        return self.gte == self.lte

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
        min_votes = max(min_vote_count, self.vote_gte or 0)
        if min_votes:
            query["vote_count.gte"] = min_votes
        if self.vote_lte is not None:
            query["vote_count.lte"] = self.vote_lte
        return query

    def halves(self) -> tuple[Window, Window]:
        """Split the date range in two (the window spans at least two days)."""
        lo, hi = dt.date.fromisoformat(self.gte), dt.date.fromisoformat(self.lte)
        mid = lo + (hi - lo) // 2
        return (Window(self.language, self.gte, mid.isoformat(), self.vote_gte, self.vote_lte),
                Window(self.language, (mid + dt.timedelta(days=1)).isoformat(), self.lte,
                       self.vote_gte, self.vote_lte))

    def day(self, date: str) -> Window:
        """The same query restricted to one day of the range."""
        return Window(self.language, date, date, self.vote_gte, self.vote_lte)

    def vote_split(self, at: int) -> tuple[Window, Window]:
        """Split by vote count: ``[.., at]`` and ``[at + 1, ..]``."""
        return (Window(self.language, self.gte, self.lte, self.vote_gte, at),
                Window(self.language, self.gte, self.lte, at + 1, self.vote_lte))


def result_key(obj: Any) -> Any:
    """What makes two results the same movie: the id, or the whole object if it has none."""
    if isinstance(obj, dict):
        movie_id = obj.get("id")
        if isinstance(movie_id, int) and not isinstance(movie_id, bool):
            return movie_id
    return json.dumps(obj, sort_keys=True, default=str)


def _date(obj: Any) -> str | None:
    value = obj.get("release_date") if isinstance(obj, dict) else None
    return value if isinstance(value, str) and value else None


def tie_dates(pages: list[list[Row]]) -> tuple[list[str], list[str]]:
    """Dates to re-query one by one after a pass that came up short: ``(repeated, tied)``.

    ``repeated``: dates of movies that came back on more than one page. Where the server
    reorders ties on every request, a tied movie that slips from one page to the next is
    served twice and another of that date is not served at all, so these days hold the
    missing movies. ``tied``: the other dates shared by the last result of a page and the
    first of the next (ties across a page boundary, where a loss is possible).
    """
    seen: dict[Any, int] = {}
    repeated: set[str] = set()
    for number, page in enumerate(pages):
        for row in page:
            key = result_key(row.obj)
            if seen.setdefault(key, number) != number and _date(row.obj):
                repeated.add(_date(row.obj) or "")
    tied: set[str] = set()
    for before, after in itertools.pairwise(pages):
        last = [d for d in map(_date, (r.obj for r in before)) if d]
        first = [d for d in map(_date, (r.obj for r in after)) if d]
        if last and first and max(last) == min(first):
            tied.add(max(last))
    return sorted(repeated), sorted(tied - repeated)


@dataclass
class WindowRecord:
    """Completeness of one window: what TMDB counted, what was collected, what was re-queried."""

    window: str
    expected: int = 0
    collected: int = 0
    tie_day_queries: int = 0
    halvings: int = 0
    vote_splits: int = 0
    repeat_passes: int = 0

    @property
    def shortfall(self) -> int:
        """Movies TMDB counted in the window that no query returned."""
        return max(0, self.expected - self.collected)

    def as_dict(self) -> dict[str, Any]:
        """The record as the manifest and the checkpoint hold it."""
        return {"window": self.window, "expected": self.expected,
                "collected": self.collected, "shortfall": self.shortfall,
                "requeries": {"tie_days": self.tie_day_queries, "halvings": self.halvings,
                              "vote_splits": self.vote_splits,
                              "repeat_passes": self.repeat_passes}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowRecord:
        """Read a record back from a checkpoint."""
        again = data["requeries"]
        return cls(str(data["window"]), int(data["expected"]), int(data["collected"]),
                   int(again["tie_days"]), int(again["halvings"]), int(again["vote_splits"]),
                   int(again["repeat_passes"]))


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


Found = dict[Any, Row]  # result key -> the first place it was seen


class Pull:
    """One resumable pull of a query, window by window, with checkpoints.

    A window is complete when the distinct results collected reach its ``total_results``.
    When a pass over its pages comes up short, the pull re-queries, cheapest first: the
    single days whose movies came back twice or tied across a page boundary, then the two
    halves of the date range (recursively, each checked against its own total); a single
    day is cut by vote count, and finally paged again until the union stops growing.
    """

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
        self.records: list[WindowRecord] = []
        self._bar: Any = None

    # -- checkpoints -------------------------------------------------------------------
    def _checkpoint(self, window: Window) -> Path:
        return self.cache_dir / "windows" / f"{window.key}.json"

    def _split_marker(self, window: Window) -> Path:
        return self.cache_dir / "splits" / f"{window.key}"

    def _load(self, window: Window) -> tuple[WindowRecord, list[Row]] | None:
        path = self._checkpoint(window)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = [Row(dict(where), obj) for where, obj in data["results"]]
            return WindowRecord.from_dict(data["record"]), rows
        except (ValueError, KeyError, TypeError):
            return None  # a damaged checkpoint is refetched

    def _save(self, window: Window, record: WindowRecord, rows: list[Row]) -> None:
        from ..io import write_json

        write_json(self._checkpoint(window),
                   {"window": window.key, "record": record.as_dict(),
                    "results": [[row.where, row.obj] for row in rows]})

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

    def _grow_bar(self, pages: int) -> None:
        if self._bar is not None and pages:
            self._bar.total = (self._bar.total or 0) + pages
            self._bar.refresh()

    def _pass(self, window: Window, first: dict[str, Any], executor: Any,
              ) -> tuple[int, list[list[Row]]]:
        """Every page of ``window`` (``first`` is page 1): ``(total_results, rows by page)``."""
        total = int(first.get("total_results") or 0)
        pages = min(int(first.get("total_pages") or 1), MAX_PAGES)
        self._grow_bar(pages - 1)
        bodies = [first, *executor.map(lambda p: self._page(window, p), range(2, pages + 1))]
        return total, [
            [Row({"window": window.key, "page": number, "position": position}, obj)
             for position, obj in enumerate(body.get("results") or [], start=1)]
            for number, body in enumerate(bodies, start=1)
        ]

    def _first_pages(self, windows: list[Window], executor: Any) -> list[dict[str, Any]]:
        self._grow_bar(len(windows))
        return list(executor.map(lambda w: self._page(w, 1), windows))

    def _complete(self, window: Window, first: dict[str, Any], executor: Any,
                  record: WindowRecord) -> tuple[int, Found]:
        """Collect ``window`` until its distinct results reach its total (or no query helps)."""
        total, pages = self._pass(window, first, executor)
        found: Found = {}
        for page in pages:
            for row in page:
                found.setdefault(result_key(row.obj), row)
        if len(found) >= total:
            return total, found

        def merge(windows: list[Window]) -> None:
            for sub, body in zip(windows, self._first_pages(windows, executor), strict=True):
                for key, row in self._complete(sub, body, executor, record)[1].items():
                    found.setdefault(key, row)

        if not window.single_day:
            for days in tie_dates(pages):
                if len(found) < total and days:
                    record.tie_day_queries += len(days)
                    merge([window.day(d) for d in days])
            if len(found) < total:
                record.halvings += 1
                merge(list(window.halves()))
            return total, found
        votes = sorted({row.obj["vote_count"] for row in found.values()
                        if isinstance(row.obj, dict) and isinstance(row.obj.get("vote_count"),
                                                                     int)})
        if len(votes) >= 2:  # both sides hold a collected movie: the recursion ends
            record.vote_splits += 1
            merge(list(window.vote_split(votes[(len(votes) - 1) // 2])))
            return total, found
        stalled = passes = 0
        while len(found) < total and stalled < STALL_PASSES and passes < MAX_PASSES:
            passes += 1
            record.repeat_passes += 1
            before = len(found)
            for page in self._pass(window, self._first_pages([window], executor)[0],
                                   executor)[1]:
                for row in page:
                    found.setdefault(result_key(row.obj), row)
            stalled = 0 if len(found) > before else stalled + 1
        return total, found

    def _fetch_window(self, window: Window, executor: Any,
                      ) -> tuple[WindowRecord, list[Row]] | None:
        """Results of one window with its completeness record, or ``None`` when it had to
        be split because it is over TMDB's cap."""
        first = self._page(window, 1)
        total = int(first.get("total_results") or 0)
        if total > MAX_RESULTS:
            if window.single_day:
                raise ApiError(
                    f"{total} movies were released on {window.gte} alone, over TMDB's "
                    f"{MAX_RESULTS}-result cap per query",
                    "narrow the query (fetch.languages or fetch.min_vote_count)")
            return None
        record = WindowRecord(window.key)
        record.expected, found = self._complete(window, first, executor, record)
        record.collected = len(found)
        rows = list(found.values())
        if not record.shortfall or self.params.allow_incomplete:
            self._save(window, record, rows)  # a short window is retried by the next run
        return record, rows

    def _window(self, window: Window, executor: Any,
                ) -> Iterator[tuple[WindowRecord, list[Row]]]:
        done = self._load(window)
        if done is not None:
            self.windows_resumed += 1
        elif not self._split_marker(window).exists():
            done = self._fetch_window(window, executor)
            if done is None:
                marker = self._split_marker(window)
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
        if done is None:
            self.split_count += 1
            for half in window.halves():
                yield from self._window(half, executor)
            return
        self.windows_done += 1
        self.movies_so_far += len(done[1])
        yield done

    def genres(self) -> list[dict[str, Any]]:
        """``/genre/movie/list`` (also the credentials check before any paging)."""
        try:
            body = self.client.get("genre/movie/list", {"language": "en-US"})
        except TransientFailure as failure:
            raise self._failed(failure, Window("", "-", "-"), 0) from None
        return list(body.get("genres") or [])

    def run(self) -> Iterator[Row]:
        """Yield each result once (by id), window by window, with where it was found."""
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
                for record, rows in self._window(root, executor):
                    self.records.append(record)
                    for row in rows:
                        if limit is not None:  # the only set that grows with the pull
                            if len(seen) >= limit:
                                return
                            seen.add(result_key(row.obj))
                        yield row
        finally:
            # On failure, queued pages are dropped rather than fetched for nothing.
            executor.shutdown(wait=True, cancel_futures=True)
            bar.close()
            self._bar = None

    def completeness(self) -> dict[str, Any]:
        """Expected vs collected over the windows pulled, and what was re-queried."""
        expected = sum(r.expected for r in self.records)
        collected = sum(r.collected for r in self.records)
        shortfall = sum(r.shortfall for r in self.records)
        return {
            "complete": shortfall == 0,
            "expected": expected,
            "collected": collected,
            "shortfall": shortfall,
            "windows_short": sum(1 for r in self.records if r.shortfall),
            "requeries": {
                "tie_days": sum(r.tie_day_queries for r in self.records),
                "halvings": sum(r.halvings for r in self.records),
                "vote_splits": sum(r.vote_splits for r in self.records),
                "repeat_passes": sum(r.repeat_passes for r in self.records),
            },
        }


def read_tmdb_source(params: FetchParams, report: Any, progress: bool | None = None,
                     env: dict[str, str] | None = None) -> Iterator[Row]:
    """Yield raw movie objects (with where each was found) from the live API; fill
    ``report.manifest`` and ``report.completeness`` when done.

    A pull that collected fewer movies than TMDB counted fails in one line, unless
    ``fetch.allow_incomplete`` is set: then it warns and the shortfall is recorded.
    """
    started = time.monotonic()
    credentials = credentials_from_env(env)
    client = TmdbClient(credentials, requests_per_second=params.requests_per_second,
                        timeout=params.timeout_seconds, max_retries=params.max_retries)
    cache_dir = cache_dir_for(params, credentials.base)
    pull = Pull(client, params, cache_dir,
                progress=sys.stderr.isatty() if progress is None else progress)
    genres = pull.genres()
    from ..genres import TMDB_GENRES

    unknown = sorted({g.get("id") for g in genres} - set(TMDB_GENRES), key=str)
    for row in pull.run():
        report.rows_read += 1
        yield row
    completeness = pull.completeness()
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
        "requests_per_movie": round(client.stats.requests / max(1, completeness["collected"]),
                                    4),
        "seconds": round(time.monotonic() - started, 1),
        "retries": sum(client.stats.retries.values()),
        "retries_by_kind": dict(sorted(client.stats.retries.items())),
        "completeness": completeness,
        "window_completeness": [r.as_dict() for r in sorted(pull.records,
                                                             key=lambda r: r.window)],
        "unknown_genre_ids": unknown,
        "fetched_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
    }
    from ..io import write_json

    write_json(cache_dir / "manifest.json", manifest)
    report.manifest.update(manifest)
    shortfall = completeness["shortfall"]
    if shortfall:
        what = (f"the pull from {credentials.base} is incomplete: {shortfall} of the "
                f"{completeness['expected']} movies TMDB counted were never returned "
                f"({completeness['windows_short']} of {len(pull.records)} windows short after "
                f"re-querying; details in {cache_dir / 'manifest.json'})")
        if not params.allow_incomplete:
            raise IncompletePull(
                what, "rerun to retry the short windows, or set fetch.allow_incomplete: true "
                      "in params.yaml to keep the pull and record the shortfall")
        print(f"tmdb-genres fetch: warning: {what}; kept because fetch.allow_incomplete is "
              "true (recorded in the fetch report)", file=sys.stderr)
    report.completeness.update({
        "complete": completeness["complete"], "expected": completeness["expected"],
        "shortfall": shortfall, "allow_incomplete": params.allow_incomplete})
