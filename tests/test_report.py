"""The CI report: pure rendering, and the PR comment against a loopback fake GitHub API."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.github_fake import FakeGitHub, pr_event
from tmdb_genres import cli
from tmdb_genres.ci import report as rp
from tmdb_genres.ci.github import GitHubError

REPO = "octo/tmdb-genres"


def dvc_metrics_diff(base: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    """What ``dvc metrics diff --all --json`` prints for two nested metric files."""
    def flat(prefix: str, obj: Any) -> dict[str, Any]:
        if isinstance(obj, dict):
            out: dict[str, Any] = {}
            for k, v in obj.items():
                out.update(flat(f"{prefix}.{k}" if prefix else k, v))
            return out
        return {prefix: obj}

    a, b = flat("", base), flat("", head)
    entries = {}
    for key in sorted(set(a) | set(b)):
        old, new = a.get(key), b.get(key)
        entry: dict[str, Any] = {"old": old, "new": new}
        if isinstance(old, int | float) and isinstance(new, int | float):
            entry["diff"] = new - old
        entries[key] = entry
    return {"metrics/metrics.json": entries}


def metrics_file(micro: float, macro: float, action: float, drama: float) -> dict[str, Any]:
    """A small metrics.json in the evaluate stage's shape."""
    split = {
        "micro_f1": micro, "macro_f1": macro, "samples_f1": 0.6, "weighted_f1": 0.62,
        "hamming_loss": 0.1, "subset_accuracy": 0.2, "rows": 1000,
        "per_genre": {
            "Action": {"precision": 0.6, "recall": 0.7, "f1": action, "support": 259},
            "Drama": {"precision": 0.6, "recall": 0.7, "f1": drama, "support": 480},
            "Science Fiction": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 90},
        },
    }
    return {"test": split, "validation": dict(split)}


BASE = metrics_file(0.6316, 0.5495, 0.663, 0.7193)
HEAD = metrics_file(0.6402, 0.5410, 0.701, 0.7193)
HEAD["test"]["hamming_loss"] = 0.095


def report_data(**overrides: Any) -> rp.ReportData:
    values: dict[str, Any] = {
        "base": "origin/main",
        "metrics": rp.parse_metrics_diff(dvc_metrics_diff(BASE, HEAD)),
        "params": rp.parse_params_diff(
            {"params.yaml": {"evaluate.threshold": {"old": 0.3, "new": 0.35}}}),
        "stages": rp.parse_repro_log(
            "Stage 'fetch' didn't change, skipping\nStage 'prepare' didn't change, skipping\n"
            "Stage 'featurize' is cached - skipping run, checking out outputs\n"
            "Stage 'train' is cached - skipping run, checking out outputs\n"
            "Running stage 'evaluate':\n"),
        "lock_status": "clean",
        "run_url": "https://github.com/octo/tmdb-genres/actions/runs/42",
        "artifact_url": "https://github.com/octo/tmdb-genres/actions/runs/42/artifacts/9",
    }
    values.update(overrides)
    return rp.ReportData(**values)


# ------------------------------------------------------------------------------ parsing


def test_parse_metrics_diff_reads_dotted_and_nested_keys() -> None:
    dotted = rp.parse_metrics_diff({"m.json": {"test.micro_f1": {"old": 0.5, "new": 0.6,
                                                                  "diff": 0.1}}})
    nested = rp.parse_metrics_diff({"m.json": {"test": {"micro_f1": {"old": 0.5, "new": 0.6}}}})
    assert dotted == nested == [rp.MetricChange("m.json", ("test", "micro_f1"), 0.5, 0.6)]
    assert dotted[0].delta == pytest.approx(0.1)


def test_parse_metrics_diff_skips_non_numbers_and_keeps_new_metrics() -> None:
    changes = rp.parse_metrics_diff({
        "metrics/fetch.json": {"source_kind": {"old": "jsonl", "new": "jsonl"},
                               "movies": {"old": None, "new": 9000}},
        "broken.json": "not a mapping",
    })
    assert changes == [rp.MetricChange("metrics/fetch.json", ("movies",), None, 9000.0)]
    assert changes[0].changed and changes[0].delta is None


