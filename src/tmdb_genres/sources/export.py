"""Import of real-world CSV exports of TMDB data (``fetch.source: path.csv`` or ``.csv.gz``).

Exports found in the wild differ from the API: another delimiter (``;``, tab, ``|``), genre
*names* instead of ids, numbers with thousands separators, day-first dates, unnamed trailing
columns and rows broken by unquoted delimiters or line breaks. This module detects the
delimiter, maps the columns it knows by name, converts each row into a TMDB movie object and
skips a row it cannot convert, counting each kind of reject and keeping the row's line number
and offending value for the rejects file -- never silently.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import TmdbGenresError
from ..genres import GENRE_IDS, TMDB_GENRES
from . import Row, truncate

DELIMITERS = (";", ",", "\t", "|")
# canonical field -> header names it may appear under (normalised: lower case, "_" for gaps)
COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "tmdb_id", "movie_id", "tmdbid"),
    "title": ("title", "original_title", "name"),
    "overview": ("overview", "description", "plot", "synopsis"),
    "genres": ("genre_ids", "genres", "genre", "genre_names"),
    "release_date": ("release_date", "primary_release_date", "released", "date"),
    "original_language": ("original_language", "language", "lang"),
    "popularity": ("popularity",),
    "vote_count": ("vote_count", "votes"),
    "vote_average": ("vote_average", "rating", "vote_avg"),
}
REQUIRED = ("title", "overview", "genres")
NUMBERS = {"popularity": float, "vote_count": int, "vote_average": float}
_GENRES_BY_KEY = {re.sub(r"[^a-z]", "", name.lower()): gid for name, gid in GENRE_IDS.items()}
_GENRES_BY_KEY.update({"scifi": 878, "sciencefiction": 878, "tvmovie": 10770})
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y")
_THOUSANDS_INT = re.compile(r"\d{1,3}(?:[.,' \u00a0]\d{3})+")
SYNTHETIC_ID_BASE = 1_000_000_000


class ExportError(TmdbGenresError):
    """The export cannot be imported at all (unreadable, or a required column missing)."""


class RowReject(Exception):
    """One row cannot be imported: ``kind`` for the counts, ``field``/``value`` for the file."""

    def __init__(self, kind: str, field: str = "", value: str = "") -> None:
        super().__init__(kind)
        self.kind, self.field, self.value = kind, field, value


def normalise_header(name: str) -> str:
    """``"Release Date "`` -> ``"release_date"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def detect_delimiter(header_line: str) -> str:
    """The candidate delimiter that splits the header line into the most fields."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    if not counts[best]:
        raise ExportError("cannot detect the export's delimiter from its header line",
                          f"use a CSV separated by one of {' '.join(map(repr, DELIMITERS))}")
    return best


def map_columns(header: list[str]) -> dict[str, int]:
    """Canonical field -> column index, from the header's names (first match wins)."""
    names = [normalise_header(h) for h in header]
    mapping: dict[str, int] = {}
    for canonical, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in names:
                mapping[canonical] = names.index(alias)
                break
    missing = [f for f in REQUIRED if f not in mapping]
    if missing:
        raise ExportError(
            f"the export has no {missing[0]} column (header: {', '.join(header[:12])})",
            f"name the columns {', '.join(REQUIRED)} (aliases: {', '.join(COLUMNS[missing[0]])})")
    return mapping


def parse_number(text: str, kind: type) -> int | float:
    """Parse ``5.083.954`` (-> 5083.954), ``1,234.5``, ``8,3``, ``12 345``; ValueError if not."""
    s = text.strip().replace("\u00a0", "").replace("'", "").replace(" ", "")
    if kind is int:
        if _THOUSANDS_INT.fullmatch(text.strip()):
            s = re.sub(r"\D", "", s)
        if not s.isdigit():
            raise ValueError(text)
        return int(s)
    if "," in s and "." in s:  # the later one is the decimal mark
        thousands = "," if s.rfind(".") > s.rfind(",") else "."
        s = s.replace(thousands, "").replace(",", ".")
    elif s.count(",") > 1:
        s = s.replace(",", "")
    elif s.count(".") > 1:  # exports like mymoviedb write 5083.954 as 5.083.954
        head, _, tail = s.rpartition(".")
        s = head.replace(".", "") + "." + tail
    elif s.count(",") == 1:
        s = s.replace(",", "") if re.fullmatch(r"\d{1,3},\d{3}", s) else s.replace(",", ".")
    if not re.fullmatch(r"-?\d+(?:\.\d+)?", s):
        raise ValueError(text)
    return float(s)


