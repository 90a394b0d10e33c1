"""Predict genres with the model and thresholds that ``dvc repro`` produced.

Input is a JSONL, CSV or TSV file (``.gz`` accepted), a ``.txt`` file of one overview a line,
or ``-`` for standard input (JSONL if it starts with ``{``, CSV if its first line names a title
or an overview column, else one overview a line). A CSV needs an overview column (a title
column is optional); an ``id`` column passes through (a CSV id column of plain integers stays
integers). TMDB's metadata fields (``original_language``, ``release_date``, ``vote_count``,
``popularity``, ``vote_average``: JSONL keys or CSV columns) are used when present; any may be
missing or malformed (it then counts as unknown). The encoding is UTF-8 (a byte-order mark is
skipped), UTF-16/32 with a byte-order mark, else cp1252 with a notice on stderr (a file mixing
UTF-8 and other lines is refused), or the one ``--encoding`` names. Each record is checked by
the one rule of :func:`tmdb_genres.movie.validate_movie`. Output is one JSON object a line, to
standard output or ``-o FILE``: ``id``, ``title``, ``genres`` (names at or above their
thresholds, highest probability first) and ``scores`` (every genre's calibrated probability);
``warning`` marks a movie predicted from its title alone, ``error`` a record that is not a
movie (and why). ``--text``/``--title`` predict one movie: a ranked table on a terminal, a JSON
line otherwise.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import io
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .io import atomic_text, jsonl_line
from .model import GenreModel
from .movie import METADATA_FIELDS, InvalidMovie, Movie, echo_id, echo_title, validate_movie

BATCH = 2048
STDIN = "-"
AUTO = "auto"
FALLBACK_ENCODING = "cp1252"  # what spreadsheets on Windows write when not asked for UTF-8
CSV_SUFFIXES = (".csv", ".tsv")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
LINES_SUFFIXES = (".txt",)  # one overview a line
# the fields predict reads from a CSV, found under the header names sources/export.py accepts
# (the metadata columns when present: a blank or malformed cell counts as unknown)
CSV_FIELDS = ("id", "title", "overview", *METADATA_FIELDS)
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")  # no leading zeros: "007" would lose them
_CHUNK = 1 << 20
_HEAD = 1 << 12  # bytes looked at to tell text from binary, and the format of stdin
# UTF-32's marks first: UTF-32-LE's starts with UTF-16-LE's
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _notify(message: str) -> None:
    print(f"predict: {message}", file=sys.stderr)


@contextmanager
def open_input(source: str) -> Iterator[tuple[IO[bytes], str]]:
    """A seekable binary stream of ``source`` (a path or ``-``), gunzipped, and its name.

    Standard input is spooled to a temporary file first, so that it can be read more than once
    (to settle the encoding before any result is written) like a file.
    """
    with ExitStack() as stack:
        if source == STDIN:
            raw: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
            shutil.copyfileobj(sys.stdin.buffer, raw)
            name = "standard input"
        else:
            path = Path(source)
            if path.is_dir():
                raise TmdbGenresError(f"input {source!r} is a directory",
                                      "pass one JSONL or CSV file, or - for standard input")
            if not path.is_file():
                raise TmdbGenresError(f"input {source!r} not found",
                                      "pass an existing JSONL or CSV file")
            try:
                raw = stack.enter_context(open(path, "rb"))
            except OSError as exc:
                raise TmdbGenresError(f"cannot read {source!r}: {exc.strerror or exc}",
                                      "check the file's permissions") from None
            name = source
        raw.seek(0)
        if raw.read(2) == b"\x1f\x8b":
            import gzip

            raw.seek(0)
            raw = stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
        raw.seek(0)
        yield raw, name


def first_decode_error(raw: IO[bytes], encoding: str) -> str | None:
    """Where ``raw`` (read from its start) stops being valid ``encoding``, or None if it is."""
    raw.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)()
    fed = newlines = 0
    while True:
        chunk = raw.read(_CHUNK)
        try:
            decoder.decode(chunk, final=not chunk)
        except UnicodeError as exc:
            if not isinstance(exc, UnicodeDecodeError):  # e.g. UTF-16 without a byte-order mark
                return str(exc)
            state = decoder.getstate()  # (undecoded bytes held back, flag) for UTF-8
            pending = state[0] if isinstance(state, tuple) and isinstance(state[0], bytes) else b""
            data, start = exc.object, exc.start
            offset = fed - len(pending) + start
            line = newlines + data[:start].count(b"\n") + 1
            return f"line {line}, byte 0x{data[start]:02x} at offset {offset}"
        if not chunk:
            return None
        fed += len(chunk)
        newlines += chunk.count(b"\n")


def choose_encoding(raw: IO[bytes], name: str, requested: str = AUTO,
                    notify: Callable[[str], None] = _notify) -> str:
    """The codec to read ``raw`` with: checked against the whole input before anything is read.

    ``auto`` is UTF-8, else cp1252 (reported through ``notify``); a byte-order mark is skipped.
    """
    if requested != AUTO:
        try:
            codec = codecs.lookup(requested).name
        except LookupError:
            raise TmdbGenresError(f"unknown encoding {requested!r}",
                                  "pass --encoding auto, utf-8, cp1252, latin-1 or another "
                                  "Python codec name") from None
        codec = "utf-8-sig" if codec == "utf-8" else codec
        bad = first_decode_error(raw, codec)
        if bad:
            raise TmdbGenresError(f"{name} is not valid {requested} ({bad})",
                                  "pass its encoding with --encoding (for example cp1252), "
                                  "or --encoding auto")
        return codec
    raw.seek(0)
    head = raw.read(4)
    for mark, codec in BOMS:
        if head.startswith(mark):
            bad = first_decode_error(raw, codec)
            if bad:
                raise TmdbGenresError(f"{name} starts with a {codec.upper()} byte-order mark "
                                      f"but is not valid {codec.upper()} ({bad})",
                                      "save it again in one encoding (UTF-8), or pass its "
                                      "encoding with --encoding")
            return codec
    bad = first_decode_error(raw, "utf-8-sig")
    if bad is None:
        return "utf-8-sig"
    utf8 = first_utf8_line(raw)
    if utf8 is not None:
        raise TmdbGenresError(f"{name} mixes encodings: line {utf8} is UTF-8, {bad} is not",
                              "save it in one encoding (UTF-8), or pass --encoding to read all "
                              "of it in one (for example --encoding cp1252)")
    if first_decode_error(raw, FALLBACK_ENCODING) is None:
        notify(f"{name} is not UTF-8 ({bad}): read as {FALLBACK_ENCODING}; "
               "pass --encoding to choose another")
        return FALLBACK_ENCODING
    raise TmdbGenresError(f"{name} is neither UTF-8 nor {FALLBACK_ENCODING} ({bad})",
                          "pass its encoding with --encoding, for example --encoding latin-1")


def first_utf8_line(raw: IO[bytes]) -> int | None:
    """The number of the first line of ``raw`` with non-ASCII bytes that are valid UTF-8."""
    raw.seek(0)
    for number, line in enumerate(raw, start=1):
        if not line.isascii():
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                continue
            return number
    return None


def check_is_text(raw: IO[bytes], name: str, encoding: str) -> None:
    """One-line errors for an empty input and for one that is not text (NUL bytes in its
    first kilobytes, in an encoding other than UTF-16/32)."""
    raw.seek(0)
    head = raw.read(_HEAD)
    if not head.strip():
        raise TmdbGenresError(f"{name} is empty",
                              "give a JSONL, CSV or TSV file of movies, or one overview a line")
    wide = encoding.lower().replace("_", "-").startswith(("utf-16", "utf-32", "utf16", "utf32"))
    if b"\0" in head and not wide and not head.startswith(tuple(m for m, _ in BOMS)):
        raise TmdbGenresError(f"{name} is not text (a NUL byte at offset {head.index(0)})",
                              "give a JSONL, CSV or TSV file (gzip is fine); a UTF-16 file "
                              "without a byte-order mark needs --encoding utf-16")


@contextmanager
def _text(raw: IO[bytes], encoding: str) -> Iterator[IO[str]]:
    """``raw`` from its start as text; the binary stream stays open afterwards."""
    raw.seek(0)
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")  # type: ignore[arg-type]
    try:
        yield text
    finally:
        text.detach()


def input_format(source: str, raw: IO[bytes], encoding: str,
                 notify: Callable[[str], None] = _notify) -> str:
    """``csv``, ``jsonl`` or ``lines`` (one overview a line): from the file name, or for
    standard input from its start: a JSON object, else a header naming a title or an overview
    column, else lines (with a notice)."""
    if source != STDIN:
        name = Path(source).name.lower().removesuffix(".gz")
        if name.endswith(CSV_SUFFIXES):
            return "csv"
        if name.endswith(JSONL_SUFFIXES):
            return "jsonl"
        if name.endswith(LINES_SUFFIXES):
            return "lines"
        raise TmdbGenresError(f"cannot tell the format of {source!r}",
                              "use a .jsonl, .csv, .tsv or .txt file (optionally .gz)")
    with _text(raw, encoding) as handle:
        head = handle.read(_HEAD).lstrip()
    if head.startswith("{"):
        return "jsonl"
    with _text(raw, encoding) as handle:
        header = next(_csv_rows(handle), [])
    if set(_columns(header)) & {"title", "overview"}:
        return "csv"
    notify("standard input is neither JSONL nor a CSV with a title or overview column: read "
           "as one overview a line")
    return "lines"


def _columns(header: list[str]) -> dict[str, int]:
    """Index of the id, title, overview and metadata columns, by the header names fetch
    accepts."""
    from .sources.export import COLUMNS, normalise_header

    names = [normalise_header(h) for h in header]
    columns = {}
    for field in CSV_FIELDS:
        found = [names.index(alias) for alias in COLUMNS[field] if alias in names]
        if found:
            columns[field] = found[0]
    return columns


def csv_columns(header: list[str], name: str,
                notify: Callable[[str], None] = _notify) -> dict[str, int]:
    """Index of the id, title and overview columns; an error without an overview column
    (and a notice without a title column), naming the columns found."""
    from .sources.export import COLUMNS

    columns = _columns(header)
    found = ", ".join(repr(h) for h in header) or "none"
    if "overview" not in columns:
        raise TmdbGenresError(
            f"{name} has no overview column (columns found: {found})",
            f"name the overviews' column {COLUMNS['overview'][0]!r} in the header (or "
            f"{', '.join(COLUMNS['overview'][1:])})")
    if "title" not in columns:
        notify(f"{name} has no title column (columns found: {found}): predicting from the "
               "overviews alone")
    return columns


def _csv_rows(handle: IO[str]) -> Iterator[list[str]]:
    """Rows of a CSV/TSV, the delimiter detected from the header as fetch detects it."""
    from .sources.export import DELIMITERS, detect_delimiter

    header = handle.readline()
    # a one-column file has no delimiter to detect: any will do
    delimiter = detect_delimiter(header) if any(d in header for d in DELIMITERS) else ","
    return csv.reader(itertools.chain([header], handle), delimiter=delimiter)


def read_csv(raw: IO[bytes], encoding: str, name: str,
             notify: Callable[[str], None] = _notify) -> Iterator[dict[str, Any]]:
    """Records of a CSV/TSV; an id column of plain integers only (or blanks) gives ints."""
    with _text(raw, encoding) as handle:
        rows = _csv_rows(handle)
        columns = csv_columns(next(rows, []), name, notify)
        integer_ids = "id" in columns and all(
            _INTEGER.fullmatch(cell) for row in rows if (cell := _cell(row, columns["id"])))
    with _text(raw, encoding) as handle:
        rows = _csv_rows(handle)
        next(rows)
        for row in rows:
            if not any(c.strip() for c in row):
                continue
            record: dict[str, Any] = {f: _cell(row, i) for f, i in columns.items()}
            if integer_ids:
                record["id"] = int(record["id"]) if record["id"] else None
            yield record


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


def read_jsonl(raw: IO[bytes], encoding: str, name: str,
               notify: Callable[[str], None] = _notify) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file, one object a line; a bad line stops with its number."""
    with _text(raw, encoding) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                raise TmdbGenresError(f"{name}:{number} is not valid JSON",
                                      "fix or remove that line") from None
            except RecursionError:
                raise TmdbGenresError(f"{name}:{number} is nested too deeply to read",
                                      "give one flat object with title and overview a "
                                      "line") from None
            if not isinstance(record, dict):
                raise TmdbGenresError(f"{name}:{number} is not a JSON object",
                                      "give one object with title and overview a line")
            yield record


