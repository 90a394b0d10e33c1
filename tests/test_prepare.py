from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import pytest

from tmdb_genres import paths
from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.io import read_jsonl, write_jsonl
from tmdb_genres.movie import movie_text, normalize_space
from tmdb_genres.params import parse_params
from tmdb_genres.prepare import clean, prepare, split_of

from .conftest import toy_movies


@pytest.fixture
def params(params_data):
    return parse_params(params_data).prepare


def movie(movie_id, overview="A long enough overview of the film.", genre_ids=(18,), **extra):
    return {"id": movie_id, "title": f"T{movie_id}", "overview": overview,
            "genre_ids": list(genre_ids), **extra}


def test_normalize_space_collapses_every_unicode_white_space():
    spaces = [chr(c) for c in range(0x110000) if re.fullmatch(r"\s", chr(c))]
    assert len(spaces) > 20  # tab, newline, no-break space, ideographic space, ...
    for space in spaces:
        assert normalize_space(f"{space}a{space}{space}b {space}") == "a b", repr(space)
    assert normalize_space("a\u200bb") == "a\u200bb"  # a zero-width space is not white space


def test_clean_drops_and_counts_each_reason(params):
    params = dataclasses.replace(params, languages=("en",))
    examples, counts = clean(
        [
            movie(1, original_language="en"),
            movie(1, original_language="en"),
            movie(2, overview="   ", original_language="en"),
            movie(3, overview="Too short", original_language="en"),
            movie(4, original_language="fr"),
            movie(5, genre_ids=(424242,), original_language="en"),
            movie(6, genre_ids=(18, 999), original_language="en"),
        ],
        params,
    )
    assert [e["id"] for e in examples] == [1, 6]
    assert counts["dropped"] == {"duplicate_id": 1, "empty_overview": 1, "short_overview": 1,
                                 "language": 1, "no_known_genre": 1}
    assert counts["unknown_genre_ids"] == {"424242": 1, "999": 1}
    assert examples[1]["genres"] == ["Drama"]


def test_model_text_follows_field_choice_and_title_repeat():
    from types import SimpleNamespace

    text = movie_text("Alien", " In  space\n", SimpleNamespace(text_fields=("title", "overview"),
                                                               title_repeat=2))
    assert text == "Alien . Alien . In space"
    assert movie_text("Alien", "In space.", SimpleNamespace(text_fields=("overview",),
                                                           title_repeat=3)) == "In space."


def test_split_is_stable_and_near_requested_fractions(params):
    splits = [split_of(i, params) for i in range(1, 20001)]
    assert splits == [split_of(i, params) for i in range(1, 20001)]
    share = {name: splits.count(name) / len(splits) for name in set(splits)}
    assert share["test"] == pytest.approx(params.test_fraction, abs=0.01)
    assert share["validation"] == pytest.approx(params.validation_fraction, abs=0.01)
    other_salt = dataclasses.replace(params, split_salt="other")
    assert splits != [split_of(i, other_salt) for i in range(1, 20001)]


def test_split_does_not_move_when_snapshot_grows(tmp_path: Path, params):
    movies = toy_movies(300)
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, movies[:200])
    prepare(params, snapshot, tmp_path / "a", tmp_path / "a.json")
    write_jsonl(snapshot, movies)
    prepare(params, snapshot, tmp_path / "b", tmp_path / "b.json")
    for name in ("train", "validation", "test"):
        before = {r["id"]: r for r in read_jsonl(tmp_path / "a" / f"{name}.jsonl")}
        after = {r["id"]: r for r in read_jsonl(tmp_path / "b" / f"{name}.jsonl")}
        assert before and all(after[i] == row for i, row in before.items())


def test_prepare_writes_splits_recipe_and_report(tmp_path: Path, params):
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, toy_movies(300))
    report = prepare(params, snapshot, tmp_path / "prepared", tmp_path / "prepare.json")
    assert sorted(p.name for p in (tmp_path / "prepared").iterdir()) == [
        "test.jsonl", "text_recipe.json", "train.jsonl", "validation.jsonl"]
    saved = json.loads((tmp_path / "prepare.json").read_text(encoding="utf-8"))
    assert saved == report
    assert sum(saved["splits"].values()) == saved["rows_out"] == 300
    ids = []
    for name in ("train", "validation", "test"):
        rows = read_jsonl(tmp_path / "prepared" / f"{name}.jsonl")
        assert len(rows) == saved["splits"][name] > 0
        assert [split_of(row["id"], params) for row in rows] == [name] * len(rows)
        assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)
        ids += [row["id"] for row in rows]
    assert sorted(ids) == list(range(1, 301))


