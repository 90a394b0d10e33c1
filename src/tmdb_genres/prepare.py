"""Stage 2, prepare: clean the raw snapshot, build the model text and split by hashed id.

Rows are dropped for a reason and every reason is counted in ``metrics/prepare.json``:
empty or too-short overviews, languages outside ``prepare.languages``, duplicate ids and
movies left with no known genre. Unknown genre ids are removed from a movie (and counted).
A movie's split depends only on its TMDB id and the split params, so it never moves when the
snapshot grows.
"""

from __future__ import annotations

import argparse
import heapq
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from . import paths
from .errors import TmdbGenresError
from .genres import TMDB_GENRES
from .idhash import unit_hash
from .io import atomic_dir, iter_jsonl, jsonl_line, write_json
from .movie import METADATA_FIELDS, movie_text, normalize_space
from .params import PrepareParams, load_params


def split_hash(movie_id: int, params: PrepareParams) -> float:
    """The uniform number in [0, 1) that places a TMDB id in its split (and ranks the
    training movies for ``prepare.split.train_limit``)."""
    return unit_hash(f"{params.split_salt}:{movie_id}")


def split_of(movie_id: int, params: PrepareParams) -> str:
    """The split (train / validation / test) a TMDB id falls in, stable across snapshots."""
    return split_at(split_hash(movie_id, params), params)


def split_at(u: float, params: PrepareParams) -> str:
    """The split of a movie whose :func:`split_hash` is ``u``."""
    if u < params.test_fraction:
        return "test"
    if u < params.test_fraction + params.validation_fraction:
        return "validation"
    return "train"


def text_recipe(params: PrepareParams) -> dict[str, Any]:
    """How model texts were built; travels with the model so prediction builds them alike."""
    return {"text_fields": list(params.text_fields), "title_repeat": params.title_repeat}


class Counts:
    """What cleaning dropped and removed, counted as the movies stream by."""

    def __init__(self) -> None:
        self.rows_in = 0
        self.dropped: Counter[str] = Counter()
        self.unknown_ids: Counter[str] = Counter()

    def as_dict(self) -> dict[str, Any]:
        """The counts as written to ``metrics/prepare.json``."""
        return {
            "rows_in": self.rows_in,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": sum(self.dropped.values()),
            "unknown_genre_ids": dict(sorted(self.unknown_ids.items())),
            "unknown_genre_ids_total": sum(self.unknown_ids.values()),
        }


def clean_stream(movies: Iterable[dict[str, Any]], params: PrepareParams,
                 counts: Counts) -> Iterator[dict[str, Any]]:
    """Yield the labelled examples of raw movies one at a time, counting what is dropped
    in ``counts``. Memory is one id per movie (for duplicates), whatever the snapshot size."""
    dropped, unknown_ids = counts.dropped, counts.unknown_ids
    seen: set[int] = set()
    languages = set(params.languages)
    for movie in movies:
        counts.rows_in += 1
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
        yield {
            "id": movie["id"],
            "title": title,
            "text": movie_text(title, overview, params),
            "genres": sorted(genres),
            # the raw fields, as the snapshot has them (featurize encodes them leniently)
            "metadata": {name: movie[name] for name in METADATA_FIELDS if name in movie},
        }


def clean(
    movies: Iterable[dict[str, Any]], params: PrepareParams
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Clean raw movies into labelled examples; return them and the drop counts."""
    counts = Counts()
    examples = list(clean_stream(movies, params, counts))
    return examples, counts.as_dict()


class TrainLimit:
    """The training examples with the lowest split hashes, at most ``limit`` of them
    (all when ``limit`` is None): a heap of the kept ones, so memory is bounded by the limit."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.heap: list[tuple[float, int, str]] = []  # (-hash, id, JSONL line)

    def __len__(self) -> int:
        """How many examples are kept."""
        return len(self.heap)

    def add(self, example: dict[str, Any], u: float) -> None:
        """Offer one training example, whose :func:`split_hash` is ``u``."""
        item = (-u, example["id"], jsonl_line(example))
        if self.limit is None or len(self.heap) < self.limit:
            heapq.heappush(self.heap, item)
            return
        if item > self.heap[0]:  # a lower hash than the highest kept one
            heapq.heapreplace(self.heap, item)

    def lines(self) -> list[str]:
        """The kept examples' JSONL lines, in id order."""
        return [line for _, _, line in sorted(self.heap, key=lambda item: item[1])]


def prepare(params: PrepareParams, snapshot: Path, out_dir: Path, report_path: Path) -> dict:
    """Run the stage: stream the snapshot into one JSONL per split, and write the report.

    Validation and test rows are written as they come; training rows go through
    :class:`TrainLimit`, so memory is bounded by ``prepare.split.train_limit`` movies.
    """
    if not snapshot.is_file():
        raise TmdbGenresError(
            f"raw snapshot {str(snapshot)!r} not found", "run `dvc repro fetch` first"
        )
    counts = Counts()
    sizes = dict.fromkeys(paths.SPLITS, 0)
    train = TrainLimit(params.train_limit)
    with atomic_dir(out_dir) as tmp:
        with ExitStack() as stack:
            handles = {name: stack.enter_context(open(
                paths.split_file(tmp, name, ".jsonl"), "w", encoding="utf-8", newline="\n"))
                for name in paths.SPLITS if name != "train"}
            for example in clean_stream(iter_jsonl(snapshot), params, counts):
                u = split_hash(example["id"], params)
                name = split_at(u, params)
                if name == "train":
                    train.add(example, u)
                else:
                    handles[name].write(jsonl_line(example))
                sizes[name] += 1
        empty = [name for name in paths.SPLITS if not sizes[name]]
        if empty:
            # train gets what validation and test leave: it grows when they are lowered
            remedy = ("lower prepare.split.validation or prepare.split.test"
                      if empty[0] == "train" else f"raise prepare.split.{empty[0]}")
            raise TmdbGenresError(
                f"split {empty[0]!r} is empty ({sum(sizes.values())} usable movies after "
                "cleaning)", f"use a larger snapshot or {remedy} in params.yaml",
            )
        with open(paths.split_file(tmp, "train", ".jsonl"), "w", encoding="utf-8",
                  newline="\n") as handle:
            handle.writelines(train.lines())
        write_json(tmp / paths.TEXT_RECIPE, text_recipe(params))
    over = sizes["train"] - len(train)  # training movies seen but not kept
    sizes["train"] = len(train)
    report = {**counts.as_dict(), "rows_out": sum(sizes.values()), "splits": sizes,
              "train_over_limit": over}
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