def test_parse_params_diff_keeps_only_changed() -> None:
    changes = rp.parse_params_diff({"params.yaml": {
        "evaluate.threshold": {"old": 0.3, "new": 0.35},
        "evaluate.mode": {"old": "tuned", "new": "tuned"},
        "evaluate.per_genre": {"old": {}, "new": {"Documentary": 0.5}},
    }})
    assert [(c.key, c.old, c.new) for c in changes] == [
        ("evaluate.threshold", 0.3, 0.35), ("evaluate.per_genre", {}, {"Documentary": 0.5})]


def test_parse_repro_log_lists_ran_unchanged_and_restored_stages() -> None:
    log = """\
'../shared/data/movies.jsonl.gz' didn't change, skipping
Stage 'fetch' didn't change, skipping
Stage 'prepare' didn't change, skipping
Stage 'featurize' is cached - skipping run, checking out outputs
Stage 'train' didn't change, skipping
Running stage 'evaluate':
> tmdb-genres evaluate --params params.yaml
Updating lock file 'dvc.lock'
"""
    runs = rp.parse_repro_log(log)
    assert runs.ran == ["evaluate"]
    assert runs.unchanged == ["fetch", "prepare", "train"]
    assert runs.restored == ["featurize"]
    assert runs.reused == ["fetch", "prepare", "featurize", "train"]
    assert rp.parse_repro_log("Data and pipelines are up to date.\n").empty


def test_always_changed_stages_are_listed_apart() -> None:
    dvc_yaml = {"stages": {"source": {"cmd": "x", "always_changed": True}, "fetch": {"cmd": "y"}}}
    always = rp.always_changed_stages(dvc_yaml)
    assert always == ["source"]
    runs = rp.parse_repro_log("Running stage 'source':\nRunning stage 'evaluate':\n", always)
    assert runs.ran == ["evaluate"] and runs.always == ["source"]
    text = rp.render_stages(runs)
    assert "- **ran**: `evaluate`" in text and "- **always run**" in text and "`source`" in text


def test_pull_request_from_event_detects_forks() -> None:
    assert rp.pull_request_from_event(pr_event(REPO, 7)) == rp.PullRequest(REPO, 7, False)
    assert rp.pull_request_from_event(pr_event(REPO, 7, head_repo="eve/tmdb-genres")).is_fork
    deleted = pr_event(REPO, 7)
    deleted["pull_request"]["head"]["repo"] = None
    assert rp.pull_request_from_event(deleted).is_fork
    assert rp.pull_request_from_event({"ref": "refs/heads/main", "before": "abc"}) is None
    assert rp.pull_request_from_event({}) is None


def test_run_url_from_env() -> None:
    env = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": REPO,
           "GITHUB_RUN_ID": "42"}
    assert rp.run_url_from_env(env) == f"https://github.com/{REPO}/actions/runs/42"
    assert rp.run_url_from_env({}) is None


# ------------------------------------------------------------------------------ rendering


def test_report_starts_with_marker_and_puts_headline_metrics_first() -> None:
    body = rp.render_report(report_data())
    assert body.splitlines()[0] == rp.MARKER
    sections = [body.index(s) for s in ("### Headline metrics (test)", "### Per-genre F1",
                                        "### Params", "### Stages", "### dvc.lock")]
    assert sections == sorted(sections)
    headline = body[sections[0]:sections[1]]
    rows = [line for line in headline.splitlines() if line.startswith("| **")]
    assert [r.split("|")[1].strip() for r in rows][:2] == ["**test.micro_f1**",
                                                          "**test.macro_f1**"]
    assert "| **test.micro_f1** | 0.6316 | 0.6402 | +0.0086 🟢 |" in body
    assert "| **test.macro_f1** | 0.5495 | 0.5410 | -0.0085 🔴 |" in body
    # lower Hamming loss is better
    assert "| **test.hamming_loss** | 0.1000 | 0.0950 | -0.0050 🟢 |" in body


def test_report_per_genre_shows_changed_genres_with_support() -> None:
    body = rp.render_report(report_data())
    assert "### Per-genre F1 (test): 1 of 3 changed" in body
    assert "| Action | 0.6630 | 0.7010 | +0.0380 🟢 | 259 |" in body
    assert "| Drama |" not in body  # unchanged genres stay out of the table
    # validation changes are not lost: they go to the "other metrics" details
    assert "<summary>Other changed metrics" in body and "validation.micro_f1" in body


