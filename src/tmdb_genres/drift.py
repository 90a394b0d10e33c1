"""Data drift between two raw snapshots: movies added and removed, and the genre distribution.

Pure functions over lists of TMDB movie objects (as ``data/raw/movies.jsonl`` holds them), so
the refresh command and the tests share one computation. A genre's *share* is the fraction of
the snapshot's movies that carry it (a movie has several genres, so shares do not sum to 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .genres import TMDB_GENRES

SHARE_DIGITS = 4  # shares are rounded before they are compared or written


@dataclass(frozen=True)
class GenreShift:
    """One genre's count and share of movies before and after."""

    genre: str
    count_before: int
    count_after: int
    share_before: float
    share_after: float

    @property
    def shift(self) -> float:
        """Change of the share, in fractions of the snapshot (0.01 is one percentage point)."""
        return round(self.share_after - self.share_before, SHARE_DIGITS)


@dataclass(frozen=True)
class SnapshotDrift:
    """What changed between the previous snapshot and the new one."""

    movies_before: int
    movies_after: int
    added: tuple[int, ...]  # TMDB ids, sorted
    removed: tuple[int, ...]
    genres: tuple[GenreShift, ...]  # largest absolute shift first

    @property
    def unchanged(self) -> bool:
        """True when both snapshots hold the same movie ids."""
        return not self.added and not self.removed


def movie_ids(movies: Iterable[Mapping[str, Any]]) -> set[int]:
    """The TMDB ids of ``movies``."""
    return {int(m["id"]) for m in movies}


def genre_counts(movies: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """How many movies carry each known genre (unknown genre ids are ignored)."""
    counts: Counter[str] = Counter()
    for movie in movies:
        names = {TMDB_GENRES[g] for g in movie.get("genre_ids") or () if g in TMDB_GENRES}
        counts.update(names)
    return counts


def _share(count: int, total: int) -> float:
    return round(count / total, SHARE_DIGITS) if total else 0.0


def genre_shifts(before: Sequence[Mapping[str, Any]],
                 after: Sequence[Mapping[str, Any]]) -> list[GenreShift]:
    """Every genre present in either snapshot, the largest absolute share shift first."""
    old, new = genre_counts(before), genre_counts(after)
    shifts = [GenreShift(g, old[g], new[g], _share(old[g], len(before)), _share(new[g], len(after)))
              for g in sorted(set(old) | set(new))]
    return sorted(shifts, key=lambda s: (-abs(s.shift), -s.count_after, s.genre))


def compare(before: Sequence[Mapping[str, Any]],
            after: Sequence[Mapping[str, Any]]) -> SnapshotDrift:
    """The drift from snapshot ``before`` to snapshot ``after``."""
    old, new = movie_ids(before), movie_ids(after)
    return SnapshotDrift(movies_before=len(before), movies_after=len(after),
                         added=tuple(sorted(new - old)), removed=tuple(sorted(old - new)),
                         genres=tuple(genre_shifts(before, after)))


def newcomers(before: Iterable[Mapping[str, Any]],
              after: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The movies of ``after`` whose id is not in ``before``, in ``after``'s order."""
    old = movie_ids(before)
    return [m for m in after if int(m["id"]) not in old]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _pp(value: float) -> str:
    return f"{100 * value:+.2f} pp"


def render_drift(drift: SnapshotDrift, examples: Sequence[Mapping[str, Any]] = (),
                 limit: int = 5) -> str:
    """Markdown: movies added and removed (with a few titles), then the genre distribution."""
    lines = ["### Data drift", "",
             f"- **movies**: {drift.movies_before:,} → {drift.movies_after:,} "
             f"({drift.movies_after - drift.movies_before:+,})",
             f"- **added**: {len(drift.added):,}", f"- **removed**: {len(drift.removed):,}"]
    if examples:
        shown = ", ".join(f"{m.get('title') or m['id']} ({m.get('release_date') or 'no date'})"
                          for m in examples[:limit])
        more = f", … {len(examples) - limit:,} more" if len(examples) > limit else ""
        lines.append(f"- **newest added**: {shown}{more}")
    lines += ["", "#### Genre distribution (share of movies; largest shifts first)", "",
              "| genre | movies before | movies after | share before | share after | shift |",
              "|:--|--:|--:|--:|--:|--:|"]
    lines += [f"| {g.genre} | {g.count_before:,} | {g.count_after:,} | {_pct(g.share_before)} | "
              f"{_pct(g.share_after)} | {_pp(g.shift)} |" for g in drift.genres]
    return "\n".join(lines)
