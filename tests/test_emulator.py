from __future__ import annotations

import argparse
import gzip
import json

import pytest
import requests

from tmdb_genres.sources import emulator

from .ingest_helpers import TOKEN, running, synthetic_movies

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def get(server, path, **params):
    return requests.get(f"{server.base_url}/{path}", params=params, headers=AUTH, timeout=5)


def test_pages_totals_and_cap():
    with running(synthetic_movies(45)) as server:
        body = get(server, "discover/movie", page=3).json()
        assert (body["total_results"], body["total_pages"], len(body["results"])) == (45, 3, 5)
        assert get(server, "discover/movie", page=501).status_code == 400
        assert get(server, "discover/movie", page=0).status_code == 400
        assert server.stats.requests == 3


def test_filters_and_sorting():
    movies = synthetic_movies(200)
    with running(movies) as server:
        body = get(server, "discover/movie", **{
            "primary_release_date.gte": "2000-03-01", "primary_release_date.lte": "2000-06-30",
            "with_original_language": "fr", "vote_count.gte": 10,
            "sort_by": "primary_release_date.asc"}).json()
        expected = [m for m in movies if "2000-03-01" <= m["release_date"] <= "2000-06-30"
                    and m["original_language"] == "fr" and m["vote_count"] >= 10]
        assert body["total_results"] == len(expected) > 0
        dates = [m["release_date"] for m in body["results"]]
        assert dates == sorted(dates)
        desc = get(server, "discover/movie", sort_by="vote_count.desc").json()["results"]
        assert [m["vote_count"] for m in desc] == sorted((m["vote_count"] for m in desc),
                                                          reverse=True)


