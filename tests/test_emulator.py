from __future__ import annotations

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
