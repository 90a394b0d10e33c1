"""The one rule for what a movie is, and the one model text."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.movie import (
    MAX_OVERVIEW,
    MAX_TITLE,
    METADATA_FIELDS,
    TITLE_ONLY,
    InvalidMovie,
    echo_id,
    echo_title,
    movie_text,
    validate_movie,
)

RECIPE = SimpleNamespace(text_fields=("title", "overview"), title_repeat=2)


def test_the_model_text_keeps_the_overview_as_it_is_but_for_white_space():
    text = movie_text(" The  Haunting", "A ghost waits\tin the attic.\n", RECIPE)
    assert text == "The Haunting . The Haunting . A ghost waits in the attic."
    assert movie_text("", "A ghost.", RECIPE) == "A ghost."
    assert movie_text("Jaws", "", RECIPE) == "Jaws . Jaws"
    overview_first = SimpleNamespace(text_fields=("overview", "title"), title_repeat=1)
    assert movie_text("Jaws", "A shark.", overview_first) == "A shark. . Jaws"


def test_a_valid_movie_keeps_its_fields_and_only_scalar_metadata():
    movie = validate_movie({"id": 7, "title": "Jaws", "overview": "A shark.", "genre_ids": [27],
                            "original_language": "en", "vote_count": "many",
                            "popularity": {"x": 1}, "release_date": None})
    assert (movie.id, movie.title, movie.overview) == (7, "Jaws", "A shark.")
    assert dict(movie.metadata) == {"original_language": "en", "vote_count": "many"}
    assert set(movie.metadata) <= set(METADATA_FIELDS)
    assert movie.warning is None
    with pytest.raises(TypeError):
        movie.metadata["popularity"] = 1  # type: ignore[index]


def test_null_or_absent_text_is_empty_and_a_title_alone_is_a_movie_with_a_warning():
    movie = validate_movie({"title": "Jaws", "overview": None})
    assert movie.overview == "" and movie.warning == TITLE_ONLY
    assert validate_movie({"overview": "A shark."}).title == ""


@pytest.mark.parametrize(("record", "fragment"), [
    ({"title": None, "overview": {"a": 1}}, "overview is an object, not text"),
    ({"overview": 42}, "overview is a number, not text"),
    ({"title": 123, "overview": "A shark."}, "title is a number, not text"),
    ({"title": True, "overview": "A shark."}, "title is a boolean, not text"),
    ({"title": ["a"], "overview": "A shark."}, "title is a list, not text"),
    ({"title": "", "overview": "  \n"}, "empty title and overview"),
    ({}, "empty title and overview"),
    ({"overview": "... !!! ???"}, "no words"),
    ({"title": ".", "overview": "....."}, "no words"),
    ({"overview": "\u0000\u0000"}, "control character U+0000 at character 0"),
    ({"overview": "a ghost \x1b story"}, "control character U+001B at character 8"),
    ({"title": "\ud800", "overview": "a ghost \udfff story"}, "title has a lone surrogate U+D800"),
    ({"overview": "a ghost \udfff story"}, "overview has a lone surrogate U+DFFF at character 8"),
    ({"title": "x" * (MAX_TITLE + 1)}, f"over the cap of {MAX_TITLE:,}"),
    ({"overview": "x" * (MAX_OVERVIEW + 1)}, f"over the cap of {MAX_OVERVIEW:,}"),
    ({"id": {"x": 1}, "overview": "A shark."}, "id is an object"),
    ({"id": 1.5, "overview": "A shark."}, "id is a number"),
    ({"id": True, "overview": "A shark."}, "id is a boolean"),
    ("A shark.", "is a string, not a JSON object"),
    ([{"overview": "A shark."}], "is a list, not a JSON object"),
])
def test_what_is_not_a_movie_gets_one_line(record, fragment):
    with pytest.raises(InvalidMovie) as caught:
        validate_movie(record)
    message = str(caught.value)
    assert fragment in message and "\n" not in message and " — " in message
    assert isinstance(caught.value, TmdbGenresError) and isinstance(caught.value, ValueError)
    assert caught.value.too_long == ("over the cap" in fragment)


def test_tab_newline_and_a_text_at_its_cap_are_fine():
    movie = validate_movie({"title": "x" * MAX_TITLE, "overview": "a\tghost\r\nstory"})
    assert len(movie.title) == MAX_TITLE


def test_where_names_the_record_and_strict_refuses_unknown_fields():
    with pytest.raises(InvalidMovie, match=r"^movies\[3\]\.overview is a number"):
        validate_movie({"overview": 1}, where="movies[3]")
    with pytest.raises(InvalidMovie, match=r"^movies\[0\] has an empty title"):
        validate_movie({"title": ""}, where="movies[0]")
    assert validate_movie({"overveiw": "x", "title": "Jaws"}).warning == TITLE_ONLY
    with pytest.raises(InvalidMovie, match="unknown field 'overveiw'"):
        validate_movie({"overveiw": "x", "title": "Jaws"}, strict=True)
    assert validate_movie({"title": "Jaws", "vote_count": 3}, strict=True).metadata == {
        "vote_count": 3}


def test_echo_passes_back_only_what_can_be_written():
    assert echo_id(7) == 7 and echo_id("a7") == "a7" and echo_title("Jaws") == "Jaws"
    assert echo_id(None) is None and echo_id(True) is None and echo_id({"a": 1}) is None
    assert echo_title(123) is None and echo_title("\ud800") is None and echo_id("\udfff") is None
