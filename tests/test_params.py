from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tmdb_genres.params import ParamsError, load_params, parse_params


def test_committed_params_load(params_data):
    params = parse_params(params_data)
    assert params.fetch.source == "../shared/data/movies.jsonl.gz"
    assert params.evaluate.mode in {"fixed", "tuned"}
    assert 0 < params.prepare.validation_fraction < 0.5


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("train", "C", "abc", "train.C must be a number"),
        ("train", "C", 0, "train.C must be a number in (0.0"),
        ("evaluate", "threshold", 1.5, "evaluate.threshold must be a number in [0.0, 1.0]"),
        ("evaluate", "mode", "best", "evaluate.mode must be one of fixed, tuned"),
        ("evaluate", "at_least_one", "yes", "evaluate.at_least_one must be true or false"),
        ("prepare", "text_fields", ["plot"], "prepare.text_fields must be a non-empty list"),
        ("prepare", "min_overview_chars", 2.5, "prepare.min_overview_chars must be an integer"),
        ("train", "class_weight", "auto", "train.class_weight must be null or one of balanced"),
        ("fetch", "allow_incomplete", "yes", "fetch.allow_incomplete must be true or false"),
    ],
)
def test_bad_values_name_key_and_expectation(params_data, section, key, value, message):
    params_data[section][key] = value
    with pytest.raises(ParamsError) as info:
        parse_params(params_data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_allow_incomplete_defaults_to_false(params_data):
    assert parse_params(params_data).fetch.allow_incomplete is False
    del params_data["fetch"]["allow_incomplete"]
    assert parse_params(params_data).fetch.allow_incomplete is False
    params_data["fetch"]["allow_incomplete"] = True
    assert parse_params(params_data).fetch.allow_incomplete is True


def test_unknown_per_genre_name_lists_known_ones(params_data):
    params_data["evaluate"]["per_genre"] = {"Sci-Fi": 0.4}
    with pytest.raises(ParamsError, match=r"unknown genre 'Sci-Fi'.*Science Fiction"):
        parse_params(params_data)


def test_per_genre_override_is_parsed(params_data):
    params_data["evaluate"]["per_genre"] = {"Documentary": 0.55}
    assert parse_params(params_data).evaluate.per_genre == {"Documentary": 0.55}


def test_misspelt_and_missing_keys(params_data):
    params_data["evaluate"]["treshold"] = 0.3
    with pytest.raises(ParamsError, match=r"unknown key evaluate.treshold"):
        parse_params(params_data)
    del params_data["evaluate"]["treshold"]
    del params_data["train"]["C"]
    with pytest.raises(ParamsError, match=r"train.C is missing"):
        parse_params(params_data)


def test_char_range_must_be_ordered(params_data):
    params_data["featurize"]["char"].update(ngram_min=4, ngram_max=3)
    with pytest.raises(ParamsError, match=r"featurize.char.ngram_max"):
        parse_params(params_data)
    params_data["featurize"]["char"]["ngram_max"] = 0
    assert not parse_params(params_data).featurize.use_chars


def test_missing_and_invalid_files(tmp_path: Path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "params.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [C: 1\n", encoding="utf-8")
    with pytest.raises(ParamsError, match="not valid YAML at line"):
        load_params(bad)
    bad.write_text(yaml.safe_dump(["not", "a", "mapping"]), encoding="utf-8")
    with pytest.raises(ParamsError, match="must be a mapping"):
        load_params(bad)


def test_watch_must_follow_a_file_source(params_data):
    params_data["fetch"]["source"] = "other.jsonl.gz"
    with pytest.raises(ParamsError, match=r"fetch.watch must be the same path as fetch.source"):
        parse_params(params_data)
    params_data["fetch"].update(source="tmdb", watch="tmdb")
    with pytest.raises(ParamsError, match=r"set fetch.watch: src/tmdb_genres/sources/tmdb_api.py"):
        parse_params(params_data)
    params_data["fetch"]["watch"] = "src/tmdb_genres/sources/tmdb_api.py"
    assert parse_params(params_data).fetch.source == "tmdb"


@pytest.mark.parametrize(("validation", "test"), [(0.5, 0.5)])
def test_split_fractions_leaving_no_training_data_must_be_lowered(params_data, validation,
                                                                   test):
    params_data["prepare"]["split"].update(validation=validation, test=test)
    with pytest.raises(ParamsError) as info:
        parse_params(params_data)
    message = str(info.value)
    assert "prepare.split" in message and "lower" in message and "raise" not in message
    assert "\n" not in message