def split_by_id(directory: Path) -> dict[int, str]:
    """Each prepared movie's split, by TMDB id."""
    return {row["id"]: name for name in ("train", "validation", "test")
            for row in read_jsonl(directory / f"{name}.jsonl")}


def test_split_depends_on_the_id_alone_not_on_row_order(tmp_path: Path, params):
    """Leakage: a movie's split is a function of its id, whatever the snapshot looks like.

    Shuffling the snapshot's rows, and inserting movies with lower ids before the others,
    must not move any movie between splits (a position-based split would move most).
    """
    movies = [{**m, "id": m["id"] + 1000} for m in toy_movies(300)]
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, movies)
    prepare(params, snapshot, tmp_path / "sorted", tmp_path / "sorted.json")
    before = split_by_id(tmp_path / "sorted")
    assert len(before) == 300
    lower = toy_movies(100, seed=1)  # ids 1..100, all below the others
    grown = movies + lower
    random.Random(0).shuffle(grown)
    write_jsonl(snapshot, grown)
    prepare(params, snapshot, tmp_path / "shuffled", tmp_path / "shuffled.json")
    after = split_by_id(tmp_path / "shuffled")
    moved = {i: (split, after[i]) for i, split in before.items() if after[i] != split}
    assert moved == {}, f"{len(moved)} movies changed split"
    assert all(split == split_of(i, params) for i, split in after.items())
    assert len(after) == 400


def test_prepare_errors_are_one_line(tmp_path: Path, params):
    with pytest.raises(TmdbGenresError, match="run `dvc repro fetch` first"):
        prepare(params, tmp_path / "missing.jsonl", tmp_path / "p", tmp_path / "r.json")
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, toy_movies(3))
    with pytest.raises(TmdbGenresError, match="is empty"):
        prepare(params, snapshot, tmp_path / "p", tmp_path / "r.json")
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize(("split", "advice"), [
    ("train", "lower prepare.split.validation or prepare.split.test"),
    ("test", "raise prepare.split.test"),
])
def test_an_empty_split_error_says_which_way_to_move_the_fractions(tmp_path: Path, params,
                                                                   split, advice):
    snapshot = tmp_path / "movies.jsonl"
    movies = toy_movies(200)
    write_jsonl(snapshot, movies)
    ids = [m["id"] for m in movies]
    # fractions that empty the chosen split for these ids (train keeps what the others leave)
    fractions = ({"test_fraction": 0.5, "validation_fraction": 0.5} if split == "train"
                 else {"test_fraction": 1e-9})
    skewed = dataclasses.replace(params, **fractions)
    assert {split_of(i, skewed) for i in ids} == set(paths.SPLITS) - {split}
    with pytest.raises(TmdbGenresError) as info:
        prepare(skewed, snapshot, tmp_path / "p", tmp_path / "r.json")
    assert f"split {split!r} is empty" in str(info.value) and advice in str(info.value)


def test_train_limit_keeps_the_lowest_split_hashes_and_counts_the_rest(tmp_path: Path, params):
    """At most train_limit training movies: the lowest split hashes (a subset that does not
    depend on the snapshot's order), in id order; validation and test are untouched."""
    from tmdb_genres.prepare import split_hash

    movies = toy_movies(400)
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, movies)
    whole = prepare(params, snapshot, tmp_path / "whole", tmp_path / "whole.json")
    assert whole["train_over_limit"] == 0
    limited = dataclasses.replace(params, train_limit=100)
    write_jsonl(snapshot, list(reversed(movies)))  # the subset ignores the snapshot's order
    report = prepare(limited, snapshot, tmp_path / "cut", tmp_path / "cut.json")
    train_all = read_jsonl(tmp_path / "whole/train.jsonl")
    train_cut = read_jsonl(tmp_path / "cut/train.jsonl")
    expected = sorted(train_all, key=lambda r: split_hash(r["id"], params))[:100]
    assert train_cut == sorted(expected, key=lambda r: r["id"])
    assert report["train_over_limit"] == len(train_all) - 100 > 0
    assert report["splits"]["train"] == 100
    assert report["rows_out"] == whole["rows_out"] - report["train_over_limit"]
    for name in ("validation", "test"):
        assert (sorted(read_jsonl(tmp_path / f"cut/{name}.jsonl"), key=lambda r: r["id"])
                == read_jsonl(tmp_path / f"whole/{name}.jsonl"))