def parse_date(text: str) -> str:
    """A day-first (or ISO) date -> ``YYYY-MM-DD``; ValueError if not a real date."""
    s = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(s, fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(text)


def parse_genres(text: str) -> list[int]:
    """Genre names (``"Action, Science Fiction"``), ids, or a TMDB list of ``{id, name}``."""
    s = text.strip()
    if s.startswith("["):
        try:
            items = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            raise RowReject("bad_genres", "genres", text) from None
        tokens = [str(i.get("name") or i.get("id")) if isinstance(i, dict) else str(i)
                  for i in items]
    else:
        tokens = [t for t in re.split(r"[,|/]", s) if t.strip()]
    ids = []
    for token in tokens:
        token = token.strip()
        if token.isdigit() and int(token) in TMDB_GENRES:
            ids.append(int(token))
            continue
        gid = _GENRES_BY_KEY.get(re.sub(r"[^a-z]", "", token.lower()))
        if gid is None:
            raise RowReject("unknown_genre", "genres", token)
        ids.append(gid)
    return sorted(set(ids))


def synthetic_id(title: str, release_date: str) -> int:
    """A stable id for an export without TMDB ids: above every real TMDB id."""
    digest = hashlib.sha256(f"{title.strip().casefold()}|{release_date}".encode()).hexdigest()
    return SYNTHETIC_ID_BASE + int(digest[:15], 16) % SYNTHETIC_ID_BASE


def convert_row(row: list[str], header: list[str], columns: dict[str, int]) -> dict[str, Any]:
    """One CSV row -> a TMDB movie object, or raise :class:`RowReject`."""
    if len(row) != len(header):
        raise RowReject("wrong_field_count", "", f"{len(row)} fields, header has {len(header)}")
    unnamed = [row[i] for i, name in enumerate(header) if not name.strip() and row[i].strip()]
    if unnamed:
        raise RowReject("shifted_fields", "", unnamed[0])

    def cell(name: str) -> str:
        return row[columns[name]].strip() if name in columns else ""

    title = cell("title")
    if not title:
        raise RowReject("missing_title", "title")
    later = [cell(f) for f in ("genres", *NUMBERS, "original_language") if f in columns]
    if not any(later):
        raise RowReject("truncated_row", "genres", "")
    movie: dict[str, Any] = {"title": title, "overview": cell("overview")}
    if cell("release_date"):
        try:
            movie["release_date"] = parse_date(cell("release_date"))
        except ValueError:
            raise RowReject("bad_release_date", "release_date", cell("release_date")) from None
    if not cell("genres"):
        raise RowReject("missing_genres", "genres")
    movie["genre_ids"] = parse_genres(cell("genres"))
    language = cell("original_language")
    if language:
        if not re.fullmatch(r"[A-Za-z]{2}", language):
            raise RowReject("bad_original_language", "original_language", language)
        movie["original_language"] = language.lower()
    for name, kind in NUMBERS.items():
        if cell(name):
            try:
                movie[name] = parse_number(cell(name), kind)
            except ValueError:
                raise RowReject(f"bad_{name}", name, cell(name)) from None
    if "id" in columns:
        try:
            movie["id"] = int(parse_number(cell("id"), int))
        except ValueError:
            raise RowReject("bad_id", "id", cell("id")) from None
    else:
        movie["id"] = synthetic_id(title, movie.get("release_date", ""))
    return movie


def read_csv_source(path: Path, report: Any) -> Iterator[Row]:
    """Yield TMDB movie objects (with their line numbers) from a CSV(.gz) export; count and
    record rejected rows."""
    from ..io import open_text

    if not path.is_file():
        raise ExportError(f"fetch source {str(path)!r} does not exist or is not a file",
                          "set fetch.source in params.yaml to an existing CSV export")
    try:
        with open_text(path) as handle:
            header_line = handle.readline()
            delimiter = detect_delimiter(header_line)
            header = next(csv.reader([header_line], delimiter=delimiter))
            columns = map_columns(header)
            report.manifest.update({
                "delimiter": delimiter,
                "columns": {f: header[i] for f, i in sorted(columns.items())},
                "synthetic_ids": "id" not in columns,
            })
            reader = csv.reader(handle, delimiter=delimiter)
            for row in reader:
                if not any(c.strip() for c in row):
                    continue
                report.rows_read += 1
                line = reader.line_num + 1  # the header was line 1
                try:
                    yield Row({"line": line}, convert_row(row, header, columns))
                except RowReject as reject:
                    report.reject(
                        {"line": line}, reject.kind, delimiter.join(row), field=reject.field,
                        value=truncate(reject.value),
                        title=truncate(row[columns["title"]]) if len(row) > columns["title"]
                        else "")
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise ExportError(f"cannot read the export {str(path)!r}: {exc}",
                          "check that it is a complete UTF-8 CSV file (optionally gzipped)"
                          ) from None
