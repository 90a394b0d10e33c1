"""Stage 2, prepare: clean the raw snapshot, build the model text and split by hashed id.

Rows are dropped for a reason and every reason is counted in ``metrics/prepare.json``:
empty or too-short overviews, languages outside ``prepare.languages``, duplicate ids and
movies left with no known genre. Unknown genre ids are removed from a movie (and counted).
A movie's split depends only on its TMDB id and the split params, so it never moves when the
snapshot grows.
"""

from __future__ import annotations

import argparse
import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

from . import paths
from .errors import TmdbGenresError
from .genres import TMDB_GENRES
from .io import atomic_dir, read_jsonl, write_json, write_jsonl
from .movie import METADATA_FIELDS, movie_text, normalize_space
from .params import PrepareParams, load_params


def split_of(movie_id: int, params: PrepareParams) -> str:
    """The split (train / validation / test) a TMDB id falls in, stable across snapshots."""
    digest = hashlib.sha256(f"{params.split_salt}:{movie_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < params.test_fraction:
        return "test"
    if u < params.test_fraction + params.validation_fraction:
        return "validation"
    return "train"


def text_recipe(params: PrepareParams) -> dict[str, Any]:
    """How model texts were built; travels with the model so prediction builds them alike."""
    return {"text_fields": list(params.text_fields), "title_repeat": params.title_repeat}


def clean(
    movies: list[dict[str, Any]], params: PrepareParams
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Clean raw movies into labelled examples; return them and the drop counts."""
    dropped: Counter[str] = Counter()
    unknown_ids: Counter[str] = Counter()
    seen: set[int] = set()
    examples = []
    languages = set(params.languages)
    for movie in movies:
        if movie["id"] in seen:
            dropped["duplicate_id"] += 1
            continue
        seen.add(movie["id"])
        overview = normalize_space(movie.get("overview") or "")
        if not overview:
            dropped["empty_overview"] += 1
            continue
        if len(overview) < params.min_overview_chars:
            dropped["short_overview"] += 1
            continue
        if languages and movie.get("original_language") not in languages:
            dropped["language"] += 1
            continue
        genres = []
        for genre_id in movie.get("genre_ids", []):
            if genre_id in TMDB_GENRES:
                genres.append(TMDB_GENRES[genre_id])
            else:
                unknown_ids[str(genre_id)] += 1
        if not genres:
            dropped["no_known_genre"] += 1
            continue
        title = normalize_space(movie.get("title") or "")
        examples.append(
            {
                "id": movie["id"],
                "title": title,
                "text": movie_text(title, overview, params),
                "genres": sorted(genres),
                # the raw fields, as the snapshot has them (featurize encodes them leniently)
                "metadata": {name: movie[name] for name in METADATA_FIELDS if name in movie},
            }
        )
    counts = {
        "rows_in": len(movies),
        "dropped": dict(sorted(dropped.items())),
        "dropped_total": sum(dropped.values()),
        "unknown_genre_ids": dict(sorted(unknown_ids.items())),
        "unknown_genre_ids_total": sum(unknown_ids.values()),
    }
    return examples, counts


def split_examples(
    examples: list[dict[str, Any]], params: PrepareParams
) -> dict[str, list[dict[str, Any]]]:
    """Group examples by their hashed split, keeping id order within each split."""
    splits: dict[str, list[dict[str, Any]]] = {name: [] for name in paths.SPLITS}
    for example in examples:
        splits[split_of(example["id"], params)].append(example)
    return splits


def prepare(params: PrepareParams, snapshot: Path, out_dir: Path, report_path: Path) -> dict:
    """Run the stage: read the snapshot, write one JSONL per split and the report."""
    if not snapshot.is_file():
        raise TmdbGenresError(
            f"raw snapshot {str(snapshot)!r} not found", "run `dvc repro fetch` first"
        )
    examples, counts = clean(read_jsonl(snapshot), params)
    splits = split_examples(examples, params)
    empty = [name for name, rows in splits.items() if not rows]
    if empty:
        # train gets what validation and test leave: it grows when they are lowered
        remedy = ("lower prepare.split.validation or prepare.split.test" if empty[0] == "train"
                  else f"raise prepare.split.{empty[0]}")
        raise TmdbGenresError(
            f"split {empty[0]!r} is empty ({len(examples)} usable movies after cleaning)",
            f"use a larger snapshot or {remedy} in params.yaml",
        )
    with atomic_dir(out_dir) as tmp:
        for name, rows in splits.items():
            write_jsonl(paths.split_file(tmp, name, ".jsonl"), rows)
        write_json(tmp / paths.TEXT_RECIPE, text_recipe(params))
    report = {**counts, "rows_out": len(examples),
              "splits": {name: len(rows) for name, rows in splits.items()}}
    write_json(report_path, report)
    return report


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--snapshot", type=Path, default=paths.RAW_SNAPSHOT,
                        help="raw snapshot written by fetch")
    parser.add_argument("--out", type=Path, default=paths.PREPARED_DIR,
                        help="directory for train/validation/test JSONL files")
    parser.add_argument("--report", type=Path, default=paths.PREPARE_REPORT,
                        help="where to write row counts and drop reasons")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the prepare stage."""
    params = load_params(args.params).prepare
    report = prepare(params, args.snapshot, args.out, args.report)
    sizes = ", ".join(f"{name} {report['splits'][name]}" for name in paths.SPLITS)
    print(
        f"prepare: {report['rows_out']} of {report['rows_in']} movies kept ({sizes}); "
        f"dropped {report['dropped'] or 'none'}; "
        f"{report['unknown_genre_ids_total']} unknown genre ids removed"
    )
