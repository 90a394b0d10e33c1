"""The refresh command's pure parts: params editing, labels, metrics, rendering."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT
from tests.github_fake import FakeGitHub
from tmdb_genres import drift
from tmdb_genres.ci import refresh
from tmdb_genres.ci import report as rp
from tmdb_genres.ci.github import GitHubClient
from tmdb_genres.errors import TmdbGenresError

PARAMS_TEXT = (ROOT / "params.yaml").read_text(encoding="utf-8")


def test_set_section_keys_changes_values_and_keeps_every_comment() -> None:
    text = refresh.set_section_keys(PARAMS_TEXT, "fetch",
                                    refresh.query_values("2023-01-02", "2023-01-01"))
    fetch = yaml.safe_load(text)["fetch"]
    assert fetch["source"] == "tmdb" and fetch["watch"] == refresh.LIVE_WATCH
    assert fetch["snapshot"] == "2023-01-02" and fetch["release_date_lte"] == "2023-01-01"
    old_lines, new_lines = PARAMS_TEXT.splitlines(), text.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert {b.split(":")[0].strip() for _, b in changed} <= {
        "source", "watch", "snapshot", "release_date_lte"}
    assert '  snapshot: "2023-01-02"          # a label; change it to ask for a fresh pull' \
        in new_lines
    # other sections are untouched, even keys with the same name
    assert yaml.safe_load(text)["prepare"] == yaml.safe_load(PARAMS_TEXT)["prepare"]


def test_set_section_keys_refuses_a_missing_key() -> None:
    with pytest.raises(TmdbGenresError, match=r"fetch\.nope not found"):
        refresh.set_section_keys(PARAMS_TEXT, "fetch", {"nope": "x"})
    with pytest.raises(TmdbGenresError, match=r"train\.languages not found"):
        refresh.set_section_keys(PARAMS_TEXT, "train", {"languages": "x"})


@pytest.mark.parametrize("label", ["2022-12-31", "weekly_7", "v1.2"])
def test_labels_that_name_a_branch(label: str) -> None:
    assert refresh.check_label(label) == label


@pytest.mark.parametrize("label", ["", "-x", "a b", "a..b", "x.lock", "a/b", "x" * 65, "é"])
def test_labels_that_cannot_name_a_branch(label: str) -> None:
    with pytest.raises(TmdbGenresError, match="cannot name a git branch"):
        refresh.check_label(label)


def test_dates_are_checked() -> None:
    assert refresh.check_date("2024-02-29", "--x") == "2024-02-29"
    for bad in ("2023-02-29", "2023-1-01", "today", ""):
        with pytest.raises(TmdbGenresError, match="must be a date YYYY-MM-DD"):
            refresh.check_date(bad, "--x")


def test_merge_runs_counts_a_stage_once() -> None:
    first = rp.parse_repro_log("Running stage 'fetch':\n")
    second = rp.parse_repro_log("Stage 'fetch' didn't change, skipping\n"
                                "Running stage 'prepare':\nStage 'train' is cached - skipping "
                                "run, checking out outputs\n")
    merged = refresh.merge_runs(first, second)
    assert merged.ran == ["fetch", "prepare"] and merged.restored == ["train"]
    assert merged.unchanged == [] and merged.order == ["fetch", "prepare", "train"]


SCORES = {"micro_f1": 0.5, "macro_f1": 0.4, "rows": 80, "hamming_loss": 0.12,
          "labels_per_movie": 2.0, "per_genre": {"Drama": {"f1": 0.6}}}
TEST = {"micro_f1": 0.64, "macro_f1": 0.56, "rows": 1211, "hamming_loss": 0.1}


def _drift() -> drift.SnapshotDrift:
    before = [{"id": 1, "genre_ids": [18]}, {"id": 2, "genre_ids": [27]}]
    after = [*before[1:], {"id": 3, "genre_ids": [27]}, {"id": 4, "genre_ids": [35]}]
    return drift.compare(before, after)


def test_refresh_metrics_hold_sizes_newcomers_gap_and_shares() -> None:
    metrics = refresh.refresh_metrics(_drift(), SCORES, TEST)
    assert metrics["snapshot"] == {"movies": 3, "movies_before": 2, "added": 2, "removed": 1}
    assert "per_genre" not in metrics["newcomers"] and metrics["newcomers"]["rows"] == 80
    assert metrics["newcomers_vs_test"] == {"micro_f1": -0.14, "macro_f1": -0.16,
                                            "hamming_loss": 0.02}
    assert metrics["genre_share"] == {"Comedy": 0.3333, "Drama": 0.0, "Horror": 0.6667}


def test_render_newcomers_puts_the_test_score_beside() -> None:
    text = refresh.render_newcomers(95, 80, SCORES, TEST, {"micro_f1": 0.65, "rows": 1300})
    assert "never saw the 95 movies" in text and "80 of them" in text
    assert "| micro_f1 | 0.6400 | 0.5000 | -0.1400 🔴 | 0.6500 |" in text
    assert "| hamming_loss | 0.1000 | 0.1200 | +0.0200 🔴 | — |" in text
    assert "refreshed model, its test split (1,300)" in text
    assert "not scored" in refresh.render_newcomers(3, 0, None, TEST, {})


def test_body_and_pull_request_text() -> None:
    before = refresh.Query("tmdb", "2021-12-31", "2021-12-31")
    after = refresh.Query("tmdb", "2022-12-31", "2022-12-31")
    body = refresh.render_body(before, after, _drift(), "NEWCOMERS", [], "REPORT")
    assert body.startswith(refresh.MARKER + "\n\n## tmdb-genres: snapshot refresh `2022-12-31`")
    assert body.index("NEWCOMERS") < body.index("### Data drift") < body.index("REPORT")
    text = refresh.pr_body(before, after, _drift(), "refresh/2022-12-31", "main")
    assert "do not trigger other workflows" in text and "close and reopen" in text
    assert "git push origin HEAD:refresh/2022-12-31" in text
    assert refresh.pr_title(after).endswith("(released up to 2022-12-31)")


def test_publishing_needs_the_github_settings() -> None:
    with pytest.raises(TmdbGenresError, match=r"GITHUB_TOKEN and GITHUB_REPOSITORY.*--dry-run"):
        refresh.github_settings({"GITHUB_TOKEN": "t"})
    assert refresh.github_settings({"GITHUB_TOKEN": "t", "GITHUB_REPOSITORY": "o/r"}) == (
        "https://api.github.com", "t", "o/r")


def test_older_refresh_pull_requests_are_closed_as_superseded() -> None:
    repo = "octo/tmdb-genres"
    with FakeGitHub() as github:
        for head in ("octo:refresh/2022-12-24", "octo:feature", "someone:refresh/x",
                     "octo:refresh/2022-12-31"):
            github.create_pull(repo, {"title": head, "head": head, "base": "main"})
        github.create_pull(repo, {"title": "other base", "head": "octo:refresh/y",
                                  "base": "release"})
        client = GitHubClient(github.url, github.token)
        closed = refresh.close_superseded(client, repo, "main", "refresh/2022-12-31", 4)
        assert closed == [1]
        states = {p["head"]["label"]: p["state"] for p in github.pulls[repo]}
        assert states == {"octo:refresh/2022-12-24": "closed", "octo:feature": "open",
                          "someone:refresh/x": "open", "octo:refresh/2022-12-31": "open",
                          "octo:refresh/y": "open"}
        assert github.comments[(repo, 1)][0]["body"].startswith("Superseded by #4")
        assert refresh.close_superseded(client, repo, "main", "refresh/2022-12-31", 4) == []


def test_failure_line_prefers_the_stage_error() -> None:
    lines = ["Running stage 'fetch':\n", "tmdb-genres fetch: error: bad token — fix it\n",
             "ERROR: failed to reproduce 'fetch': exited with 2\n"]
    assert refresh.failure_line(lines) == "tmdb-genres fetch: error: bad token — fix it"
    assert refresh.failure_line(lines[2:]) == "ERROR: failed to reproduce 'fetch': exited with 2"
    assert refresh.failure_line(["\n"]) == "no output"