def test_report_params_stages_lock_and_links() -> None:
    body = rp.render_report(report_data())
    assert "| `evaluate.threshold` | 0.3000 | 0.3500 |" in body
    assert "- **ran**: `evaluate`" in body
    assert "- **reused**: `fetch`, `prepare`, `featurize`, `train`" in body
    assert "  - of which restored from the run cache: `featurize`, `train`" in body
    assert "The committed `dvc.lock` is up to date" in body
    assert "[Plots and artifacts](https://github.com/octo/tmdb-genres/actions/runs/42/" in body


def test_report_without_changes_says_no_metric_changes() -> None:
    same = rp.parse_metrics_diff(dvc_metrics_diff(BASE, BASE))
    body = rp.render_report(report_data(metrics=same, params=[], lock_status="modified",
                                        stages=rp.StageRuns(unchanged=["fetch", "evaluate"])))
    assert "**No metric changes** against the base. (test.micro_f1 0.6316" in body
    assert "### Headline metrics" not in body and "### Per-genre" not in body
    assert "No param changes." in body
    assert "- **ran**: none" in body
    assert "`dvc repro` changed `dvc.lock`" in body


def test_report_edge_cases_render() -> None:
    body = rp.render_report(report_data(metrics=[], stages=None, lock_status=None,
                                        run_url=None, artifact_url=None))
    assert "No metrics found" in body and "Not recorded" in body and "unknown" in body
    assert "Plots and artifacts" not in body
    generic = rp.parse_metrics_diff({"m.json": {"micro_f1": {"old": 0.1, "new": 0.2}}})
    assert "| **micro_f1** | 0.1000 | 0.2000 | +0.1000 🟢 |" in rp.render_report(
        report_data(metrics=generic))


def test_format_value_escapes_and_truncate_limits() -> None:
    assert rp.format_value("a|b") == "`a\\|b`"
    assert rp.format_value(None) == "—"
    counts = rp.MetricChange("m.json", ("test", "rows"), 100, 120)
    assert rp.format_delta(counts) == "+20"  # a count: no decimals, no better/worse mark
    rate = rp.MetricChange("m.json", ("test", "labels_per_movie"), 2.5, 2.75)
    assert rp.format_delta(rate) == "+0.2500"
    assert rp.format_value(True) == "true"
    assert rp.format_value({"Documentary": 0.5}) == '`{"Documentary": 0.5}`'
    cut = rp.truncate("x" * 100, limit=60)
    assert len(cut) <= 60 and "truncated" in cut


# ------------------------------------------------------------------------------ GitHub API


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


def _args(**overrides: Any) -> argparse.Namespace:
    values = {"comment": "auto"}
    values.update(overrides)
    return argparse.Namespace(**values)


def _env(tmp_path: Path, github: FakeGitHub, event: dict[str, Any] | None) -> dict[str, str]:
    env = {"GITHUB_API_URL": github.url, "GITHUB_TOKEN": github.token,
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}
    if event is not None:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(event), encoding="utf-8")
        env["GITHUB_EVENT_PATH"] = str(path)
    return env


def test_first_run_creates_the_comment_second_updates_it(tmp_path: Path,
                                                          github: FakeGitHub) -> None:
    env = _env(tmp_path, github, pr_event(REPO, 7))
    github.add_comment(REPO, 7, "LGTM")
    first = rp.publish(rp.render_report(report_data()), _args(), env)
    assert first.startswith("report: created the comment on octo/tmdb-genres#7")
    assert github.methods() == ["GET", "POST"]

    second_body = rp.render_report(report_data(params=[]))
    second = rp.publish(second_body, _args(), env)
    assert second.startswith("report: updated the comment")
    assert github.methods() == ["GET", "POST", "GET", "PATCH"]
    comments = github.comments[(REPO, 7)]
    marked = [c for c in comments if rp.MARKER in c["body"]]
    assert len(comments) == 2 and len(marked) == 1  # never a duplicate
    assert marked[0]["body"] == second_body
    assert (tmp_path / "summary.md").read_text().count(rp.MARKER) == 2