def read_lines(raw: IO[bytes], encoding: str, name: str,
               notify: Callable[[str], None] = _notify) -> Iterator[dict[str, Any]]:
    """Records of plain text: each non-blank line is an overview."""
    with _text(raw, encoding) as handle:
        for line in handle:
            if line.strip():
                yield {"overview": line.rstrip("\r\n")}


READERS = {"csv": read_csv, "jsonl": read_jsonl, "lines": read_lines}


def read_records(source: str | Path, encoding: str = AUTO,
                 notify: Callable[[str], None] = _notify) -> Iterator[dict[str, Any]]:
    """Yield input records from a JSONL, CSV or TSV file (optionally gzipped) or ``-`` (stdin).

    The whole input is checked against the encoding before the first record is yielded, so a
    bad byte fails before any output is written.
    """
    source = str(source)
    with open_input(source) as (raw, name):
        try:
            check_is_text(raw, name, encoding)
            codec = choose_encoding(raw, name, encoding, notify)
            kind = input_format(source, raw, codec, notify)
            yield from READERS[kind](raw, codec, name, notify)
        except (OSError, EOFError, csv.Error) as exc:  # a truncated .gz, a broken CSV
            raise TmdbGenresError(f"cannot read {name}: {exc}",
                                  "check that it is a complete file") from None


