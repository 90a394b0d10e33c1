from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tmdb_genres import cli
from tmdb_genres.fetch import fetch
from tmdb_genres.io import read_json, read_jsonl
from tmdb_genres.params import parse_params
from tmdb_genres.sources import Row
from tmdb_genres.sources.tmdb_api import (
    MAX_RESULTS,
    TOKEN_URL,
    ApiError,
    Window,
    credentials_from_env,
    tie_dates,
)

from .ingest_helpers import TOKEN, fetch_params, running, synthetic_movies, write_params


def params(params_data, **overrides):
    data = dict(params_data)
    data["fetch"] = fetch_params(**overrides)
    return parse_params(data).fetch


def pull(tmp_path, monkeypatch, server, fetch_section, token=TOKEN):
    """Run the fetch stage in-process against ``server``; return (movies, manifest)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMDB_API_BASE", server.base_url)
    monkeypatch.setenv("TMDB_API_TOKEN", token)
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    fetch(fetch_section, Path("data/raw/movies.jsonl"), Path("metrics/fetch.json"))
    return read_jsonl("data/raw/movies.jsonl"), read_json("metrics/fetch_manifest.json")


def expected(movies):
    return sorted(m["id"] for m in movies)


def test_credentials_come_from_the_environment_only():
    creds = credentials_from_env({"TMDB_API_TOKEN": "abc", "TMDB_API_KEY": "k"})
    assert creds.variable == "TMDB_API_TOKEN" and "abc" not in repr(creds)
    assert creds.auth() == ({"Authorization": "Bearer abc"}, {})
    key = credentials_from_env({"TMDB_API_KEY": "k", "TMDB_API_BASE": "http://x/3/"})
    assert key.auth() == ({}, {"api_key": "k"}) and key.base == "http://x/3"
    with pytest.raises(ApiError) as missing:
        credentials_from_env({})
    assert "TMDB_API_TOKEN" in str(missing.value) and TOKEN_URL in str(missing.value)


def test_windows_split_into_two_halves_that_cover_the_range():
    low, high = Window("", "2000-01-01", "2000-01-04").halves()
    assert (low.gte, low.lte, high.gte, high.lte) == (
        "2000-01-01", "2000-01-02", "2000-01-03", "2000-01-04")


def test_pull_with_languages_votes_and_limit(tmp_path, monkeypatch, params_data):
    movies = synthetic_movies(300)
    with running(movies) as server:
        got, manifest = pull(tmp_path, monkeypatch, server,
                             params(params_data, languages=["fr"], min_vote_count=5))
        want = [m for m in movies if m["original_language"] == "fr" and m["vote_count"] >= 5]
        assert [m["id"] for m in got] == expected(want)
        assert manifest["query"]["languages"] == ["fr"]
        capped, _ = pull(tmp_path / "b", monkeypatch, server, params(params_data, max_movies=7))
        assert len(capped) == 7


def test_window_over_the_cap_is_split_and_complete(tmp_path, monkeypatch, params_data):
    movies = synthetic_movies(MAX_RESULTS + 500, days=400)
    with running(movies) as server:
        got, manifest = pull(tmp_path, monkeypatch, server, params(params_data))
    assert [m["id"] for m in got] == expected(movies)
    assert manifest["window_splits"] >= 1 and manifest["windows"] >= 2
    assert manifest["completeness"]["shortfall"] == 0
    assert manifest["completeness"]["expected"] == len(movies)


def test_checkpoints_make_a_rerun_offline(tmp_path, monkeypatch, params_data):
    movies = synthetic_movies(500)
    with running(movies) as server:
        first, _ = pull(tmp_path, monkeypatch, server, params(params_data))
        before = server.stats.requests
        again, manifest = pull(tmp_path, monkeypatch, server, params(params_data))
        assert again == first
        assert server.stats.requests - before == 1  # the credentials check only
        assert manifest["windows_resumed"] == manifest["windows"]
        fresh, _ = pull(tmp_path, monkeypatch, server, params(params_data, snapshot="new"))
        assert server.stats.requests - before > 2 and fresh == first


def test_faults_and_retry_after_do_not_change_the_snapshot(tmp_path, monkeypatch, params_data):
    movies = synthetic_movies(1000)
    with running(movies) as server:
        clean, _ = pull(tmp_path / "a", monkeypatch, server, params(params_data))
    with running(movies, fault_rate=0.3, seed=3, slow_seconds=1.0) as server:
        faulty, manifest = pull(tmp_path / "b", monkeypatch, server, params(params_data))
    assert faulty == clean
    assert manifest["retries"] > 0 and set(manifest["retries_by_kind"]) >= {"http_429"}


def test_token_is_never_written(tmp_path, monkeypatch, params_data):
    with running(synthetic_movies(100)) as server:
        pull(tmp_path, monkeypatch, server, params(params_data))
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(encoding="utf-8", errors="replace"), path


def run_cli(tmp_path, monkeypatch, capsys, base, token, params_data, **overrides):
    monkeypatch.chdir(tmp_path)
    write_params(tmp_path, params_data, **overrides)
    monkeypatch.setenv("TMDB_API_BASE", base)
    monkeypatch.setenv("TMDB_API_TOKEN", token)
    status = cli.main(["fetch", "--params", "params.yaml"])
    return status, capsys.readouterr().err.strip()


def test_wrong_token_is_one_line_naming_the_variable(tmp_path, monkeypatch, capsys,
                                                     params_data):
    with running(synthetic_movies(10)) as server:
        status, err = run_cli(tmp_path, monkeypatch, capsys, server.base_url, "wrong-token",
                              params_data)
    assert status == 2 and len(err.splitlines()) == 1
    assert "TMDB_API_TOKEN" in err and TOKEN_URL in err and "wrong-token" not in err
    assert not (tmp_path / "data/raw/movies.jsonl").exists()


def test_dead_server_is_one_line_saying_what_was_fetched(tmp_path, monkeypatch, capsys,
                                                         params_data):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    status, err = run_cli(tmp_path, monkeypatch, capsys, f"http://127.0.0.1:{port}/3", TOKEN,
                          params_data, max_retries=1)
    assert status == 2 and len(err.splitlines()) == 1
    assert "cannot connect" in err and "fetched so far" in err and TOKEN not in err


def test_missing_credentials_is_one_line(tmp_path, monkeypatch, capsys, params_data):
    monkeypatch.delenv("TMDB_API_KEY", raising=False)
    status, err = run_cli(tmp_path, monkeypatch, capsys, "http://127.0.0.1:9/3", "",
                          params_data)
    assert status == 2 and len(err.splitlines()) == 1 and "TMDB_API_TOKEN" in err


def test_tie_dates_name_repeated_days_first_then_days_tied_across_pages():
    def page(number, *movies):
        return [Row({"page": number, "position": i}, {"id": movie_id, "release_date": date})
                for i, (movie_id, date) in enumerate(movies, start=1)]

    pages = [page(1, (1, "2000-01-01"), (2, "2000-01-02")),
             page(2, (2, "2000-01-02"), (3, "2000-01-03")),  # 2 served twice
             page(3, (4, "2000-01-03"), (5, "2000-01-04")),  # 01-03 tied across 2 | 3
             page(4, (6, "2000-01-05"))]
    assert tie_dates(pages) == (["2000-01-02"], ["2000-01-03"])
    assert tie_dates([page(1, (1, "2000-01-01")), page(2, (2, "2000-01-02"))]) == ([], [])


def crowded_days(n_days: int = 4, per_day: int = 45, same_votes: bool = False):
    """Days with more movies than a page holds: paging ties across pages within a day."""
    return [{"id": 100_000 + i, "title": f"M{i}", "overview": "o", "genre_ids": [18],
             "release_date": f"2010-05-0{1 + i % n_days}", "original_language": "en",
             "vote_count": 7 if same_votes else i % 23}
            for i in range(n_days * per_day)]


def test_shuffled_ties_and_faults_still_give_every_movie_once(tmp_path, monkeypatch,
                                                             params_data):
    movies = synthetic_movies(1500, days=120) + crowded_days()
    with running(movies) as server:
        stable, _ = pull(tmp_path / "stable", monkeypatch, server, params(params_data))
        stable_requests = server.stats.requests
    with running(movies, shuffle_ties=True, fault_rate=0.1, seed=5, slow_seconds=0.8) as server:
        got, manifest = pull(tmp_path / "ties", monkeypatch, server, params(params_data))
    assert [m["id"] for m in got] == expected(movies) and got == stable
    completeness = manifest["completeness"]
    assert completeness["complete"] and completeness["expected"] == len(movies)
    assert completeness["collected"] == len(movies) and completeness["shortfall"] == 0
    assert completeness["requeries"]["tie_days"] > 0
    assert completeness["requeries"]["vote_splits"] > 0  # days of 45 on one sort key
    assert [w["shortfall"] for w in manifest["window_completeness"]] == [0]
    assert read_json(tmp_path / "ties/metrics/fetch.json")["completeness"] == {
        "allow_incomplete": False, "complete": True, "expected": len(movies), "shortfall": 0}
    # Without ties nothing is re-queried: one request a page, plus the genre list.
    assert stable_requests == 1 + -(-len(movies) // 20)


def test_a_day_that_no_filter_can_cut_is_paged_again_until_complete(tmp_path, monkeypatch,
                                                                    params_data):
    movies = crowded_days(n_days=1, per_day=50, same_votes=True)
    with running(movies, shuffle_ties=True, seed=11) as server:
        got, manifest = pull(tmp_path, monkeypatch, server,
                             params(params_data, concurrency=1))
    assert [m["id"] for m in got] == expected(movies)
    requeries = manifest["completeness"]["requeries"]
    assert requeries["repeat_passes"] >= 1 and requeries["vote_splits"] == 0


def test_a_server_that_loses_movies_fails_in_one_line(tmp_path, monkeypatch, capsys,
                                                      params_data):
    movies = synthetic_movies(300)
    with running(movies, hide_fraction=0.02, seed=1) as server:
        lost = len(server.hidden)
        status, err = run_cli(tmp_path, monkeypatch, capsys, server.base_url, TOKEN,
                              params_data)
    assert lost >= 2
    assert status == 2 and len(err.splitlines()) == 1
    assert f"incomplete: {lost} of the 300 movies TMDB counted were never returned" in err
    assert "fetch.allow_incomplete: true" in err and "rerun" in err
    assert not (tmp_path / "data/raw/movies.jsonl").exists()
    assert not (tmp_path / "metrics/fetch.json").exists()


def test_allow_incomplete_keeps_the_pull_and_records_the_shortfall(tmp_path, monkeypatch,
                                                                   capsys, params_data):
    movies = synthetic_movies(300)
    with running(movies, hide_fraction=0.02, seed=1) as server:
        lost = len(server.hidden)
        status, err = run_cli(tmp_path, monkeypatch, capsys, server.base_url, TOKEN,
                              params_data, allow_incomplete=True)
        served = {m["id"] for m in movies} - server.hidden
    assert status == 0 and "warning" in err and f"{lost} of the 300" in err
    assert [m["id"] for m in read_jsonl(tmp_path / "data/raw/movies.jsonl")] == sorted(served)
    report = read_json(tmp_path / "metrics/fetch.json")
    assert report["completeness"] == {"allow_incomplete": True, "complete": False,
                                      "expected": 300, "shortfall": lost}
    manifest = read_json(tmp_path / "metrics/fetch_manifest.json")
    assert manifest["completeness"]["shortfall"] == lost
    assert manifest["completeness"]["collected"] == 300 - lost == report["movies"]
    assert manifest["completeness"]["requeries"]["halvings"] > 0
    assert sum(w["expected"] - w["collected"] for w in manifest["window_completeness"]) == lost


def test_invalid_api_objects_are_traced_to_their_page_and_position(tmp_path, monkeypatch,
                                                                   params_data):
    movies = synthetic_movies(50)
    bad = {"id": 7001, "overview": "no title", "genre_ids": [18],
           "release_date": "1999-12-31", "vote_count": 3}
    worse = {"id": 7002, "title": "T", "overview": "x" * 500, "genre_ids": ["Drama"],
             "release_date": "2001-06-01", "vote_count": 3}
    with running([*movies, bad, worse]) as server:
        got, _ = pull(tmp_path, monkeypatch, server, params(params_data))
    assert len(got) == 50
    rejects = read_jsonl(tmp_path / "data/raw/rejects.jsonl")
    by_reason = {r["reason"]: r for r in rejects}
    assert set(by_reason) == {"missing_title", "bad_genre_ids"} and len(rejects) == 2
    first = by_reason["missing_title"]
    assert first["window"] == "all_1874-01-01_2022-12-31"
    assert (first["page"], first["position"]) == (1, 1)  # the earliest release date
    assert json.loads(first["content"]) == bad
    second = by_reason["bad_genre_ids"]
    assert second["page"] >= 1 and 1 <= second["position"] <= 20
    assert len(second["content"]) == 200 and second["content"].endswith("…")
    assert second["content"].startswith('{"genre_ids": ["Drama"], "id": 7002')
    report = read_json(tmp_path / "metrics/fetch.json")
    assert report["rejected"] == {"bad_genre_ids": 1, "missing_title": 1}
