"""Snapshot refresh: move the live TMDB query forward and open one pull request showing the drift.

Run from a checkout of the base branch (``main``) whose DVC outputs can be restored:

1. ``dvc checkout`` restores the base's outputs from the DVC cache (``dvc repro`` rebuilds
   them when it cannot); the base snapshot, model and test scores are kept in memory.
2. ``params.yaml`` gets the new query (``fetch.source: tmdb``, ``fetch.snapshot`` = the label,
   ``fetch.release_date_lte``; comments kept) and ``dvc repro fetch`` pulls it from the TMDB
   API (``TMDB_API_TOKEN``, ``TMDB_API_BASE``). With no new movies the command says so, puts
   the workspace back and opens nothing.
3. ``dvc repro`` retrains; the base's model is scored on the movies that are new in this
   snapshot (it never saw them) and that evaluation is written to ``metrics/refresh.json``, a
   metric ``dvc metrics diff`` shows.
4. ``params.yaml``, ``dvc.lock`` and ``metrics/`` are committed to ``refresh/<label>`` and
   force-pushed; DVC outputs are pushed when a DVC remote is configured.
5. One pull request from that branch is opened, or the open one updated, and the report
   (metric diff as ``tmdb-genres report`` renders it, plus the drift) is posted as one comment
   on it, through the GitHub REST API (``$GITHUB_API_URL``, ``$GITHUB_TOKEN``,
   ``$GITHUB_REPOSITORY``).

``--dry-run`` stops after step 3 and prints the report: nothing is committed, pushed or posted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .. import paths
from ..drift import SnapshotDrift, compare, newcomers, render_drift
from ..errors import TmdbGenresError
from ..io import atomic_text, read_json, read_jsonl, write_json
from ..params import load_params
from . import report as rp
from .github import DEFAULT_API, GitHubClient

MARKER = "<!-- tmdb-genres-refresh -->"
BRANCH_PREFIX = "refresh/"
LIVE_SOURCE = "tmdb"
LIVE_WATCH = "src/tmdb_genres/sources/tmdb_api.py"
BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
# metrics of the newcomers' evaluation, in display order (hamming_loss: lower is better)
NEWCOMER_METRICS: tuple[str, ...] = (
    "micro_f1", "macro_f1", "samples_f1", "weighted_f1", "micro_precision", "micro_recall",
    "hamming_loss", "subset_accuracy",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
COMMITTED = ("params.yaml", "dvc.lock", "metrics")
PERMISSION_REMEDY = ("give the job `permissions: contents: write, pull-requests: write`, pass "
                     "GITHUB_TOKEN, and allow GitHub Actions to create pull requests "
                     "(Settings → Actions → General → Workflow permissions)")


# ---------------------------------------------------------------------------------------------
# Pure parts


def check_date(value: str, name: str) -> str:
    """``value`` if it is a real ``YYYY-MM-DD`` date, else one clear error."""
    try:
        if _DATE.match(value):
            dt.date.fromisoformat(value)
            return value
    except ValueError:
        pass
    raise TmdbGenresError(f"{name} must be a date YYYY-MM-DD, got {value!r}",
                          f"pass {name} like 2022-12-31")


def check_label(label: str) -> str:
    """``label`` if it can name the snapshot and the branch ``refresh/<label>``."""
    if not _LABEL.match(label) or ".." in label or label.endswith((".", ".lock")):
        raise TmdbGenresError(
            f"snapshot label {label!r} cannot name a git branch",
            "use letters, digits, '.', '_' and '-' (up to 64), e.g. a date: 2022-12-31")
    return label


def set_section_keys(text: str, section: str, values: Mapping[str, Any]) -> str:
    """``params.yaml`` text with ``section.key`` lines set to ``values``; comments are kept.

    Each value is written as a YAML scalar (strings double-quoted); a key that is not a
    two-space-indented line of ``section`` is an error.
    """
    for key, value in values.items():
        scalar = json.dumps(value)
        pattern = re.compile(
            rf"(^{re.escape(section)}:[ \t]*(?:#.*)?\n(?:[ \t#].*\n|\n)*?  {re.escape(key)}:)"
            r"[ \t]*[^#\n]*?([ \t]*(?:#.*)?$)", re.M)
        text, count = pattern.subn(lambda m, s=scalar: f"{m.group(1)} {s}{m.group(2)}", text,
                                   count=1)
        if count != 1:
            raise TmdbGenresError(f"params.yaml: {section}.{key} not found",
                                  f"add {section}.{key} to params.yaml (see docs/refresh.md)")
    data = yaml.safe_load(text)
    for key, value in values.items():
        if data.get(section, {}).get(key) != value:
            raise TmdbGenresError(f"params.yaml: could not set {section}.{key} to {value!r}",
                                  f"edit {section}.{key} in params.yaml by hand")
    return text


def query_values(label: str, release_date_lte: str) -> dict[str, str]:
    """The ``fetch`` keys a refresh sets: the live source and the new query."""
    return {"source": LIVE_SOURCE, "watch": LIVE_WATCH, "snapshot": label,
            "release_date_lte": release_date_lte}


def score_examples(model: Any, examples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Multi-label scores of ``model`` (a ``GenreModel``) on prepared examples."""
    from ..evaluate import multilabel_metrics
    from ..featurize import label_matrix
    from ..model import apply_thresholds

    probabilities = model.probabilities([e["text"] for e in examples])
    decisions = apply_thresholds(probabilities, model.thresholds, model.at_least_one)
    return multilabel_metrics(label_matrix(examples, model.genres), decisions, model.genres)


