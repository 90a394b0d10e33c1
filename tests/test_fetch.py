from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tmdb_genres.fetch import FetchReport, SourceError, canonical_movies, check_movie, fetch
from tmdb_genres.params import FetchParams
from tmdb_genres.sources import Row

from .conftest import toy_movies


def write_lines(path: Path, lines: list[str]) -> Path:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def test_check_movie_keeps_snapshot_fields_only():
    movie, reject = check_movie(
        {"id": 7, "title": "T", "overview": "O", "genre_ids": [35, 18, 35], "source": "x",
         "vote_count": None, "popularity": 2.5}
    )
    assert reject is None
    assert movie == {"id": 7, "title": "T", "overview": "O", "genre_ids": [18, 35],
                     "popularity": 2.5}


@pytest.mark.parametrize(
    ("obj", "kind"),
    [
        ([1, 2], "not_an_object"),
        ({"title": "T", "overview": "", "genre_ids": []}, "missing_id"),
        ({"id": "7", "title": "T", "overview": "", "genre_ids": []}, "bad_id"),
        ({"id": -1, "title": "T", "overview": "", "genre_ids": []}, "bad_id"),
        ({"id": 7, "title": "T", "overview": "", "genre_ids": ["Drama"]}, "bad_genre_ids"),
        ({"id": 7, "title": 5, "overview": "", "genre_ids": []}, "bad_title"),
    ],
)
def test_check_movie_rejects_by_kind(obj, kind):
    assert check_movie(obj) == (None, kind)


def test_canonical_movies_dedupes_first_wins_and_sorts(tmp_path: Path):
    report = FetchReport("test")
    lines = canonical_movies(
        [Row({"line": n}, obj) for n, obj in enumerate([
            {"id": 3, "title": "c", "overview": "", "genre_ids": []},
            {"id": 1, "title": "a", "overview": "", "genre_ids": []},
            {"id": 3, "title": "c2", "overview": "", "genre_ids": []}], start=1)],
        report, lambda: tmp_path,
    )
    movies = [json.loads(line) for line in lines]
    assert [(m["id"], m["title"]) for m in movies] == [(1, "a"), (3, "c")]
    assert report.duplicates == 1 and report.movies == 2


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 1000])
def test_canonical_movies_in_spilled_runs_equal_one_sort(tmp_path: Path, chunk_size: int):
    """Sorting in bounded chunks spilled to disk and merged gives the same lines (first
    occurrence of an id wins, even across runs) as sorting everything at once."""
    import random

    rng = random.Random(5)
    objs = [{"id": rng.randrange(1, 40), "title": f"t{n}\r\u2028\x85", "overview": "o",
             "genre_ids": [18]}
            for n in range(60)]
    rows = [Row({"line": n}, obj) for n, obj in enumerate(objs, start=1)]
    report = FetchReport("test")
    scratch = tmp_path / str(chunk_size)
    scratch.mkdir()
    lines = list(canonical_movies(rows, report, lambda: scratch, chunk_size=chunk_size))
    first: dict[int, dict] = {}
    for obj in objs:
        first.setdefault(obj["id"], obj)
    assert [json.loads(line) for line in lines] == [first[i] for i in sorted(first)]
    assert report.movies == len(first) and report.duplicates == len(objs) - len(first)
    assert len(list(scratch.iterdir())) == len(objs) // chunk_size


def test_fetch_counts_rejects_and_writes_sorted_snapshot(tmp_path: Path):
    movies = toy_movies(20)
    lines = [json.dumps(m) for m in reversed(movies)]
    lines += ["{not json", json.dumps({"id": 99}), json.dumps(movies[0])]
    source = write_lines(tmp_path / "movies.jsonl.gz", lines)
    out, report_path = tmp_path / "raw" / "movies.jsonl", tmp_path / "fetch.json"
    report = fetch(FetchParams(source=str(source)), out, report_path)
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [m["id"] for m in written] == list(range(1, 21))
    saved = json.loads(report_path.read_text(encoding="utf-8"))
    assert saved["rejected"] == {"malformed_json": 1, "missing_title": 1}
    assert saved["duplicates"] == 1 and saved["movies"] == 20 == report.movies


def test_fetch_is_byte_deterministic_whatever_the_input_order(tmp_path: Path):
    movies = toy_movies(30)
    a = write_lines(tmp_path / "a.jsonl", [json.dumps(m) for m in movies])
    b = write_lines(tmp_path / "b.jsonl", [json.dumps(m, indent=None, sort_keys=True)
                                           for m in reversed(movies)])
    fetch(FetchParams(source=str(a)), tmp_path / "a.out", tmp_path / "a.json")
    fetch(FetchParams(source=str(b)), tmp_path / "b.out", tmp_path / "b.json")
    assert (tmp_path / "a.out").read_bytes() == (tmp_path / "b.out").read_bytes()


def test_missing_or_useless_source_is_one_clear_error(tmp_path: Path):
    with pytest.raises(SourceError, match=r"does not exist.*set fetch.source"):
        fetch(FetchParams(source=str(tmp_path / "nope.jsonl")), tmp_path / "o", tmp_path / "r")
    junk = write_lines(tmp_path / "junk.jsonl", ["{bad", "[]"])
    with pytest.raises(SourceError, match="no valid movies"):
        fetch(FetchParams(source=str(junk)), tmp_path / "o", tmp_path / "r")
    assert not (tmp_path / "o").exists()


def test_truncated_gzip_is_reported(tmp_path: Path):
    good = write_lines(tmp_path / "m.jsonl.gz", [json.dumps(m) for m in toy_movies(200)])
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(good.read_bytes()[:-40])
    with pytest.raises(SourceError, match="cannot read fetch source"):
        fetch(FetchParams(source=str(cut)), tmp_path / "o", tmp_path / "r")
    assert not (tmp_path / "o").exists()


def test_rejected_jsonl_rows_are_written_with_line_reason_and_content(tmp_path: Path):
    movies = toy_movies(3)
    long_bad = json.dumps({"id": 50, "title": "T", "overview": "x" * 400, "genre_ids": ["Drama"]})
    lines = [json.dumps(movies[0]), "{not json", "", json.dumps({"id": 99}),
             json.dumps(movies[1]), long_bad, json.dumps(movies[2])]
    source = write_lines(tmp_path / "movies.jsonl", lines)
    fetch(FetchParams(source=str(source)), tmp_path / "raw" / "movies.jsonl",
          tmp_path / "fetch.json")
    rejects = [json.loads(line) for line in
               (tmp_path / "raw" / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rejects[0] == {"line": 2, "reason": "malformed_json", "content": "{not json",
                          "error": "Expecting property name enclosed in double quotes"}
    assert rejects[1] == {"line": 4, "reason": "missing_title", "content": '{"id": 99}'}
    assert rejects[2]["line"] == 6 and rejects[2]["reason"] == "bad_genre_ids"
    assert rejects[2]["content"] == json.dumps(json.loads(long_bad), sort_keys=True)[:199] + "…"
    assert len(rejects) == 3


def test_clean_source_writes_an_empty_rejects_file(tmp_path: Path):
    source = write_lines(tmp_path / "m.jsonl", [json.dumps(m) for m in toy_movies(5)])
    fetch(FetchParams(source=str(source)), tmp_path / "raw" / "movies.jsonl",
          tmp_path / "fetch.json")
    assert (tmp_path / "raw" / "rejects.jsonl").read_bytes() == b""
    assert "completeness" not in json.loads((tmp_path / "fetch.json").read_text())