def test_marked_comment_on_a_later_page_is_found(tmp_path: Path, github: FakeGitHub) -> None:
    for i in range(230):
        github.add_comment(REPO, 7, f"chatter {i}")
    target = github.add_comment(REPO, 7, f"{rp.MARKER}\nold report")
    github.add_comment(REPO, 7, "more chatter")
    result = rp.publish("new report " + rp.MARKER, _args(), _env(tmp_path, github,
                                                                pr_event(REPO, 7)))
    assert result.startswith("report: updated")
    gets = [path for method, path in github.requests if method == "GET"]
    assert len(gets) == 3 and "page=3" in gets[-1]
    assert github.requests[-1] == ("PATCH", f"/repos/{REPO}/issues/comments/{target}")
    assert github.find(target)["body"] == "new report " + rp.MARKER
    assert len(github.comments[(REPO, 7)]) == 232  # no comment added


def test_fork_pull_request_makes_no_call_and_notes_it(tmp_path: Path,
                                                      github: FakeGitHub,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(tmp_path, github, pr_event(REPO, 7, head_repo="eve/tmdb-genres"))
    result = rp.publish("the report\n", _args(), env)
    assert result == "report: fork pull request, comment skipped"
    assert github.requests == []
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("the report") and "Pull request from a fork" in summary
    assert "::notice" in capsys.readouterr().out


def test_push_run_writes_summary_and_makes_no_call(tmp_path: Path, github: FakeGitHub) -> None:
    result = rp.publish("the report\n", _args(), _env(tmp_path, github, {"ref": "main"}))
    assert "not a pull request" in result
    assert github.requests == []
    assert (tmp_path / "summary.md").read_text() == "the report\n"


def test_api_error_is_one_clear_line(tmp_path: Path, github: FakeGitHub) -> None:
    github.fail_with = 403
    with pytest.raises(GitHubError) as info:
        rp.publish("x", _args(), _env(tmp_path, github, pr_event(REPO, 7)))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"GitHub API answered 403 Forbidden to GET /repos/{REPO}/issues/7/"
                              "comments: Resource not accessible by integration")
    assert "pull-requests: write" in message


def test_unreachable_api_and_missing_token_are_one_line(tmp_path: Path,
                                                        github: FakeGitHub) -> None:
    env = _env(tmp_path, github, pr_event(REPO, 7))
    github.stop()
    with pytest.raises(GitHubError, match="cannot reach the GitHub API"):
        rp.publish("x", _args(), env)
    env.pop("GITHUB_TOKEN")
    with pytest.raises(rp.TmdbGenresError, match="GITHUB_TOKEN is not set"):
        rp.publish("x", _args(), env)


def test_pagination_link_to_another_host_is_refused(tmp_path: Path, github: FakeGitHub) -> None:
    for i in range(120):
        github.add_comment(REPO, 7, f"chatter {i}")
    real_url = github.url
    github.url = "http://127.0.0.2:9"  # the fake now advertises a foreign next page
    env = _env(tmp_path, github, pr_event(REPO, 7))
    env["GITHUB_API_URL"] = real_url
    with pytest.raises(GitHubError, match="outside the API"):
        rp.publish("x", _args(), env)
    assert len(github.requests) == 1


# ------------------------------------------------------------------------------ the command


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def tiny_dvc_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git+dvc repo whose main has a metric and a param, and whose worktree changes both."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")  # dvc must not phone home from tests
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "ci@example.com")
    _git(repo, "config", "user.name", "ci")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("metrics:\n  - metrics.json\nparams:\n  - params.yaml\n")
    (repo / "params.yaml").write_text("evaluate:\n  threshold: 0.3\n")
    (repo / "metrics.json").write_text(json.dumps(BASE))
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    (repo / "params.yaml").write_text("evaluate:\n  threshold: 0.35\n")
    (repo / "metrics.json").write_text(json.dumps(HEAD))
    (repo / "repro.log").write_text("Running stage 'evaluate':\n")
    return repo