def _headline(scores: Mapping[str, Any]) -> dict[str, Any]:
    keys = (*NEWCOMER_METRICS, "rows", "labels_per_movie", "predicted_per_movie")
    return {k: scores[k] for k in keys if k in scores}


def refresh_metrics(drift: SnapshotDrift, newcomer_scores: Mapping[str, Any],
                    base_test: Mapping[str, Any]) -> dict[str, Any]:
    """What ``metrics/refresh.json`` holds: snapshot sizes, the base model on the newcomers,
    its gap to its own test score, and every genre's share of the new snapshot."""
    newcomer = _headline(newcomer_scores)
    gap = {k: round(newcomer[k] - base_test[k], 4) for k in NEWCOMER_METRICS
           if k in newcomer and isinstance(base_test.get(k), int | float)}
    return {
        "snapshot": {"movies": drift.movies_after, "movies_before": drift.movies_before,
                     "added": len(drift.added), "removed": len(drift.removed)},
        "newcomers": newcomer,
        "newcomers_vs_test": gap,
        "genre_share": {g.genre: g.share_after for g in sorted(drift.genres,
                                                               key=lambda g: g.genre)},
    }


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return f"{value:.4f}" if isinstance(value, float) else "—"


def render_newcomers(added: int, usable: int, newcomer_scores: Mapping[str, Any] | None,
                     base_test: Mapping[str, Any], head_test: Mapping[str, Any]) -> str:
    """Markdown: the base model on the newcomers next to its test score (and the new model's)."""
    title = "### Is the model going stale? The model on `main` on the new movies"
    if not newcomer_scores or not usable:
        return (f"{title}\n\nNone of the {added:,} new movies is usable (an overview long "
                "enough and a known genre), so the model was not scored on them.")
    lines = [title, "",
             f"The model on `main` never saw the {added:,} movies that are new in this snapshot; "
             f"{usable:,} of them have an overview long enough and a known genre.", "",
             f"| metric | `main` model, `main` test split ({_cell(base_test.get('rows'))}) | "
             f"`main` model, new movies ({usable:,}) | Δ | refreshed model, its test split "
             f"({_cell(head_test.get('rows'))}) |",
             "|:--|--:|--:|--:|--:|"]
    for key in NEWCOMER_METRICS:
        old, new = base_test.get(key), newcomer_scores.get(key)
        delta = rp.format_delta(rp.MetricChange("", (key,), old, new)) \
            if isinstance(old, int | float) and isinstance(new, int | float) else "—"
        lines.append(f"| {key} | {_cell(old)} | {_cell(new)} | {delta} | "
                     f"{_cell(head_test.get(key))} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Query:
    """One snapshot's query as params.yaml states it."""

    source: str
    label: str
    release_date_lte: str

    def describe(self) -> str:
        """``label`` (source, release date end) for a sentence."""
        where = "the TMDB API" if self.source == LIVE_SOURCE else f"`{self.source}`"
        return f"`{self.label}` ({where}, released up to {self.release_date_lte})"


def render_body(before: Query, after: Query, drift: SnapshotDrift, newcomer_part: str,
                examples: Sequence[Mapping[str, Any]], report_part: str) -> str:
    """The refresh comment: marker, what moved, the newcomers, the drift, the metric report."""
    parts = [MARKER, f"## tmdb-genres: snapshot refresh `{after.label}`",
             f"Snapshot {before.describe()} → {after.describe()}.", newcomer_part,
             render_drift(drift, examples), report_part]
    return rp.truncate("\n\n".join(parts) + "\n")


def pr_title(after: Query) -> str:
    """The pull request's title."""
    return f"Refresh the TMDB snapshot to {after.label} (released up to {after.release_date_lte})"


def pr_body(before: Query, after: Query, drift: SnapshotDrift, branch: str,
            base_branch: str) -> str:
    """The pull request's description, with how to run CI on it."""
    return "\n".join([
        f"Moves the snapshot from {before.describe()} to {after.describe()}: "
        "`tmdb-genres refresh` set the query in `params.yaml`, ran `dvc repro` against the TMDB "
        "API and committed `params.yaml`, `dvc.lock` and `metrics/` (with "
        "`metrics/refresh.json`, the model on "
        f"`{base_branch}` scored on the new movies).",
        "",
        f"- movies: {drift.movies_before:,} → {drift.movies_after:,} "
        f"({len(drift.added):,} added, {len(drift.removed):,} removed)",
        "- the metric and drift report is the comment below, updated on every refresh run",
        "",
        "**CI has not run on this pull request.** Pull requests opened with a workflow's "
        "`GITHUB_TOKEN` do not trigger other workflows. To run CI, close and reopen this pull "
        f"request, or push a commit to `{branch}` (for example "
        f"`git commit --allow-empty -m \"Run CI\" && git push origin HEAD:{branch}`).",
        "",
        f"Merge to move `{base_branch}` to this snapshot; close to skip it. The next refresh "
        "run with the same label replaces this branch.",
    ]) + "\n"


def superseded(pulls: Sequence[Mapping[str, Any]], owner: str, branch: str) -> list[int]:
    """Numbers of the other open refresh pull requests (``refresh/*`` branches of ``owner``)."""
    numbers = []
    for pull in pulls:
        head = pull.get("head") or {}
        head_owner = ((head.get("repo") or {}).get("owner") or {}).get("login")
        ref = str(head.get("ref") or "")
        if head_owner == owner and ref.startswith(BRANCH_PREFIX) and ref != branch:
            numbers.append(int(pull["number"]))
    return sorted(numbers)


def close_superseded(client: GitHubClient, repo: str, base_branch: str, branch: str,
                     number: int) -> list[int]:
    """Close the older open refresh pull requests, each with a comment naming the new one."""
    owner = repo.split("/")[0]
    closed = superseded(client.open_pulls(repo, base_branch), owner, branch)
    for old in closed:
        client.close_pull(repo, old, f"Superseded by #{number} (`{branch}`), a newer snapshot "
                                     "refresh; closed by `tmdb-genres refresh`.")
    return closed


def merge_runs(first: rp.StageRuns, second: rp.StageRuns) -> rp.StageRuns:
    """Stage runs of two successive ``dvc repro`` calls (a stage reported by both counts once,
    as the first call saw it)."""
    merged = rp.StageRuns()
    for runs in (first, second):
        for stage in runs.order:
            if stage in merged.order:
                continue
            merged.order.append(stage)
            for kind in ("ran", "always", "restored", "unchanged"):
                if stage in getattr(runs, kind):
                    getattr(merged, kind).append(stage)
    return merged


# ---------------------------------------------------------------------------------------------
# I/O: git, dvc, GitHub


def _run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if check and result.returncode:
        last = ((result.stderr or result.stdout).strip().splitlines() or ["no output"])[-1]
        raise TmdbGenresError(f"`{' '.join(cmd[:3])} …` failed: {last}",
                              "run it by hand in the checkout to see why")
    return result


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git in ``cwd``; its stdout (one clear error when it fails and ``check``)."""
    return _run(["git", *args], cwd, check).stdout


def dvc_logged(args: Sequence[str], cwd: Path, log: Path, what: str, remedy: str) -> str:
    """Run ``dvc <args>``, streaming its output to stderr and to ``log``; return the output."""
    cmd = [sys.executable, "-m", "dvc", *args]
    lines = []
    log.parent.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc, open(log, "w", encoding="utf-8") as handle:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            handle.write(line)
            sys.stderr.write(line)
    if proc.returncode:
        raise TmdbGenresError(f"{what} failed: {failure_line(lines)}", remedy)
    return "".join(lines)


_STAGE_ERROR = re.compile(r"^tmdb-genres [a-z-]+: error: ")


def failure_line(lines: Sequence[str]) -> str:
    """The most telling line of a failed dvc run: the stage's own one-line error, else DVC's."""
    text = [x.strip() for x in lines if x.strip()]
    for candidates in ([x for x in text if _STAGE_ERROR.match(x)],
                       [x for x in text if x.startswith("ERROR")], text):
        if candidates:
            return candidates[-1][:400]
    return "no output"


def read_query(params_path: Path) -> Query:
    """The fetch query of a params file."""
    fetch = load_params(params_path).fetch
    return Query(fetch.source, fetch.snapshot, fetch.release_date_lte)


@dataclass
class Baseline:
    """The base branch's outputs, held in memory before the refresh replaces them."""

    query: Query
    movies: list[dict[str, Any]]
    model: Any  # GenreModel
    test: dict[str, Any]


BASELINE_FILES = (paths.RAW_SNAPSHOT, paths.VECTORIZER, paths.MODEL, paths.THRESHOLDS,
                  paths.METRICS)


def load_baseline(cwd: Path, log: Path) -> Baseline:
    """Restore the base's outputs and read them.

    ``dvc checkout`` restores them from the DVC cache (restored by CI, or pulled from the DVC
    remote); only when that fails does ``dvc repro`` rebuild them (run cache, or a run).
    """
    from ..model import GenreModel

    checkout = _run([sys.executable, "-m", "dvc", "checkout"], cwd, check=False)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(checkout.stdout + checkout.stderr, encoding="utf-8")
    if checkout.returncode or not all((cwd / f).is_file() for f in BASELINE_FILES):
        try:
            dvc_logged(["repro"], cwd, log, "`dvc repro` of the base",
                       "the base's outputs must be restorable: configure the DVC remote "
                       "(DVC_REMOTE_URL) or make fetch.source reachable")
        except TmdbGenresError:
            git(cwd, "checkout", "--", "dvc.lock", "metrics", check=False)  # what dvc removed
            raise
    movies = read_jsonl(cwd / paths.RAW_SNAPSHOT)
    model = GenreModel.load(cwd / paths.VECTORIZER, cwd / paths.MODEL, cwd / paths.THRESHOLDS)
    test = read_json(cwd / paths.METRICS)["test"]
    return Baseline(read_query(cwd / paths.PARAMS), movies, model, test)


def check_clean(cwd: Path) -> None:
    """Fail when the files a refresh rewrites have uncommitted changes."""
    dirty = git(cwd, "status", "--porcelain", "--", *COMMITTED).strip()
    if dirty:
        raise TmdbGenresError(f"uncommitted changes in {', '.join(COMMITTED)}: "
                              f"{dirty.splitlines()[0].strip()}",
                              "commit or stash them; a refresh starts from the base branch")


def write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically."""
    with atomic_text(path) as handle:
        handle.write(text)


def restore_workspace(cwd: Path, params_text: str) -> None:
    """Put params.yaml, dvc.lock, metrics/ and the DVC outputs back as the base had them."""
    write_text(cwd / paths.PARAMS, params_text)
    git(cwd, "checkout", "--", "dvc.lock", "metrics")
    _run([sys.executable, "-m", "dvc", "checkout", "--quiet"], cwd, check=False)


def dvc_remote_configured(cwd: Path) -> bool:
    """Whether ``dvc remote list`` names any remote."""
    result = _run([sys.executable, "-m", "dvc", "remote", "list"], cwd, check=False)
    return result.returncode == 0 and bool(result.stdout.strip())


def commit(cwd: Path, branch: str, message: str) -> str:
    """Commit the refresh on ``branch``, started from the current commit; return its sha."""
    git(cwd, "checkout", "-q", "-B", branch)
    git(cwd, "add", "--", *COMMITTED)
    identity = []
    if not git(cwd, "config", "user.email", check=False).strip():
        identity = ["-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}"]
    git(cwd, *identity, "commit", "-q", "-m", message)
    return git(cwd, "rev-parse", "HEAD").strip()


def _today() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


def github_settings(env: Mapping[str, str]) -> tuple[str, str, str]:
    """(API root, token, owner/name) for the pull request; one clear error if missing."""
    token, repo = env.get("GITHUB_TOKEN"), env.get("GITHUB_REPOSITORY")
    if not token or not repo or "/" not in repo:
        raise TmdbGenresError(
            "GITHUB_TOKEN and GITHUB_REPOSITORY (owner/name) must be set to open the pull request",
            "pass them in the workflow step's env, or use --dry-run to preview the refresh")
    return env.get("GITHUB_API_URL") or DEFAULT_API, token, repo


# ---------------------------------------------------------------------------------------------
# Command


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the refresh command's options to ``parser``."""
    parser.add_argument("--label", default=None,
                        help="snapshot label, also the branch refresh/<label> "
                             "(default: the release-date end)")
    parser.add_argument("--release-date-lte", default=None,
                        help="last primary release date of the pull, YYYY-MM-DD "
                             "(default: today, UTC)")
    parser.add_argument("--base-branch", default="main",
                        help="branch the pull request targets and the metrics are compared "
                             "with (default: main)")
    parser.add_argument("--remote", default="origin",
                        help="git remote to push refresh/<label> to (default: origin)")
    parser.add_argument("--push-dvc", choices=("auto", "never"), default="auto",
                        help="auto: `dvc push --run-cache` when a DVC remote is configured")
    parser.add_argument("--dry-run", action="store_true",
                        help="refresh and print the report; commit, push and post nothing")
    parser.add_argument("--output", type=Path, default=None, help="also write the report here")
    parser.add_argument("--log-dir", type=Path, default=None,
                        help="where the dvc logs go (default: $RUNNER_TEMP or .dvc/tmp)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="project root")
    return parser


def _say(line: str, summary: str | None) -> None:
    print(line)
    rp.append_step_summary(summary, line)


def main(args: argparse.Namespace) -> None:
    """Refresh the snapshot; open or update the pull request (see the module docstring)."""
    env = os.environ
    cwd = Path(args.repo)
    summary = env.get("GITHUB_STEP_SUMMARY")
    lte = check_date(args.release_date_lte or _today(), "--release-date-lte")
    label = check_label(args.label or lte)
    branch = f"{BRANCH_PREFIX}{label}"
    settings = None if args.dry_run else github_settings(env)
    base_ref = f"{args.remote}/{args.base_branch}"
    rp.check_base(base_ref, cwd)
    check_clean(cwd)
    logs = Path(args.log_dir or env.get("RUNNER_TEMP") or cwd / ".dvc" / "tmp")

    print(f"refresh: restoring the outputs of {base_ref}", file=sys.stderr)
    base = load_baseline(cwd, logs / "dvc-repro-base.log")
    params_path = cwd / paths.PARAMS
    params_text = params_path.read_text(encoding="utf-8")
    write_text(params_path, set_section_keys(params_text, "fetch", query_values(label, lte)))
    after = read_query(params_path)
    print(f"refresh: pulling {after.describe()}", file=sys.stderr)
    try:
        fetch_log = dvc_logged(["repro", "fetch"], cwd, logs / "dvc-repro-fetch.log",
                               "`dvc repro fetch` (the TMDB pull)",
                               "check TMDB_API_TOKEN and the network, then rerun")
    except TmdbGenresError:
        restore_workspace(cwd, params_text)
        raise
    movies = read_jsonl(cwd / paths.RAW_SNAPSHOT)
    drift = compare(base.movies, movies)
    if not drift.added:
        restore_workspace(cwd, params_text)
        removed = f"; {len(drift.removed):,} removed" if drift.removed else ""
        _say(f"refresh: no new movies: the {drift.movies_after:,} movies of snapshot "
             f"{after.describe()} are all in {base.query.describe()}{removed}; nothing "
             "committed, no pull request opened", summary)
        return

    rest_log = dvc_logged(["repro"], cwd, logs / "dvc-repro.log", "`dvc repro`",
                          "run `dvc repro` in the checkout to see why")
    from ..prepare import clean

    new_movies = newcomers(base.movies, movies)
    examples, _ = clean(list(new_movies), load_params(params_path).prepare)
    scores = score_examples(base.model, examples) if examples else None
    write_json(cwd / paths.REFRESH_METRICS, refresh_metrics(drift, scores or {}, base.test))
    head_test = read_json(cwd / paths.METRICS)["test"]
    newest = sorted(new_movies, key=lambda m: (str(m.get("release_date") or ""), m["id"]),
                    reverse=True)

    sha = None
    if not args.dry_run:
        sha = commit(cwd, branch, f"Refresh the TMDB snapshot to {label} (released up to "
                     f"{lte}): {len(drift.added):,} new movies")
        if args.push_dvc == "auto" and dvc_remote_configured(cwd):  # data first, then the branch
            dvc_logged(["push", "--run-cache"], cwd, logs / "dvc-push.log", "`dvc push`",
                       "check the DVC remote's credentials")
        git(cwd, "push", "--force", "-q", args.remote, f"HEAD:refs/heads/{branch}")
    data = rp.collect(argparse.Namespace(repo=cwd, base=base_ref, repro_log=None,
                                         artifact_url=None, split="test"), env)
    data.stages = merge_runs(rp.parse_repro_log(fetch_log), rp.parse_repro_log(rest_log))
    data.artifact_url = None  # the refresh uploads no plots; the run link stays
    report_part = rp.render_report(data, marker="", title="Metrics and params against "
                                   f"`{args.base_branch}`")
    newcomer_part = render_newcomers(len(drift.added), len(examples), scores, base.test,
                                     head_test)
    body = render_body(base.query, after, drift, newcomer_part, newest, report_part)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(body, encoding="utf-8")
    print(body)
    rp.append_step_summary(summary, body)
    if args.dry_run or settings is None:
        print("refresh: dry run; nothing committed, pushed or posted")
        return
    for line in publish(settings, branch, args.base_branch, sha or "?",
                        pr_title(after), pr_body(base.query, after, drift, branch,
                                                 args.base_branch), body):
        _say(line, summary)


def publish(settings: tuple[str, str, str], branch: str, base_branch: str, sha: str,
            title: str, description: str, body: str) -> list[str]:
    """Open or update the pull request from ``branch``, upsert its report comment and close
    older refresh pull requests; return the lines that say what happened."""
    api, token, repo = settings
    client = GitHubClient(api, token, user_agent="tmdb-genres-refresh",
                          permission_remedy=PERMISSION_REMEDY)
    action, pull = client.upsert_pull(repo, f"{repo.split('/')[0]}:{branch}", base_branch,
                                      title, description)
    number = int(pull["number"])
    comment_action, url = client.upsert_comment(repo, number, body, MARKER)
    closed = close_superseded(client, repo, base_branch, branch, number)
    lines = [f"refresh: {action} pull request {repo}#{number} ({pull.get('html_url')}) from "
             f"{branch} at {sha[:12]}; {comment_action} its report comment: {url}"]
    if closed:
        lines.append("refresh: closed the superseded refresh pull requests "
                     + ", ".join(f"#{n}" for n in closed))
    return lines
