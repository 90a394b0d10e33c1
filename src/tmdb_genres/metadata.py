"""What TMDB says about a movie besides its text, as a small block of one-hot features.

The raw fields (:data:`movie.METADATA_FIELDS`) become one-hot *features*, each with its own
``unknown`` column:

- ``language``: ``original_language``, one column per code with at least
  ``language_min_movies`` training movies, ``other`` for the rest;
- ``decade``: the decade of ``release_date`` (any text with a four-digit year, or a year as a
  number), clamped to the decades seen in training;
- ``vote_count`` / ``popularity``: the band ``floor(log2(1 + value))``, clamped to the
  training range;
- ``vote_average``: the band ``floor(value)`` (0..10).

Every active column has the value ``weight``. The encoder is fitted on the training split
only and holds only plain lists and numbers, so it pickles deterministically and travels as
JSON in a published folder.

Parsing is lenient: a missing field, ``None``, a malformed value (a date like ``"2013"`` is
read as the year 2013; ``"abc"`` is unknown), an unknown language code, a negative or
non-numeric count all give a valid encoding, never an error. Text-only callers pass nothing
and get every feature's ``unknown`` column. Training learns what ``unknown`` means because a
seeded share of training movies (chosen by a hash of their id) have their metadata removed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .idhash import unit_hash
from .movie import METADATA_FIELDS
from .numeric import settle
from .params import METADATA_FEATURES

if TYPE_CHECKING:
    import scipy.sparse as sp

    from .params import MetadataParams

# The encoded features (params.METADATA_FEATURES) and the raw field each reads: feature i
# reads field i of movie.METADATA_FIELDS.
FEATURES = dict(zip(METADATA_FEATURES, METADATA_FIELDS, strict=True))
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_LANGUAGE = re.compile(r"[a-z]{2,3}")
MIN_YEAR, MAX_YEAR = 1850, 2100  # a year outside is taken as malformed


def parse_language(value: Any) -> str | None:
    """A lowercased ISO 639 code, or None for anything that is not one."""
    if not isinstance(value, str):
        return None
    code = value.strip().lower()
    return code if _LANGUAGE.fullmatch(code) else None


def parse_year(value: Any) -> int | None:
    """The year of a release date (``2013-05-01``, ``2013``, ``01/05/2013``, 2013), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        year = int(value) if math.isfinite(value) and value == int(value) else None
    elif isinstance(value, str):
        found = _YEAR.search(value[:64])
        year = int(found.group(1)) if found else None
    elif hasattr(value, "year"):  # a date or datetime
        year = int(value.year)
    else:
        year = None
    return year if year is not None and MIN_YEAR <= year <= MAX_YEAR else None


def parse_number(value: Any) -> float | None:
    """A finite number >= 0 (a number or a numeric string), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip()[:64])
        except ValueError:
            return None
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _log2_band(value: float | None) -> int | None:
    return None if value is None else math.floor(math.log2(1.0 + value))


def _bands(feature: str, value: Any) -> int | str | None:
    """The raw band of one feature's value before clamping (None: unknown)."""
    if feature == "language":
        return parse_language(value)
    if feature == "decade":
        year = parse_year(value)
        return None if year is None else year // 10 * 10
    number = parse_number(value)
    if feature == "vote_average":
        return None if number is None else math.floor(min(number, 10.0))
    return _log2_band(number)


@dataclass(frozen=True)
class MetadataEncoder:
    """The fitted one-hot encoding (plain data): ``levels[feature]`` are the known values of
    each feature in column order (after its ``unknown`` column; languages end with
    ``other``), ``weight`` the value of an active column."""

    features: tuple[str, ...]
    levels: dict[str, list[Any]]
    weight: float

    @classmethod
    def fit(cls, params: MetadataParams, metadata: Sequence[Mapping[str, Any] | None]
            ) -> MetadataEncoder:
        """Learn the levels from the training movies' metadata (never other splits)."""
        levels: dict[str, list[Any]] = {}
        for feature in params.features:
            seen = [_bands(feature, (m or {}).get(FEATURES[feature])) for m in metadata]
            known = [v for v in seen if v is not None]
            if feature == "language":
                counts = Counter(known)
                common = sorted(c for c, n in counts.items() if n >= params.language_min_movies)
                levels[feature] = [*common, "other"]
            elif known:
                step = 10 if feature == "decade" else 1
                low, high = (0, 10) if feature == "vote_average" else (min(known), max(known))
                levels[feature] = list(range(low, high + 1, step))
            else:
                levels[feature] = []
        return cls(tuple(params.features), levels, settle(params.weight))

    @property
    def names(self) -> list[str]:
        """Column names, ``feature=level``, in column order."""
        return [f"{feature}={level}" for feature in self.features
                for level in ["unknown", *self.levels[feature]]]

    def columns(self, metadata: Mapping[str, Any] | None) -> list[int]:
        """The active columns (one per feature, ascending) of one movie's raw metadata."""
        found, offset = [], 0
        metadata = metadata if isinstance(metadata, Mapping) else {}
        for feature in self.features:
            levels = self.levels[feature]
            band = _bands(feature, metadata.get(FEATURES[feature]))
            if band is None or not levels:
                index = 0
            elif feature == "language":
                index = 1 + (levels.index(band) if band in levels else len(levels) - 1)
            else:
                index = 1 + (min(max(band, levels[0]), levels[-1]) - levels[0]) // (
                    10 if feature == "decade" else 1)
            found.append(offset + index)
            offset += 1 + len(levels)
        return found

    def transform(self, n: int, metadata: Sequence[Mapping[str, Any] | None] | None = None
                  ) -> sp.csr_matrix:
        """The (n x columns) float32 block of ``n`` movies; no ``metadata`` is all unknown."""
        import scipy.sparse as sp

        if metadata is not None and len(metadata) != n:
            raise ValueError(f"{len(metadata)} metadata rows for {n} texts")
        k = len(self.features)
        if metadata is None:
            unknown = self.columns(None)
            columns = np.tile(np.array(unknown, dtype=np.int64), n)
        else:
            columns = np.array([c for m in metadata for c in self.columns(m)], dtype=np.int64)
        data = np.full(n * k, self.weight, dtype=np.float32)
        indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        return sp.csr_matrix((data, columns, indptr), shape=(n, len(self.names)))

    def to_json(self) -> dict[str, Any]:
        """The encoder as JSON-able data (for a published folder)."""
        return {"features": list(self.features), "levels": self.levels, "weight": self.weight}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MetadataEncoder:
        """The encoder :meth:`to_json` described."""
        features = tuple(str(f) for f in data["features"])
        unknown = [f for f in features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown metadata feature {unknown[0]!r}")
        return cls(features, {f: list(data["levels"][f]) for f in features},
                   float(data["weight"]))


def training_metadata(params: MetadataParams, ids: Sequence[int],
                      metadata: Sequence[Mapping[str, Any] | None]
                      ) -> list[Mapping[str, Any] | None]:
    """The training movies' metadata as training sees it: a share ``drop_rate`` of movies
    (by a seeded hash of the id) lose every field, and of the rest each field is lost with
    probability ``field_drop_rate``, so the model learns to predict without them."""
    seen: list[Mapping[str, Any] | None] = []
    for movie_id, fields in zip(ids, metadata, strict=True):
        if unit_hash(f"{params.seed}:{movie_id}") < params.drop_rate:
            seen.append(None)
            continue
        kept = dict(fields or {})
        for name in METADATA_FIELDS:
            if unit_hash(f"{params.seed}:{movie_id}:{name}") < params.field_drop_rate:
                kept.pop(name, None)
        seen.append(kept)
    return seen