def predict_records(model: GenreModel, records: list[Any]) -> list[dict[str, Any]]:
    """Predictions for a batch of records, in input order.

    Each record is checked by :func:`~.movie.validate_movie`: one that is not a movie gets no
    prediction (``genres`` and ``scores`` are empty and ``error`` says why, so it is visible in
    the output instead of guessed). One with a title but no overview is predicted from the
    title alone, and ``warning`` says so.
    """
    movies: dict[int, Movie] = {}
    errors: dict[int, str] = {}
    for i, record in enumerate(records):
        try:
            movies[i] = validate_movie(record)
        except InvalidMovie as exc:
            errors[i] = str(exc)
    usable = list(movies)
    probabilities = model.score([movies[i] for i in usable])
    ranked = dict(zip(usable, model.decide(probabilities), strict=True))
    scores = dict(zip(usable, np.round(probabilities, 4).tolist(), strict=True))
    results = []
    for i, record in enumerate(records):
        fields = record if isinstance(record, dict) else {}
        result: dict[str, Any] = {"title": echo_title(fields.get("title")), "genres": [],
                                  "scores": {}}
        if i in movies:
            result["genres"] = ranked[i]
            result["scores"] = dict(zip(model.genres, scores[i], strict=True))
            if movies[i].warning:
                result["warning"] = movies[i].warning
        else:
            result["error"] = errors[i]
        if "id" in fields:
            result["id"] = echo_id(fields["id"])
        results.append(result)
    return results


