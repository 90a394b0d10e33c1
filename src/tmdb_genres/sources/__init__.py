"""Ingestion sources: the live TMDB API, CSV exports, and a loopback TMDB emulator."""

from __future__ import annotations

from typing import Any, NamedTuple

CONTENT_CHARS = 200  # how much of a rejected row the rejects file keeps


class Row(NamedTuple):
    """One raw object from a source, and where it was found: ``{"line": n}`` in a file,
    ``{"window": ..., "page": p, "position": i}`` in the live API."""

    where: dict[str, Any]
    obj: Any


def truncate(text: str, limit: int = CONTENT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
