"""Predict genres with the model and thresholds that ``dvc repro`` produced.

Input is a JSONL or CSV file (``.gz`` accepted) with ``title`` and ``overview`` columns; an
``id`` column passes through. Output is one JSON object a line: ``id``, ``title``,
``genres`` (names at or above their thresholds, highest probability first) and ``scores``
(every genre's calibrated probability).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .io import atomic_text, jsonl_line, open_text
from .model import GenreModel

BATCH = 2048


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Yield input records from a JSONL or CSV file (CSV delimiter detected from the header)."""
    if not path.is_file():
        raise TmdbGenresError(f"input {str(path)!r} not found",
                              "pass an existing JSONL or CSV file")
    name = path.name.removesuffix(".gz")
    with open_text(path) as handle:
        if name.endswith(".csv"):
            header = handle.readline()
            handle.seek(0)
            delimiter = max(",;\t|", key=header.count)  # the header has no free text
            reader = csv.DictReader(handle, delimiter=delimiter)
            if not reader.fieldnames or not {"title", "overview"} & {
                f.strip().lower() for f in reader.fieldnames
            }:
                raise TmdbGenresError(f"{path} has no 'title' or 'overview' column",
                                      "add a header row with title and overview columns")
            for row in reader:
                yield {(k or "").strip().lower(): v for k, v in row.items()}
        elif name.endswith((".jsonl", ".json", ".ndjson")):
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise TmdbGenresError(f"{path}:{number} is not valid JSON",
                                          "fix or remove that line") from None
                if not isinstance(record, dict):
                    raise TmdbGenresError(f"{path}:{number} is not a JSON object",
                                          "give one object with title and overview a line")
                yield record
        else:
            raise TmdbGenresError(f"cannot tell the format of {str(path)!r}",
                                  "use a .jsonl or .csv file (optionally .gz)")


def predict_records(model: GenreModel, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Predictions for a batch of records, in input order.

    A record with neither title nor overview gets no prediction: ``genres`` and ``scores``
    are empty and ``error`` says why, so it is visible in the output instead of guessed.
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
        else:
            result["error"] = "empty title and overview: nothing to classify"
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
    parser.add_argument("input", type=Path, nargs="?",
                        help="JSONL or CSV file with title and overview (and optional id)")
    parser.add_argument("-o", "--output", type=Path,
                        help="write JSONL here (atomically) instead of standard output")
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
        records: Iterator[dict[str, Any]] = iter([{"title": args.title, "overview": args.text}])
    else:
        records = read_records(args.input)
    if args.output is None:
        for batch in batches(records):
            sys.stdout.writelines(jsonl_line(r) for r in predict_records(model, batch))
        return
    from tqdm import tqdm

    count = 0
    with atomic_text(args.output) as handle, tqdm(desc="predict", unit=" movies",
                                                  file=sys.stderr, disable=None) as progress:
        for batch in batches(records):
            handle.writelines(jsonl_line(r) for r in predict_records(model, batch))
            count += len(batch)
            progress.update(len(batch))
    print(f"predict: {count} movies -> {args.output}", file=sys.stderr)