def batches(records: Iterator[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict]]:
    """Group records into lists of at most ``size``."""
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this command's options to ``parser``."""
    parser.add_argument("input", nargs="?", metavar="INPUT",
                        help="JSONL, CSV or TSV file (.gz accepted) with title and overview "
                        "(and optional id) columns, or a .txt file of one overview a line; - "
                        "reads standard input (JSONL, CSV, or else one overview a line)")
    parser.add_argument("-o", "--output", type=Path,
                        help="write JSONL here (atomically) instead of standard output")
    parser.add_argument("--encoding", default=AUTO,
                        help="the input's text encoding, e.g. utf-8, cp1252, latin-1 (default: "
                        f"auto = UTF-8, with or without a byte-order mark, else {FALLBACK_ENCODING}"
                        " with a notice on stderr)")
    parser.add_argument("--text", help="predict one overview given on the command line (a "
                        "ranked table on a terminal, one JSON line otherwise)")
    parser.add_argument("--title", help="the title to go with --text, or alone (predicted "
                        "from the title alone, with a warning)")
    parser.add_argument("--models", type=Path, default=paths.MODELS_DIR,
                        help="directory with vectorizer.joblib, model.joblib, thresholds.json")
    parser.add_argument("--model", choices=("fast", "accurate"), default="fast",
                        help="fast: TF-IDF + SVM (default); accurate: the SVM ensembled with "
                        "sentence embeddings (needs the `embeddings` extra and `dvc repro` in "
                        "accurate/)")
    parser.add_argument("--accurate-models", type=Path, default=Path("accurate/models"),
                        help="directory with the accurate model's head.json, ensemble.json, "
                        "thresholds.json")
    return parser


