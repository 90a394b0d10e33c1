"""Stage 1, fetch: turn a source into the canonical raw snapshot ``data/raw/movies.jsonl``.

A source is read into TMDB movie objects; each is schema-checked, rows that fail are counted
by kind (never silently dropped), duplicate ids are removed (the first occurrence wins) and
the result is written sorted by id, one canonical JSON object a line, so that equal data
always gives equal bytes.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import TmdbGenresError
from .io import open_text, write_json, write_jsonl
from .params import FetchParams, load_params
from .sources import Row, truncate

# Fields of a TMDB /discover/movie result that the snapshot keeps, with their JSON types.
REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": int,
    "title": str,
    "overview": str,
    "genre_ids": list,
}
OPTIONAL_FIELDS: dict[str, type | tuple[type, ...]] = {
    "release_date": str,
    "original_language": str,
    "popularity": (int, float),
    "vote_average": (int, float),
    "vote_count": int,
}


class SourceError(TmdbGenresError):
    """The fetch source is missing, unreadable or unusable."""


@dataclass
class FetchReport:
    """What a fetch read, kept and rejected (by kind)."""

    source_kind: str
    rows_read: int = 0
    movies: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    # Live pulls only: expected vs collected (written to metrics/fetch.json when set).
    completeness: dict[str, Any] = field(default_factory=dict)
    # Filled by the source readers; written beside the snapshot/report, not in as_dict().
    manifest: dict[str, Any] = field(default_factory=dict, repr=False)
    reject_rows: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def reject(self, where: dict[str, Any], reason: str, content: str,
               **details: Any) -> None:
        """Count a rejected row and keep its trace: where, why and (truncated) what."""
        self.rejected[reason] += 1
        self.reject_rows.append({**where, "reason": reason, **details,
                                 "content": truncate(content)})

    def as_dict(self) -> dict[str, Any]:
        """The report as written to ``metrics/fetch.json``."""
        report = {
            "source_kind": self.source_kind,
            "rows_read": self.rows_read,
            "movies": self.movies,
            "duplicates": self.duplicates,
            "rejected": dict(sorted(self.rejected.items())),
            "rejected_total": sum(self.rejected.values()),
        }
        if self.completeness:
            report["completeness"] = dict(sorted(self.completeness.items()))
        return report


def check_movie(obj: Any) -> tuple[dict[str, Any] | None, str | None]:
    """Validate one TMDB movie object; return ``(movie, None)`` or ``(None, reject_kind)``.

    The returned movie holds only the snapshot's fields; optional fields that are absent or
    null are omitted rather than invented.
    """
    if not isinstance(obj, dict):
        return None, "not_an_object"
    movie: dict[str, Any] = {}
    for name, kind in REQUIRED_FIELDS.items():
        value = obj.get(name)
        if value is None:
            return None, f"missing_{name}"
        if isinstance(value, bool) or not isinstance(value, kind):
            return None, f"bad_{name}"
        movie[name] = value
    if movie["id"] <= 0:
        return None, "bad_id"
    genre_ids = movie["genre_ids"]
    if not all(isinstance(g, int) and not isinstance(g, bool) for g in genre_ids):
        return None, "bad_genre_ids"
    movie["genre_ids"] = sorted(set(genre_ids))
    for name, kind in OPTIONAL_FIELDS.items():
        value = obj.get(name)
        if value is not None and not isinstance(value, bool) and isinstance(value, kind):
            movie[name] = value
    return movie, None


def parse_jsonl_lines(lines: Iterable[str], report: FetchReport) -> Iterator[Row]:
    """Parse JSONL lines into rows with their line numbers; reject (never raise on)
    malformed ones."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        report.rows_read += 1
        try:
            yield Row({"line": number}, json.loads(line))
        except json.JSONDecodeError as exc:
            report.reject({"line": number}, "malformed_json", line.rstrip("\r\n"),
                          error=exc.msg)


def read_jsonl_source(path: Path, report: FetchReport) -> Iterator[Row]:
    """Yield raw objects from a JSONL or JSONL.gz file of TMDB movie objects."""
    if not path.is_file():
        raise SourceError(
            f"fetch source {str(path)!r} does not exist or is not a file",
            "set fetch.source in params.yaml to a JSONL/JSONL.gz file of TMDB movies",
        )
    try:
        with open_text(path) as handle:
            yield from parse_jsonl_lines(handle, report)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"cannot read fetch source {str(path)!r}: {exc}",
            "check that the file is a complete, UTF-8 (optionally gzipped) JSONL file",
        ) from None


