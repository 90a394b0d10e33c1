"""Stage 1, fetch: turn a source into the canonical raw snapshot ``data/raw/movies.jsonl``.

A source is read into TMDB movie objects; each is schema-checked, rows that fail are counted
by kind (never silently dropped), duplicate ids are removed (the first occurrence wins) and
the result is written sorted by id, one canonical JSON object a line, so that equal data
always gives equal bytes. Movies stream through: they are sorted in bounded chunks spilled to
a scratch directory beside the snapshot and merged, so a million movies need no more memory
than a thousand.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import paths
from .errors import TmdbGenresError
from .io import atomic_text, jsonl_line, open_text, scratch_dir, write_json, write_jsonl
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


SORT_CHUNK = 50_000  # movies sorted in memory at once; more are merged from sorted runs


def _sorted_runs(rows: Iterable[Row], report: FetchReport, scratch: Callable[[], Path],
                 chunk_size: int) -> list[Iterator[tuple[int, int, str]]]:
    """Check every raw object; return runs of ``(id, arrival, canonical line)`` sorted by id
    then arrival. The last run is kept in memory; earlier ones are spilled to the directory
    ``scratch()`` (created only if a run has to be spilled)."""
    chunk: list[tuple[int, int, str]] = []
    spilled: list[Path] = []
    directory: Path | None = None
    for arrival, (where, obj) in enumerate(rows):
        movie, reject = check_movie(obj)
        if movie is None:
            report.reject(where, reject or "invalid",
                          json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str))
            continue
        chunk.append((movie["id"], arrival, jsonl_line(movie)))
        if len(chunk) >= chunk_size:
            chunk.sort()
            directory = directory or scratch()
            path = directory / f"run{len(spilled):05d}.txt"
            with open(path, "w", encoding="utf-8", newline="\n") as handle:
                handle.writelines(f"{i} {a} {line}" for i, a, line in chunk)
            spilled.append(path)
            chunk = []
    chunk.sort()
    return [*map(_read_run, spilled), iter(chunk)]


def _read_run(path: Path) -> Iterator[tuple[int, int, str]]:
    with open(path, encoding="utf-8", newline="\n") as handle:  # lines end at \n only
        for text in handle:
            movie_id, arrival, line = text.split(" ", 2)
            yield int(movie_id), int(arrival), line


def canonical_movies(rows: Iterable[Row], report: FetchReport, scratch: Callable[[], Path],
                     chunk_size: int = SORT_CHUNK) -> Iterator[str]:
    """Check, deduplicate (first wins) and sort raw movie objects by id, as canonical JSONL
    lines; every rejected object is counted and traced in ``report.reject_rows``.

    Every row is read before the first line comes out. Memory stays bounded whatever the
    number of movies: at most ``chunk_size`` are sorted at once, in runs spilled to the
    directory ``scratch()`` and merged.
    """
    import heapq

    last = None
    for movie_id, _, line in heapq.merge(*_sorted_runs(rows, report, scratch, chunk_size)):
        if movie_id == last:
            report.duplicates += 1
            continue
        last = movie_id
        report.movies += 1
        yield line


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
    with ExitStack() as stack:  # nothing is written beside the snapshot until it is needed
        lines = canonical_movies(read_source(params, report), report,
                                 lambda: stack.enter_context(scratch_dir(out)))
        first = next(lines, None)  # every row has been read
        if first is None:
            raise SourceError(
                f"fetch source {params.source!r} yielded no valid movies "
                f"({report.rows_read} rows read, rejects: {dict(report.rejected) or 'none'})",
                "point fetch.source at a file of TMDB movie objects",
            )
        with atomic_text(out) as handle:
            handle.write(first)
            handle.writelines(lines)
    manifest = {"source_kind": report.source_kind, "source": params.source,
                **report.manifest, "movies": report.movies}
    if report.source_kind != "tmdb":
        manifest["sha256"] = file_sha256(Path(params.source))
    write_jsonl(rejects_path or default_rejects(out), report.reject_rows)
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
    if report.source_kind == "tmdb":
        m = report.manifest
        print(f"fetch: {m['requests']} requests ({m['requests_per_movie']} per movie, "
              f"{m['retries']} retries) in {m['seconds']} s; {m['windows']} windows, "
              f"{m['windows_resumed']} resumed from {m['checkpoints']}")