def write_predictions(model: GenreModel, records: Iterator[dict[str, Any]],
                      handle: IO[str]) -> dict[str, int]:
    """Write one JSONL result a record to ``handle`` with a progress bar on stderr; counts."""
    from tqdm import tqdm

    counts = {"movies": 0, "warning": 0, "error": 0}
    with tqdm(desc="predict", unit=" movies", file=sys.stderr, disable=None) as progress:
        for batch in batches(records):
            results = predict_records(model, batch)
            handle.writelines(jsonl_line(r) for r in results)
            counts["movies"] += len(results)
            counts["warning"] += sum("warning" in r for r in results)
            counts["error"] += sum("error" in r for r in results)
            progress.update(len(batch))
    return counts


def _movies(count: int) -> str:
    return f"{count} movie{'' if count == 1 else 's'}"


def _summary(counts: dict[str, int], destination: str) -> None:
    _notify(f"{_movies(counts['movies'])} -> {destination}")
    if counts["warning"]:
        _notify(f"{_movies(counts['warning'])} had an empty overview: predicted from the title "
                'alone (see "warning")')
    if counts["error"]:
        _notify(f"{counts['error']} record{'' if counts['error'] == 1 else 's'} were not "
                'movies (no text, wrong types, ...): no genres (see "error")')


def ranked_table(model: GenreModel, result: dict[str, Any]) -> str:
    """One result as a readable table, most probable genre first (for a terminal)."""
    thresholds = dict(zip(model.genres, np.round(model.thresholds, 4).tolist(), strict=True))
    width = max(len(g) for g in model.genres)
    lines = [f"{result['title'] or '(no title)'}: {', '.join(result['genres'])}"]
    if "warning" in result:
        lines.append(f"({result['warning']})")
    lines.append(f"  {'genre':<{width}}  probability  threshold")
    for genre, p in sorted(result["scores"].items(), key=lambda item: -item[1]):
        mark = "*" if genre in result["genres"] else " "
        lines.append(f"{mark} {genre:<{width}}  {p:>11.4f}  {thresholds[genre]:>9.4f}")
    lines.append("(* predicted: at or above its threshold)")
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> None:
    """Run ``tmdb-genres predict``."""
    one = args.text is not None or args.title is not None
    if (args.input is None) != one:
        raise TmdbGenresError("give either an INPUT file or --text (and/or --title)",
                              "see `tmdb-genres predict -h`")
    if one and args.output is not None:
        raise TmdbGenresError("-o goes with an INPUT file, not with --text",
                              "redirect the output instead: > FILE")
    if args.model == "fast":
        model: GenreModel = GenreModel.load(
            args.models / paths.VECTORIZER.name,
            args.models / paths.MODEL.name,
            args.models / paths.THRESHOLDS.name,
        )
    else:
        from .accurate.model import AccurateModel

        model = AccurateModel.load(args.models, args.accurate_models)  # type: ignore[assignment]
    if one:
        if not (args.text or "").strip() and not (args.title or "").strip():
            raise TmdbGenresError("--text is empty", "pass an overview to classify (or --title)")
        record = {"title": args.title, "overview": args.text}
        validate_movie(record)  # a one-line error if it is not a movie
        result = predict_records(model, [record])[0]
        sys.stdout.write(ranked_table(model, result) if sys.stdout.isatty()
                         else jsonl_line(result))
        return
    records = read_records(args.input, args.encoding)
    if args.output is not None:
        try:
            with atomic_text(args.output) as handle:
                counts = write_predictions(model, records, handle)
        except OSError as exc:  # reading errors are TmdbGenresErrors already
            raise TmdbGenresError(f"cannot write {str(args.output)!r}: {exc.strerror or exc}",
                                  "choose a file in a folder you can write to with -o") from None
        _summary(counts, str(args.output))
        return
    try:
        counts = write_predictions(model, records, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    _summary(counts, "standard output")
