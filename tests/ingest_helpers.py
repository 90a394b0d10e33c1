"""Helpers for the ingestion tests: synthetic movies, an emulator fixture, params files."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tmdb_genres.sources import emulator

TOKEN = "test-token-5ecret"


def synthetic_movies(n: int, start: str = "2000-01-01", days: int = 700) -> list[dict[str, Any]]:
    """``n`` TMDB movie objects spread over ``days`` days from ``start``."""
    first = dt.date.fromisoformat(start)
    return [
        {
            "id": 10 + 3 * i,
            "title": f"Movie {i}",
            "overview": f"Overview {i}",
            "genre_ids": [28, 18] if i % 2 else [35],
            "release_date": (first + dt.timedelta(days=(i * 7919) % days)).isoformat(),
            "original_language": "en" if i % 4 else "fr",
            "popularity": round(1 + (i % 97) / 7, 3),
            "vote_average": round((i % 10) / 1.3, 1),
            "vote_count": i % 50,
        }
        for i in range(n)
    ]


@contextmanager
def running(movies: list[dict[str, Any]], **config: Any) -> Iterator[emulator.EmulatorServer]:
    """An emulator on 127.0.0.1 for the duration of the block."""
    config.setdefault("token", TOKEN)
    config.setdefault("retry_after", 0)
    server, thread = emulator.start(emulator.EmulatorConfig(movies=movies, **config))
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def fetch_params(**overrides: Any) -> dict[str, Any]:
    """A ``fetch`` section for tests: the live API, no rate limit, short timeouts."""
    section: dict[str, Any] = {
        "source": "tmdb",
        "watch": "src/tmdb_genres/sources/tmdb_api.py",
        "snapshot": "test",
        "release_date_gte": "1874-01-01",
        "release_date_lte": "2022-12-31",
        "languages": [],
        "min_vote_count": 0,
        "max_movies": None,
        "requests_per_second": 0,
        "concurrency": 4,
        "timeout_seconds": 0.5,
        "max_retries": 8,
    }
    section.update(overrides)
    return section


def write_params(root: Path, base: dict[str, Any], **fetch_overrides: Any) -> Path:
    """Write ``params.yaml`` under ``root`` with the test fetch section."""
    data = dict(base)
    if "source" in fetch_overrides and "watch" not in fetch_overrides:
        fetch_overrides["watch"] = fetch_overrides["source"]  # a file source watches itself
    data["fetch"] = fetch_params(**fetch_overrides)
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
