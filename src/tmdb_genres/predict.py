"""Predict genres with the model and thresholds that ``dvc repro`` produced.

Input is a JSONL, CSV or TSV file (``.gz`` accepted), or ``-`` for standard input, with
``title`` and ``overview`` columns; an ``id`` column passes through (a CSV id column of plain
integers stays integers). The encoding is UTF-8 (a byte-order mark is skipped), else cp1252 with
a notice on stderr, or the one ``--encoding`` names. Output is one JSON object a line, to
standard output or ``-o FILE``: ``id``, ``title``, ``genres`` (names at or above their
thresholds, highest probability first) and ``scores`` (every genre's calibrated probability);
``warning`` marks a movie predicted from its title alone, ``error`` one with no text at all.
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

BATCH = 2048
STDIN = "-"
AUTO = "auto"
FALLBACK_ENCODING = "cp1252"  # what spreadsheets on Windows write when not asked for UTF-8
CSV_SUFFIXES = (".csv", ".tsv")
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
# the fields predict reads from a CSV, found under the header names sources/export.py accepts
CSV_FIELDS = ("id", "title", "overview")
EMPTY_OVERVIEW = "empty overview: predicted from the title alone"
NO_TEXT = "empty title and overview: nothing to classify"
_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]*)")  # no leading zeros: "007" would lose them
_CHUNK = 1 << 20


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
            raw = stack.enter_context(open(path, "rb"))
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
        except UnicodeDecodeError as exc:
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
    bad = first_decode_error(raw, "utf-8-sig")
    if bad is None:
        return "utf-8-sig"
    if first_decode_error(raw, FALLBACK_ENCODING) is None:
        notify(f"{name} is not UTF-8 ({bad}): read as {FALLBACK_ENCODING}; "
               "pass --encoding to choose another")
        return FALLBACK_ENCODING
    raise TmdbGenresError(f"{name} is neither UTF-8 nor {FALLBACK_ENCODING} ({bad})",
                          "pass its encoding with --encoding, for example --encoding latin-1")


@contextmanager
def _text(raw: IO[bytes], encoding: str) -> Iterator[IO[str]]:
    """``raw`` from its start as text; the binary stream stays open afterwards."""
    raw.seek(0)
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")  # type: ignore[arg-type]
    try:
        yield text
    finally:
        text.detach()


def input_format(source: str, raw: IO[bytes], encoding: str) -> str:
    """``csv`` or ``jsonl``: from the file name, or for standard input from its first byte."""
    if source != STDIN:
        name = Path(source).name.lower().removesuffix(".gz")
        if name.endswith(CSV_SUFFIXES):
            return "csv"
        if name.endswith(JSONL_SUFFIXES):
            return "jsonl"
        raise TmdbGenresError(f"cannot tell the format of {source!r}",
                              "use a .jsonl, .csv or .tsv file (optionally .gz)")
    with _text(raw, encoding) as handle:
        head = handle.read(4096).lstrip()
    return "jsonl" if head.startswith("{") else "csv"


def csv_columns(header: list[str], name: str) -> dict[str, int]:
    """Index of the id, title and overview columns, by the header names fetch accepts."""
    from .sources.export import COLUMNS, normalise_header

    names = [normalise_header(h) for h in header]
    columns = {}
    for field in CSV_FIELDS:
        found = [names.index(alias) for alias in COLUMNS[field] if alias in names]
        if found:
            columns[field] = found[0]
    if "title" not in columns and "overview" not in columns:
        raise TmdbGenresError(f"{name} has no 'title' or 'overview' column",
                              "add a header row with title and overview columns")
    return columns


def _csv_rows(handle: IO[str]) -> Iterator[list[str]]:
    """Rows of a CSV/TSV, the delimiter detected from the header as fetch detects it."""
    from .sources.export import DELIMITERS, detect_delimiter

    header = handle.readline()
    # a one-column file has no delimiter to detect: any will do
    delimiter = detect_delimiter(header) if any(d in header for d in DELIMITERS) else ","
    return csv.reader(itertools.chain([header], handle), delimiter=delimiter)


def read_csv(raw: IO[bytes], encoding: str, name: str) -> Iterator[dict[str, Any]]:
    """Records of a CSV/TSV; an id column of plain integers only (or blanks) gives ints."""
    with _text(raw, encoding) as handle:
        rows = _csv_rows(handle)
        columns = csv_columns(next(rows, []), name)
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


def read_jsonl(raw: IO[bytes], encoding: str, name: str) -> Iterator[dict[str, Any]]:
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
            if not isinstance(record, dict):
                raise TmdbGenresError(f"{name}:{number} is not a JSON object",
                                      "give one object with title and overview a line")
            yield record


def read_records(source: str | Path, encoding: str = AUTO,
                 notify: Callable[[str], None] = _notify) -> Iterator[dict[str, Any]]:
    """Yield input records from a JSONL, CSV or TSV file (optionally gzipped) or ``-`` (stdin).

    The whole input is checked against the encoding before the first record is yielded, so a
    bad byte fails before any output is written.
    """
    source = str(source)
    with open_input(source) as (raw, name):
        try:
            codec = choose_encoding(raw, name, encoding, notify)
            kind = input_format(source, raw, codec)
            reader = read_csv if kind == "csv" else read_jsonl
            yield from reader(raw, codec, name)
        except (OSError, EOFError, csv.Error) as exc:  # a truncated .gz, a broken CSV
            raise TmdbGenresError(f"cannot read {name}: {exc}",
                                  "check that it is a complete file") from None


def predict_records(model: GenreModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Predictions for a batch of records, in input order.

    A record with neither title nor overview gets no prediction: ``genres`` and ``scores``
    are empty and ``error`` says why, so it is visible in the output instead of guessed. One
    with a title but no overview is predicted from the title alone, and ``warning`` says so.
    """
    texts = [model.text(str(r.get("title") or ""), str(r.get("overview") or "")).strip(" .")
             for r in records]
    usable = [i for i, text in enumerate(texts) if text]
    probabilities = model.probabilities([texts[i] for i in usable])
    ranked = dict(zip(usable, model.decide(probabilities), strict=True))
    scores = dict(zip(usable, np.round(probabilities, 4).tolist(), strict=True))
    results = []
    for i, record in enumerate(records):
        result: dict[str, Any] = {"title": record.get("title"), "genres": [], "scores": {}}
        if i in ranked:
            result["genres"] = ranked[i]
            result["scores"] = dict(zip(model.genres, scores[i], strict=True))
            if not str(record.get("overview") or "").strip():
                result["warning"] = EMPTY_OVERVIEW
        else:
            result["error"] = NO_TEXT
        if "id" in record:
            result["id"] = record["id"]
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
                        "(and optional id) columns; - reads standard input")
    parser.add_argument("-o", "--output", type=Path,
                        help="write JSONL here (atomically) instead of standard output")
    parser.add_argument("--encoding", default=AUTO,
                        help="the input's text encoding, e.g. utf-8, cp1252, latin-1 (default: "
                        f"auto = UTF-8, with or without a byte-order mark, else {FALLBACK_ENCODING}"
                        " with a notice on stderr)")
    parser.add_argument("--text", help="predict one overview given on the command line")
    parser.add_argument("--title", default="", help="title to go with --text")
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
        _notify(f"{_movies(counts['error'])} had neither title nor overview: no genres "
                '(see "error")')


def main(args: argparse.Namespace) -> None:
    """Run ``tmdb-genres predict``."""
    if (args.input is None) == (args.text is None):
        raise TmdbGenresError("give either an INPUT file or --text", "see `tmdb-genres predict -h`")
    if args.model == "fast":
        model: GenreModel = GenreModel.load(
            args.models / paths.VECTORIZER.name,
            args.models / paths.MODEL.name,
            args.models / paths.THRESHOLDS.name,
        )
    else:
        from .accurate.model import AccurateModel

        model = AccurateModel.load(args.models, args.accurate_models)  # type: ignore[assignment]
    if args.text is not None:
        if not args.text.strip() and not args.title.strip():
            raise TmdbGenresError("--text is empty", "pass an overview to classify")
        sys.stdout.writelines(jsonl_line(r) for r in predict_records(
            model, [{"title": args.title, "overview": args.text}]))
        return
    records = read_records(args.input, args.encoding)
    if args.output is not None:
        with atomic_text(args.output) as handle:
            counts = write_predictions(model, records, handle)
        _summary(counts, str(args.output))
        return
    try:
        counts = write_predictions(model, records, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped early (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return
    _summary(counts, "standard output")