def test_auth_and_genres():
    with running(synthetic_movies(5)) as server:
        assert requests.get(f"{server.base_url}/discover/movie", timeout=5).status_code == 401
        wrong = requests.get(f"{server.base_url}/genre/movie/list", timeout=5,
                             headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["status_code"] == 7
        by_key = requests.get(f"{server.base_url}/genre/movie/list", timeout=5,
                              params={"api_key": TOKEN})
        assert len(by_key.json()["genres"]) == 19


@pytest.mark.parametrize("kind", ["429", "500", "502", "503"])
def test_status_faults(kind):
    with running(synthetic_movies(5), fault_rate=1.0, fault_kinds=(kind,), retry_after=3) as s:
        response = get(s, "discover/movie")
        assert response.status_code == int(kind)
        if kind == "429":
            assert response.headers["Retry-After"] == "3"
        assert s.stats.faults == 1


@pytest.mark.parametrize("kind", ["truncate", "drop"])
def test_broken_connections(kind):
    with (running(synthetic_movies(50), fault_rate=1.0, fault_kinds=(kind,)) as server,
          pytest.raises(requests.RequestException)):
        get(server, "discover/movie").json()


def test_slow_answer_passes_the_client_timeout():
    with running(synthetic_movies(5), fault_rate=1.0, fault_kinds=("slow",),
                 slow_seconds=0.5) as server, pytest.raises(requests.Timeout):
        requests.get(f"{server.base_url}/discover/movie", headers=AUTH, timeout=0.1)


def test_fault_draws_are_seeded():
    def draws(seed):
        server = emulator.EmulatorServer(
            emulator.EmulatorConfig(movies=[], fault_rate=0.3, seed=seed))
        try:
            return [server.pick_fault() for _ in range(50)]
        finally:
            server.server_close()

    assert draws(1) == draws(1) != draws(2)
    assert 5 <= sum(d is not None for d in draws(1)) <= 30


def test_binds_loopback_only():
    with running([]) as server:
        assert server.server_address[0] == "127.0.0.1"


def test_cli_rejects_unknown_fault(capsys):
    from tmdb_genres import cli

    assert cli.main(["emulator", "--faults", "fire", "--snapshot", "/nonexistent"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown fault kind 'fire'" in err and len(err.splitlines()) == 1


def tied_movies(days: int = 3, per_day: int = 15) -> list[dict]:
    """``days * per_day`` movies, ``per_day`` of them on each day: every page boundary ties."""
    return [{"id": 1 + i, "title": f"T{i}", "overview": "o", "genre_ids": [18],
             "release_date": f"2001-01-0{1 + i // per_day}", "vote_count": i}
            for i in range(days * per_day)]


def page_ids(server, page, **query):
    body = get(server, "discover/movie", page=page, sort_by="primary_release_date.asc",
               **query).json()
    return [m["id"] for m in body["results"]], body


def test_without_shuffle_ties_keep_one_order():
    with running(tied_movies()) as server:
        assert [page_ids(server, 1)[0] for _ in range(5)] == [list(range(1, 21))] * 5


def test_shuffled_ties_reorder_per_request_within_the_sort_order():
    movies = tied_movies()
    date = {m["id"]: m["release_date"] for m in movies}
    with running(movies, shuffle_ties=True, seed=4) as server:
        orders, served = set(), []
        for _ in range(12):
            pages = [page_ids(server, page)[0] for page in (1, 2, 3)]
            ids = [i for page in pages for i in page]
            assert len(ids) == 45
            assert [date[i] for i in ids] == sorted(date[i] for i in ids)
            orders.add(tuple(ids))
            served.append(set(ids))
        # Each request draws its own order, so paging misses a tied movie and repeats
        # another (the first page's 15 on 2001-01-01 are always whole: no tie crosses them).
        assert len(orders) == 12
        assert any(len(ids) < 45 for ids in served)
        assert all(set(range(1, 16)) <= ids for ids in served)


def test_hidden_movies_are_counted_but_never_served():
    movies = synthetic_movies(400)
    with running(movies, hide_fraction=0.05, seed=2) as server:
        hidden = server.hidden
        assert 5 <= len(hidden) <= 40
        served = set()
        total = None
        for page in range(1, 21):
            ids, body = page_ids(server, page)
            served.update(ids)
            total = body["total_results"]
        assert total == 400 and served == {m["id"] for m in movies} - hidden
    assert emulator.hidden_ids(movies, 0.05, 2) == hidden != emulator.hidden_ids(movies, 0.05, 3)


def test_cli_options_for_ties_and_hidden_movies(tmp_path):
    from tmdb_genres import cli

    parser = emulator.build_parser(argparse.ArgumentParser())
    snapshot = tmp_path / "m.jsonl"
    snapshot.write_text("".join(json.dumps(m) + "\n" for m in tied_movies()), encoding="utf-8")
    args = parser.parse_args(["--snapshot", str(snapshot), "--shuffle-ties",
                              "--hide-fraction", "0.1"])
    config = emulator.config_from_args(args)
    assert config.shuffle_ties and config.hide_fraction == 0.1 and len(config.movies) == 45
    assert not emulator.config_from_args(parser.parse_args(["--snapshot", str(snapshot)])
                                         ).shuffle_ties
    assert cli.main(["emulator", "--hide-fraction", "2", "--snapshot", str(snapshot)]) == 2


def test_catalogue_serves_each_movie_as_given_and_keeps_few_selections(tmp_path):
    movies = synthetic_movies(60)
    snapshot = tmp_path / "m.jsonl.gz"
    with gzip.open(snapshot, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps({**m, "source": "x"}) + "\n" for m in movies)
    catalogue = emulator.load_movies(snapshot)
    assert len(catalogue) == 60 and catalogue.movie(7) == movies[7]  # "source" dropped
    with running(catalogue) as server:
        served = [m for page in (1, 2, 3) for m in get(
            server, "discover/movie", page=page, sort_by="primary_release_date.asc").json()[
            "results"]]
        assert served == sorted(movies, key=lambda m: (m["release_date"], m["id"]))
        server.selections.budget = 100
        for votes in range(40):  # 40 distinct queries: only the last few selections are kept
            get(server, "discover/movie", **{"vote_count.gte": votes})
        assert 1 < len(server.selections) < 40 and server.selections.held() <= 100
        get(server, "discover/movie")  # a selection over budget alone is kept alone
        server.selections.budget = 10
        get(server, "discover/movie", **{"vote_count.gte": 1})
        assert len(server.selections) == 1 and server.selections.held() == 58


def test_start_hint_names_both_fetch_keys_the_live_path_needs():
    import re
    from pathlib import Path

    hint = emulator.start_hint("http://127.0.0.1:8765/3", TOKEN, 3)
    assert "export TMDB_API_BASE=http://127.0.0.1:8765/3" in hint
    assert f"export TMDB_API_TOKEN={TOKEN}" in hint
    assert "fetch.source: tmdb" in hint
    watch = re.search(r"fetch\.watch: (\S+?),", hint)
    assert watch, hint  # without fetch.watch, `dvc repro` rejects fetch.source: tmdb
    assert (Path(__file__).parents[1] / watch.group(1)).is_file()