def canonical_movies(rows: Iterable[Row], report: FetchReport) -> list[dict[str, Any]]:
    """Check, deduplicate (first wins) and sort raw movie objects by id; every rejected
    object is counted and traced in ``report.reject_rows``."""
    by_id: dict[int, dict[str, Any]] = {}
    for where, obj in rows:
        movie, reject = check_movie(obj)
        if movie is None:
            report.reject(where, reject or "invalid",
                          json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str))
        elif movie["id"] in by_id:
            report.duplicates += 1
        else:
            by_id[movie["id"]] = movie
    report.movies = len(by_id)
    return [by_id[movie_id] for movie_id in sorted(by_id)]


TMDB_SOURCE = "tmdb"
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")


def source_kind(params: FetchParams) -> str:
    """A short name for the kind of source ``fetch.source`` names: tmdb, csv or jsonl."""
    if params.source == TMDB_SOURCE:
        return "tmdb"
    if params.source.lower().endswith(CSV_SUFFIXES):
        return "csv"
    return "jsonl"


def read_source(params: FetchParams, report: FetchReport) -> Iterator[Row]:
    """Yield raw TMDB movie objects, with where each was found, from ``fetch.source``."""
    kind = source_kind(params)
    if kind == "tmdb":
        from .sources.tmdb_api import read_tmdb_source

        return read_tmdb_source(params, report)
    if kind == "csv":
        from .sources.export import read_csv_source

        return read_csv_source(Path(params.source), report)
    return read_jsonl_source(Path(params.source), report)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_manifest(report_path: Path) -> Path:
    """Where the manifest goes by default: beside the report (metrics/fetch_manifest.json)."""
    return report_path.with_name(f"{report_path.stem}_manifest.json")


def default_rejects(out: Path) -> Path:
    """Where rejected rows go by default: beside the snapshot (data/raw/rejects.jsonl).

    They hold source data, so they live with the (DVC-cached, never committed) snapshot.
    """
    return out.with_name("rejects.jsonl")


def fetch(params: FetchParams, out: Path, report_path: Path,
          manifest_path: Path | None = None, rejects_path: Path | None = None) -> FetchReport:
    """Read the source, write the canonical snapshot, the report, manifest and rejects."""
    report = FetchReport(source_kind=source_kind(params))
    movies = canonical_movies(read_source(params, report), report)
    if not movies:
        raise SourceError(
            f"fetch source {params.source!r} yielded no valid movies "
            f"({report.rows_read} rows read, rejects: {dict(report.rejected) or 'none'})",
            "point fetch.source at a file of TMDB movie objects",
        )
    manifest = {"source_kind": report.source_kind, "source": params.source,
                **report.manifest, "movies": report.movies}
    if report.source_kind != "tmdb":
        manifest["sha256"] = file_sha256(Path(params.source))
    write_jsonl(rejects_path or default_rejects(out), report.reject_rows)
    write_jsonl(out, movies)
    write_json(report_path, report.as_dict())
    write_json(manifest_path or default_manifest(report_path), manifest)
    return report


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument(
        "--out", type=Path, default=paths.RAW_SNAPSHOT, help="snapshot to write (JSONL)"
    )
    parser.add_argument(
        "--report", type=Path, default=paths.FETCH_REPORT,
        help="where to write the counts of rows read, kept and rejected",
    )
    parser.add_argument(
        "--manifest", type=Path, default=None,
        help="where to write what was fetched and how (default: beside --report)",
    )
    parser.add_argument(
        "--rejects", type=Path, default=None,
        help="where to write rejected rows, one JSON object each (default: beside --out)",
    )
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the fetch stage."""
    params = load_params(args.params).fetch
    report = fetch(params, args.out, args.report, args.manifest, args.rejects)
    rejected = sum(report.rejected.values())
    print(
        f"fetch: {report.movies} movies -> {args.out} "
        f"({report.rows_read} rows read, {report.duplicates} duplicates, {rejected} rejected)"
    )
