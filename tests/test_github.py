"""The shared GitHub client's pull-request calls, against the loopback fake of the REST API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.github_fake import FakeGitHub
from tmdb_genres.ci.github import GitHubClient, GitHubError

REPO = "octo/tmdb-genres"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def client(fake: FakeGitHub) -> GitHubClient:
    return GitHubClient(fake.url, fake.token)


def test_upsert_pull_opens_once_then_updates(github: FakeGitHub) -> None:
    gh = client(github)
    action, pull = gh.upsert_pull(REPO, "octo:refresh/a", "main", "Refresh a", "first")
    assert action == "created" and pull["number"] == 1
    action, again = gh.upsert_pull(REPO, "octo:refresh/a", "main", "Refresh a again", "second")
    assert action == "updated" and again["number"] == 1
    assert len(github.open_pulls(REPO)) == 1
    assert github.open_pulls(REPO)[0]["body"] == "second"
    assert github.methods() == ["GET", "POST", "GET", "PATCH"]


def test_find_open_pull_checks_the_head_itself(github: FakeGitHub) -> None:
    """GitHub ignores a head filter without the owner and lists every open pull request."""
    gh = client(github)
    gh.upsert_pull(REPO, "octo:feature", "main", "Another pull request", "")
    github.create_pull(REPO, {"title": "fork", "head": "someone:refresh/a", "base": "main"})
    listed = github.list_pulls(REPO, {"head": ["refresh/a"]})
    assert len(listed) == 2  # the quirk: the filter was ignored
    assert gh.find_open_pull(REPO, "octo:refresh/a", "main") is None
    github.ignore_head_filter = True  # even when the filter is not applied
    assert gh.find_open_pull(REPO, "octo:refresh/a", "main") is None
    github.ignore_head_filter = False
    action, pull = gh.upsert_pull(REPO, "octo:refresh/a", "main", "Refresh a", "")
    assert action == "created" and pull["head"]["label"] == "octo:refresh/a"
    assert gh.find_open_pull(REPO, "octo:refresh/a", "main")["number"] == pull["number"]
    with pytest.raises(ValueError):
        gh.find_open_pull(REPO, "refresh/a")


def test_find_open_pull_follows_pagination(github: FakeGitHub) -> None:
    for i in range(150):
        github.create_pull(REPO, {"title": f"t{i}", "head": f"octo:b{i}", "base": "main"})
    gh = client(github)
    github.requests.clear()
    # the fake answers the head filter, so force a listing of everything through base only
    found = [p["number"] for p in gh.paginate(f"/repos/{REPO}/pulls?state=open&per_page=100")]
    assert len(found) == 150 and len(github.requests) == 2
    assert gh.find_open_pull(REPO, "octo:b0", "main")["number"] == 1


def test_create_race_answers_422_and_updates_the_existing_pull(github: FakeGitHub) -> None:
    gh = client(github)
    gh.upsert_pull(REPO, "octo:refresh/a", "main", "Refresh a", "first")
    github.stale_listings = 1  # the listing does not show it yet: POST answers 422
    action, pull = gh.upsert_pull(REPO, "octo:refresh/a", "main", "Refresh a", "second")
    assert action == "updated" and pull["number"] == 1 and pull["body"] == "second"
    assert github.methods() == ["GET", "POST", "GET", "POST", "GET", "PATCH"]
    assert len(github.open_pulls(REPO)) == 1


def test_a_closed_pull_request_is_not_reused(github: FakeGitHub) -> None:
    gh = client(github)
    _, first = gh.upsert_pull(REPO, "octo:refresh/a", "main", "Refresh a", "")
    github.update_pull(REPO, first["number"], {"state": "closed"})
    action, second = gh.upsert_pull(REPO, "octo:refresh/a", "main", "Refresh a", "")
    assert action == "created" and second["number"] != first["number"]


def test_missing_head_branch_is_one_clear_line(github: FakeGitHub) -> None:
    github.branch_exists = lambda repo, branch: False
    with pytest.raises(GitHubError) as caught:
        client(github).upsert_pull(REPO, "octo:refresh/gone", "main", "t", "b")
    message = str(caught.value)
    assert "422" in message and "POST /repos/octo/tmdb-genres/pulls" in message
    assert "invalid" in message and "\n" not in message
    assert caught.value.status == 422


def test_refusal_names_the_permission_remedy(github: FakeGitHub) -> None:
    github.fail_with = 403
    gh = GitHubClient(github.url, github.token, permission_remedy="give contents: write")
    with pytest.raises(GitHubError, match=r"403 .* GET /repos/octo/tmdb-genres/pulls.*"
                                          r"give contents: write"):
        gh.upsert_pull(REPO, "octo:refresh/a", "main", "t", "b")