def test_command_renders_posts_and_fails_with_one_line(tiny_dvc_repo: Path, github: FakeGitHub,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    for key in [k for k in os.environ if k.startswith("GITHUB_")]:
        monkeypatch.delenv(key)
    for key, value in _env(tiny_dvc_repo.parent, github, pr_event(REPO, 7)).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    argv = ["report", "--base", "main", "--repo", str(tiny_dvc_repo),
            "--repro-log", str(tiny_dvc_repo / "repro.log"),
            "--output", str(tiny_dvc_repo.parent / "out" / "report.md")]
    assert cli.main(argv) == 0
    body = (tiny_dvc_repo.parent / "out" / "report.md").read_text()
    assert "| **test.micro_f1** | 0.6316 | 0.6402 | +0.0086 🟢 |" in body
    assert "| `evaluate.threshold` | 0.3000 | 0.3500 |" in body
    assert "- **ran**: `evaluate`" in body
    assert "[Plots and artifacts](https://github.com/octo/tmdb-genres/actions/runs/42#artifacts)" \
        in body
    assert "dvc.lock` is not committed" in body
    assert github.comments[(REPO, 7)][0]["body"] == body

    github.fail_with = 500
    capsys.readouterr()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("tmdb-genres report: error: GitHub API answered 500")

    assert cli.main([*argv[:2], "no-such-ref", *argv[3:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tmdb-genres report: error: base ref 'no-such-ref' is not in this clone — "
                   "fetch it (actions/checkout with fetch-depth: 0, or `git fetch origin main`)"]


def test_command_compares_undeclared_metrics_files_beside_the_headline(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the headline is a declared DVC metric; metrics/*.json are compared all the same."""
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for key in [k for k in os.environ if k.startswith("GITHUB_")]:
        monkeypatch.delenv(key)
    repo = tmp_path / "repo"
    (repo / "metrics/headline").mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.email", "ci@example.com")
    _git(repo, "config", "user.name", "ci")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=repo, check=True)
    (repo / "dvc.yaml").write_text("metrics:\n  - metrics/headline/test_micro.json\n")
    (repo / "params.yaml").write_text("evaluate:\n  threshold: 0.3\n")
    for name, data in (("metrics.json", BASE), ("gone.json", {"rows": 1})):
        (repo / "metrics" / name).write_text(json.dumps(data))
    (repo / "metrics/headline/test_micro.json").write_text(json.dumps({"f1": 0.6316}))
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    (repo / "metrics/metrics.json").write_text(json.dumps(HEAD))
    (repo / "metrics/gone.json").unlink()
    (repo / "metrics/new.json").write_text(json.dumps({"rows": 2}))
    (repo / "metrics/headline/test_micro.json").write_text(json.dumps({"f1": 0.6402}))
    (repo / "accurate/metrics").mkdir(parents=True)
    (repo / rp.COMPARE_FILE).write_text(json.dumps({"ensemble": {"test": {"micro_f1": 0.65}}}))

    assert rp.metrics_targets("main", repo) == [
        rp.COMPARE_FILE, "metrics/gone.json", "metrics/metrics.json", "metrics/new.json"]
    out = tmp_path / "report.md"
    assert cli.main(["report", "--base", "main", "--repo", str(repo), "--comment", "never",
                     "--output", str(out)]) == 0
    body = out.read_text()
    assert "| **test.micro_f1** | 0.6316 | 0.6402 | +0.0086 🟢 |" in body
    assert "| Action | 0.6630 | 0.7010 | +0.0380 🟢 | 259 |" in body
    assert "`metrics/gone.json` | rows |" in body and "`metrics/new.json` | rows |" in body
    assert "### Accurate model (test)" in body  # the side-by-side file is compared too


def test_report_shows_the_accurate_models_side_by_side() -> None:
    compare = {"accurate/metrics/compare.json": {
        f"{model}.test.{name}": {"old": old, "new": new}
        for model, name, old, new in [("svm", "micro_f1", 0.64, 0.64),
                                      ("ensemble", "micro_f1", 0.65, 0.66),
                                      ("ensemble", "macro_f1", 0.57, 0.58)]}}
    diff = {**dvc_metrics_diff(BASE, HEAD), **compare}
    body = rp.render_report(report_data(metrics=rp.parse_metrics_diff(diff)))
    section = body[body.index("### Accurate model (test)"):]
    assert "| ensemble.micro_f1 | 0.6500 | 0.6600 | +0.0100 🟢 |" in section
    assert "| svm.micro_f1 | 0.6400 | 0.6400 |" in section
    # the accurate model's metrics are not mixed into the fast model's headline table
    assert "ensemble" not in body[:body.index("### Accurate model (test)")]
    assert "### Accurate model" not in rp.render_report(report_data())
    assert "Stale" not in section  # its figures moved with the headline


def test_headline_deltas_say_whether_they_are_beyond_the_bootstrap_noise() -> None:
    base, head = metrics_file(0.6316, 0.5495, 0.663, 0.7193), HEAD
    head = json.loads(json.dumps(head))
    head["test"]["noise"] = {"micro_f1_band": 0.0122, "macro_f1_band": 0.0302}
    head["test_no_metadata"] = {"micro_f1": 0.6373, "macro_f1": 0.5562}
    base["test_no_metadata"] = {"micro_f1": 0.6300, "macro_f1": 0.5562}
    head["test_no_metadata"]["noise"] = {"micro_f1_band": 0.005}
    body = rp.render_report(report_data(
        metrics=rp.parse_metrics_diff(dvc_metrics_diff(base, head))))
    # +0.0086 is inside a band of 0.0122: within noise; the same rule for a loss
    assert "| **test.micro_f1** | 0.6316 | 0.6402 | +0.0086 🟢 (within noise ±0.0122) |" in body
    assert "| **test.macro_f1** | 0.5495 | 0.5410 | -0.0085 🔴 (within noise ±0.0302) |" in body
    # the test split without metadata is a headline row too, here beyond its band
    assert ("| **test_no_metadata.micro_f1** | 0.6300 | 0.6373 | +0.0073 🟢 "
            "(**beyond** noise ±0.0050) |") in body
    assert "| **test_no_metadata.macro_f1** | 0.5562 | 0.5562 | 0 |" in body
    # figures with no band (hamming loss) keep the plain delta
    assert "| **test.hamming_loss** | 0.1000 | 0.0950 | -0.0050 🟢 |" in body
    assert "half the 95% bootstrap interval" in body


def test_report_shows_cross_validated_means_against_the_fold_spread() -> None:
    def crossval(meta: float, text: float) -> dict[str, Any]:
        def variant(micro: float) -> dict[str, Any]:
            return {"micro_f1": {"mean": micro, "sd": 0.004},
                    "macro_f1": {"mean": micro - 0.08, "sd": 0.015}}
        return {"summary": {"metadata": variant(meta), "text": variant(text)},
                "gain_over_text": {"micro_f1": {"mean": round(meta - text, 4), "sd": 0.003}}}

    diff = {"metrics/crossval.json": dvc_metrics_diff(crossval(0.6366, 0.6366),
                                                      crossval(0.6426, 0.6366))
            ["metrics/metrics.json"]}
    body = rp.render_report(report_data(metrics=rp.parse_metrics_diff(diff)))
    assert "### Cross-validated (mean over folds ± fold sd)" in body
    assert ("| metadata.micro_f1 | 0.6366 | 0.6426 ± 0.0040 | +0.0060 🟢 "
            "(**beyond** fold sd ±0.0040) |") in body
    assert "| text.micro_f1 | 0.6366 | 0.6366 ± 0.0040 | 0 |" in body
    assert "| metadata gain over text, micro_f1 | 0.0000 | 0.0060 | +0.0060 🟢 |" in body
    # the crossval figures are not repeated among the other changed metrics
    assert "| `metrics/crossval.json` |" not in body


def test_accurate_figures_that_did_not_move_with_the_headline_are_marked_stale() -> None:
    unchanged = {"accurate/metrics/compare.json": {
        f"{model}.test.micro_f1": {"old": 0.64, "new": 0.64} for model in ("svm", "ensemble")}}
    diff = {**dvc_metrics_diff(BASE, HEAD), **unchanged}
    body = rp.render_report(report_data(metrics=rp.parse_metrics_diff(diff)))
    section = body[body.index("### Accurate model (test)"):]
    assert "| **test.micro_f1** |" in body  # the headline moved ...
    assert "**Stale:**" in section and "make accurate" in section  # ... the accurate row did not
