"""CI report: compare metrics and params with a base ref and post one pull-request comment.

Runs ``dvc metrics diff --json`` and ``dvc params diff --json`` against ``--base``, reads
which stages ``dvc repro`` ran or reused (from its saved output), checks that the committed
``dvc.lock`` is up to date, and renders markdown: headline metrics first, per-genre F1 deltas,
the params diff, the stages and the lock status, with a link to the run's artifacts.

The markdown is printed, written to ``--output`` and appended to ``$GITHUB_STEP_SUMMARY``
when set. On a pull request it is posted as **one** comment, found by a hidden marker and
updated in place, through the GitHub REST API (``$GITHUB_API_URL``, ``$GITHUB_TOKEN``).
Pull requests from forks get a read-only token: the comment is skipped with a notice.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TmdbGenresError
from .github import DEFAULT_API, GitHubClient

MARKER = "<!-- tmdb-genres-report -->"
TITLE = "tmdb-genres: pipeline report"

# Headline metrics, in display order, and the ones where lower is better.
HEADLINE: tuple[str, ...] = (
    "micro_f1",
    "macro_f1",
    "samples_f1",
    "weighted_f1",
    "micro_precision",
    "micro_recall",
    "macro_precision",
    "macro_recall",
    "hamming_loss",
    "subset_accuracy",
)
LOWER_IS_BETTER = frozenset({"hamming_loss"})
# Metric names whose direction is known: higher is better (lower for LOWER_IS_BETTER).
_SCORE_NAME = re.compile(r"(f1|precision|recall|accuracy)$")
PER_GENRE_KEY = "per_genre"
# The accurate model's side-by-side metrics (accurate/dvc.yaml), shown in a section of their own.
COMPARE_FILE = "accurate/metrics/compare.json"
COMPARE_MODELS: tuple[str, ...] = ("svm", "embeddings", "ensemble")
# Noise: evaluate writes each test figure's bootstrap band under "<split>.noise"; the
# crossval stage writes every variant's mean and fold sd under "summary" of this file.
NOISE_KEY = "noise"
NO_METADATA = "_no_metadata"  # suffix of the test split scored with its metadata removed
CROSSVAL_FILE = "metrics/crossval.json"
CROSSVAL_VARIANTS: tuple[str, ...] = ("metadata", "text", "metadata_removed")

# GitHub refuses comments longer than this many characters.
MAX_COMMENT_CHARS = 65_000

_REPRO_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ran", re.compile(r"^Running stage '(?P<stage>[^']+)'")),
    ("restored", re.compile(r"^Stage '(?P<stage>[^']+)' is cached - skipping run")),
    ("unchanged", re.compile(r"^Stage '(?P<stage>[^']+)' didn't change, skipping")),
)


# ---------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class MetricChange:
    """One numeric metric at base (``old``) and head (``new``); either may be missing."""

    file: str
    key: tuple[str, ...]
    old: float | int | None
    new: float | int | None

    @property
    def delta(self) -> float | int | None:
        """``new - old`` when both exist."""
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    @property
    def changed(self) -> bool:
        """Whether the value differs between base and head (a value appearing counts)."""
        if self.old is None or self.new is None:
            return self.old is not self.new
        return not math.isclose(self.old, self.new, rel_tol=0.0, abs_tol=1e-12)


@dataclass(frozen=True)
class ParamChange:
    """One parameter that differs between base and head."""

    file: str
    key: str
    old: Any
    new: Any


@dataclass
class StageRuns:
    """What ``dvc repro`` did with each stage, in the order it reported them."""

    ran: list[str] = field(default_factory=list)
    always: list[str] = field(default_factory=list)  # always_changed stages (cheap checks)
    restored: list[str] = field(default_factory=list)  # from the run cache
    unchanged: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # every stage, as the log named them

    @property
    def reused(self) -> list[str]:
        """Stages that did not run (unchanged or restored from the run cache), in log order."""
        reused = set(self.unchanged) | set(self.restored)
        return [s for s in self.order if s in reused]

    @property
    def empty(self) -> bool:
        """True when the log named no stage at all."""
        return not (self.ran or self.always or self.restored or self.unchanged)


@dataclass
class ReportData:
    """Everything the report shows; built by I/O code, rendered by pure functions."""

    base: str
    metrics: list[MetricChange]
    params: list[ParamChange]
    stages: StageRuns | None = None
    lock_status: str | None = None  # "clean", "modified", "untracked" or None (unknown)
    run_url: str | None = None
    artifact_url: str | None = None
    split: str = "test"
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PullRequest:
    """The pull request a workflow run belongs to."""

    repo: str  # owner/name of the base repository
    number: int
    is_fork: bool


# ---------------------------------------------------------------------------------------------
# Parsing (pure)


def _number(value: Any) -> float | int | None:
    """``value`` when it is a real number, a count staying an int (bools and NaN: missing)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _is_diff_entry(value: Any) -> bool:
    return isinstance(value, Mapping) and ("old" in value or "new" in value)


def _walk(prefix: tuple[str, ...], value: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield ``(key path, leaf)`` for nested JSON, stopping at old/new diff entries."""
    if isinstance(value, Mapping) and not _is_diff_entry(value):
        for key, child in value.items():
            yield from _walk((*prefix, *str(key).split(".")), child)
    else:
        yield prefix, value


def parse_metrics_diff(diff: Mapping[str, Any]) -> list[MetricChange]:
    """Turn ``dvc metrics diff --json`` output (``{file: {key: {old, new, diff}}}``) into changes.

    Keys may be dotted (as dvc flattens them) or nested; non-numeric leaves are ignored.
    """
    changes = []
    for file, entries in diff.items():
        if not isinstance(entries, Mapping):
            continue
        for key, entry in _walk((), entries):
            if not _is_diff_entry(entry):
                continue
            old, new = _number(entry.get("old")), _number(entry.get("new"))
            if old is None and new is None:
                continue
            changes.append(MetricChange(str(file), key, old, new))
    return changes


def parse_params_diff(diff: Mapping[str, Any]) -> list[ParamChange]:
    """Turn ``dvc params diff --json`` output (``{file: {key: {old, new}}}``) into changes."""
    changes = []
    for file, entries in diff.items():
        if not isinstance(entries, Mapping):
            continue
        for key, entry in _walk((), entries):
            if _is_diff_entry(entry) and entry.get("old") != entry.get("new"):
                changes.append(ParamChange(str(file), ".".join(key), entry.get("old"),
                                           entry.get("new")))
    return changes


def parse_repro_log(text: str, always: Iterable[str] = ()) -> StageRuns:
    """Which stages a saved ``dvc repro`` output says ran, were unchanged or came from cache.

    Stages named in ``always`` (``always_changed: true`` in dvc.yaml) run on every repro, so
    they are listed apart from the stages that ran because their inputs changed.
    """
    always = set(always)
    runs = StageRuns()
    for raw in text.splitlines():
        line = raw.strip()
        for kind, pattern in _REPRO_PATTERNS:
            match = pattern.match(line)
            if match:
                names = runs.always if kind == "ran" and match["stage"] in always \
                    else getattr(runs, kind)
                if match["stage"] not in names:
                    names.append(match["stage"])
                if match["stage"] not in runs.order:
                    runs.order.append(match["stage"])
                break
    return runs


def always_changed_stages(dvc_yaml: Mapping[str, Any]) -> list[str]:
    """Names of the stages of a parsed ``dvc.yaml`` that declare ``always_changed: true``."""
    stages = dvc_yaml.get("stages") or {}
    return [name for name, stage in stages.items()
            if isinstance(stage, Mapping) and stage.get("always_changed") is True]


def pull_request_from_event(event: Mapping[str, Any]) -> PullRequest | None:
    """The pull request of a GitHub event payload, or None for other events.

    A fork is a pull request whose head repository differs from its base repository (a
    deleted fork has no head repository and counts as a fork too).
    """
    pr = event.get("pull_request")
    if not isinstance(pr, Mapping) or "number" not in pr:
        return None
    base_repo = ((pr.get("base") or {}).get("repo") or {}).get("full_name")
    if not base_repo:
        base_repo = (event.get("repository") or {}).get("full_name")
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    if not base_repo:
        return None
    return PullRequest(repo=str(base_repo), number=int(pr["number"]),
                       is_fork=head_repo != base_repo)


def run_url_from_env(env: Mapping[str, str]) -> str | None:
    """The URL of the current workflow run, from the ``GITHUB_*`` variables."""
    server, repo, run_id = (env.get(name) for name in
                            ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID"))
    if not (server and repo and run_id):
        return None
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run_id}"


# ---------------------------------------------------------------------------------------------
# Rendering (pure)


def format_value(value: Any) -> str:
    """A metric or param value for a table cell."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
    return f"`{text}`".replace("|", "\\|")


def format_delta(change: MetricChange, band: float | None = None, noise: str = "noise",
                 name: str | None = None) -> str:
    """Signed delta with an arrow and whether it is better (lower is better for some); with
    a ``band``, also whether the change is beyond it (``noise`` names what the band is)."""
    delta = change.delta
    if delta is None:
        return "new" if change.old is None else "removed"
    if not change.changed:
        return "0"
    if isinstance(delta, int):  # a count: +120, not +120.0000
        text = f"{delta:+,d}"
    else:
        text = f"{delta:+.4f}" if abs(delta) < 1000 else f"{delta:+,.0f}"
    if name is None:
        name = change.key[-1] if change.key else ""
    if name in LOWER_IS_BETTER:
        better = delta < 0
    elif _SCORE_NAME.search(name):
        better = delta > 0
    else:
        return text  # a count or a rate with no better direction
    text = f"{text} {'🟢' if better else '🔴'}"
    if band is not None and band > 0:
        verdict = "**beyond**" if abs(delta) > band else "within"
        text += f" ({verdict} {noise} ±{band:.4f})"
    return text


def noise_band(metrics: list[MetricChange], key: tuple[str, ...]) -> float | None:
    """The bootstrap band evaluate wrote for the metric ``key`` (``(split, name)``): its
    half-width of the 95% interval over resampled test movies, at head (else at base)."""
    if len(key) != 2:
        return None
    wanted = (key[0], NOISE_KEY, f"{key[1]}_band")
    for m in metrics:
        if m.key == wanted:
            return m.new if m.new is not None else m.old
    return None


def _label(key: tuple[str, ...]) -> str:
    return ".".join(key)


def _table(header: Iterable[str], align: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def headline_changes(metrics: list[MetricChange], split: str) -> list[MetricChange]:
    """The headline metrics of ``split`` in display order (any split if none matches)."""
    order = {name: i for i, name in enumerate(HEADLINE)}
    picked = [m for m in metrics if len(m.key) == 2 and m.key[0] == split and m.key[1] in order]
    # the same split with its metadata removed: micro and macro F1 only
    picked += [m for m in metrics if len(m.key) == 2 and m.key[0] == split + NO_METADATA
               and m.key[1] in ("micro_f1", "macro_f1")]
    if not picked:
        picked = [m for m in metrics if m.key and m.key[-1] in order and PER_GENRE_KEY not in m.key]
    return sorted(picked, key=lambda m: (m.key[:-1], order[m.key[-1]]))


def per_genre_rows(metrics: list[MetricChange], split: str) -> list[tuple[str, MetricChange,
                                                                           float | None]]:
    """``(genre, F1 change, support)`` for every genre of ``split``, biggest change first."""
    support: dict[str, float | None] = {}
    f1: dict[str, MetricChange] = {}
    for m in metrics:
        if len(m.key) == 4 and m.key[0] == split and m.key[1] == PER_GENRE_KEY:
            if m.key[3] == "f1":
                f1[m.key[2]] = m
            elif m.key[3] == "support":
                support[m.key[2]] = m.new if m.new is not None else m.old
    rows = [(genre, change, support.get(genre)) for genre, change in f1.items()]
    return sorted(rows, key=lambda r: (-abs(r[1].delta or 0.0), r[0]))


def render_metrics(data: ReportData) -> str:
    """The metrics part: headline table, per-genre F1 deltas and other changed metrics."""
    metrics = data.metrics
    if not metrics:
        return "**No metrics found** at base or head (did `dvc repro` write them?)."
    if not any(m.changed for m in metrics):
        head = headline_changes(metrics, data.split)[:2]
        values = ", ".join(f"{_label(m.key)} {format_value(m.new)}" for m in head)
        return "**No metric changes** against the base." + (f" ({values})" if values else "")
    parts = []
    compared = [m for m in metrics if m.file == COMPARE_FILE]
    crossed = [m for m in metrics if m.file == CROSSVAL_FILE]
    metrics = [m for m in metrics if m.file not in (COMPARE_FILE, CROSSVAL_FILE)]
    headline = headline_changes(metrics, data.split)
    shown = {id(m) for m in headline}
    if headline:
        bands = [noise_band(metrics, m.key) for m in headline]
        parts.append(f"### Headline metrics ({data.split})\n\n" + _table(
            ("metric", "base", "head", "Δ"), (":--", "--:", "--:", "--:"),
            ((f"**{_label(m.key)}**", format_value(m.old), format_value(m.new),
              format_delta(m, band)) for m, band in zip(headline, bands, strict=True))))
        if any(b is not None for b in bands):
            parts[-1] += ("\n\nNoise: ± is half the 95% bootstrap interval of the head's "
                          "figure over resampled test movies; a change within it may be the "
                          "choice of test movies alone (see the cross-validated figures).")
    crossval = render_crossval(crossed)
    if crossval:
        parts.append(crossval)
    genres = per_genre_rows(metrics, data.split)
    shown.update(id(m) for m in metrics if len(m.key) >= 2 and m.key[1] == PER_GENRE_KEY
                 and m.key[0] == data.split)
    changed_genres = [row for row in genres if row[1].changed]
    if genres:
        title = (f"### Per-genre F1 ({data.split}): {len(changed_genres)} of {len(genres)} "
                 "changed")
        if changed_genres:
            parts.append(title + "\n\n" + _table(
                ("genre", "base F1", "head F1", "Δ", "support"),
                (":--", "--:", "--:", "--:", "--:"),
                ((genre, format_value(m.old), format_value(m.new), format_delta(m),
                  format_value(int(s)) if s is not None else "—")
                 for genre, m, s in changed_genres)))
        else:
            parts.append(title)
    others = sorted((m for m in metrics if id(m) not in shown and m.changed),
                    key=lambda m: (m.file, m.key))
    if others:
        rows = ((f"`{m.file}`", _label(m.key), format_value(m.old), format_value(m.new),
                 format_delta(m)) for m in others)
        parts.append(f"<details><summary>Other changed metrics ({len(others)})</summary>\n\n"
                     + _table(("file", "metric", "base", "head", "Δ"),
                              (":--", ":--", "--:", "--:", "--:"), rows)
                     + "\n\n</details>")
    accurate = render_compare(compared, data.split,
                              stale=any(m.changed for m in headline)
                              and not any(m.changed for m in compared))
    if accurate:
        parts.append(accurate)
    return "\n\n".join(parts)


def render_crossval(metrics: list[MetricChange]) -> str:
    """The cross-validated means (with and without metadata) and whether each change is
    beyond the head's fold spread ('' when the crossval stage wrote nothing)."""
    def find(*key: str) -> MetricChange | None:
        return next((m for m in metrics if m.key == key), None)

    rows = []
    for variant in CROSSVAL_VARIANTS:
        for name in ("micro_f1", "macro_f1"):
            mean, sd = find("summary", variant, name, "mean"), find("summary", variant, name, "sd")
            if mean is None:
                continue
            band = None if sd is None else (sd.new if sd.new is not None else sd.old)
            spread = f" ± {format_value(sd.new)}" if sd is not None and sd.new is not None else ""
            rows.append((f"{variant}.{name}", format_value(mean.old),
                         format_value(mean.new) + spread,
                         format_delta(mean, band, "fold sd", name)))
    for name in ("micro_f1", "macro_f1"):
        gain = find("gain_over_text", name, "mean")
        if gain is not None:
            rows.append((f"metadata gain over text, {name}", format_value(gain.old),
                         format_value(gain.new), format_delta(gain, name=name)))
    if not rows:
        return ""
    return ("### Cross-validated (mean over folds ± fold sd)\n\n"
            + _table(("metric", "base", "head", "Δ"), (":--", "--:", "--:", "--:"), rows)
            + f"\n\nFrom `{CROSSVAL_FILE}` (the `crossval` stage): every fold the test once.")


def render_compare(metrics: list[MetricChange], split: str, stale: bool = False) -> str:
    """The accurate model's micro/macro F1 next to the SVM's and the head's ('' if absent).

    ``stale``: the headline changed but these figures did not, because the accurate model's
    stages (a DVC project of their own) were not rerun; the section says so.
    """
    rows = []
    for model in COMPARE_MODELS:
        for name in ("micro_f1", "macro_f1"):
            found = [m for m in metrics if m.key == (model, split, name)]
            if found:
                m = found[0]
                rows.append((f"{model}.{name}", format_value(m.old), format_value(m.new),
                             format_delta(m)))
    if not rows:
        return ""
    return (f"### Accurate model ({split}): SVM, embeddings head and ensemble\n\n"
            + _table(("metric", "base", "head", "Δ"), (":--", "--:", "--:", "--:"), rows)
            + f"\n\nFrom `{COMPARE_FILE}` (the accurate model's stages in `accurate/`)."
            + ("\n\n⚠️ **Stale:** these figures did not change while the headline above did: "
               "the accurate model was not rebuilt for this change, so they describe the "
               "base's model (its SVM row no longer matches the headline). Run `make accurate` "
               "and commit `accurate/` to update them." if stale else ""))


def render_params(params: list[ParamChange]) -> str:
    """The params diff as a table, or a line saying nothing changed."""
    if not params:
        return "### Params\n\nNo param changes."
    rows = ((f"`{p.key}`", format_value(p.old), format_value(p.new)) for p in params)
    return "### Params\n\n" + _table(("param", "base", "head"), (":--", "--:", "--:"), rows)


def render_stages(stages: StageRuns | None) -> str:
    """Which stages ran and which were reused."""
    if stages is None:
        return "### Stages\n\nNot recorded (no `dvc repro` log given)."
    if stages.empty:
        return "### Stages\n\nThe `dvc repro` log names no stage."

    def names(items: list[str]) -> str:
        return ", ".join(f"`{s}`" for s in items) if items else "none"

    lines = [f"- **ran**: {names(stages.ran)}", f"- **reused**: {names(stages.reused)}"]
    if stages.restored:
        lines.append(f"  - of which restored from the run cache: {names(stages.restored)}")
    if stages.always:
        lines.append(f"- **always run** (`always_changed` checks): {names(stages.always)}")
    return "### Stages\n\n" + "\n".join(lines)


def render_lock(status: str | None) -> str:
    """Whether the committed ``dvc.lock`` matches what ``dvc repro`` produced."""
    text = {
        "clean": "✅ The committed `dvc.lock` is up to date.",
        "modified": "⚠️ `dvc repro` changed `dvc.lock`: run `dvc repro` locally and commit "
                    "`dvc.lock` (and the metrics) with this change.",
        "untracked": "⚠️ `dvc.lock` is not committed: run `dvc repro` and commit it.",
    }.get(status or "", "Lock status unknown.")
    return "### dvc.lock\n\n" + text


def render_report(data: ReportData, marker: str = MARKER, title: str = TITLE) -> str:
    """The whole markdown report, starting with the hidden marker that finds the comment.

    Another command that embeds this report in its own comment passes its own ``marker``
    (or ``""``), so that this command's comment is never mistaken for it.
    """
    parts = [f"## {title}", f"Compared with `{data.base}`.", render_metrics(data),
             render_params(data.params), render_stages(data.stages), render_lock(data.lock_status)]
    if marker:
        parts.insert(0, marker)
    links = []
    if data.artifact_url:
        links.append(f"[Plots and artifacts]({data.artifact_url})")
    if data.run_url:
        links.append(f"[workflow run]({data.run_url})")
    if links:
        parts.append(" · ".join(links))
    parts.extend(f"> {note}" for note in data.notes)
    return truncate("\n\n".join(parts) + "\n")


def truncate(body: str, limit: int = MAX_COMMENT_CHARS) -> str:
    """Cut ``body`` to GitHub's comment size, saying so."""
    if len(body) <= limit:
        return body
    suffix = "\n\n… (report truncated; see the job summary)\n"
    return body[: limit - len(suffix)] + suffix


FORK_NOTICE = ("Pull request from a fork: its token is read-only, so this report is in the job "
               "summary only and no pull-request comment was posted.")


# ---------------------------------------------------------------------------------------------
# I/O: git, dvc, files


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def check_base(base: str, cwd: Path) -> None:
    """Fail with one line when the base ref is not in the clone (e.g. a shallow checkout)."""
    if _run(["git", "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}"], cwd).returncode:
        raise TmdbGenresError(
            f"base ref {base!r} is not in this clone",
            "fetch it (actions/checkout with fetch-depth: 0, or `git fetch origin main`)",
        )


def metrics_targets(base: str, cwd: Path, directory: str = "metrics",
                    extra: tuple[str, ...] = (COMPARE_FILE,)) -> list[str]:
    """Every JSON file directly in ``metrics/`` at head or at ``base``, and each ``extra`` file
    (the accurate model's side-by-side figures) found at either: what the report compares.

    Only the headline files (``metrics/headline/``, ``accurate/metrics/headline/``) are
    declared DVC metrics, so that ``dvc metrics show`` stays narrow; per-genre, side-by-side
    and bookkeeping figures live beside them and reach ``dvc metrics diff`` as targets. Empty
    when there are none (then the declared metrics are compared).
    """
    head = {path.relative_to(cwd).as_posix() for path in (cwd / directory).glob("*.json")}
    listed = _run(["git", "ls-tree", "--name-only", base, f"{directory}/", *extra],
                  cwd).stdout.splitlines()
    at_base = {name for name in listed
               if name.endswith(".json") and name.count("/") == directory.count("/") + 1
               and name.startswith(f"{directory}/")}
    found = {name for name in extra if (cwd / name).is_file() or name in listed}
    return sorted(head | at_base | found)


def dvc_diff_json(kind: str, base: str, cwd: Path,
                  targets: list[str] | None = None) -> dict[str, Any]:
    """Run ``dvc <kind> diff <base> --all --json [--targets ...]``; return its parsed output."""
    cmd = [sys.executable, "-m", "dvc", kind, "diff", base, "--all", "--json"]
    if targets:
        cmd += ["--targets", *targets]
    proc = _run(cmd, cwd)
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    if proc.returncode:
        raise TmdbGenresError(f"`dvc {kind} diff {base}` failed: {last}",
                              "run it locally to see why")
    try:
        out = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise TmdbGenresError(f"`dvc {kind} diff --json` printed no JSON ({exc})",
                              "check the dvc version (>= 3)") from exc
    return out if isinstance(out, dict) else {}


def lock_status(cwd: Path, lock: str = "dvc.lock") -> str:
    """``clean``, ``modified`` or ``untracked``: the lock file against the checked-out commit."""
    if _run(["git", "ls-files", "--error-unmatch", "--", lock], cwd).returncode:
        return "untracked"
    return "modified" if _run(["git", "diff", "--quiet", "--", lock], cwd).returncode else "clean"


def read_always_changed(path: Path) -> list[str]:
    """The ``always_changed`` stages of a ``dvc.yaml`` ([] when it is missing or unreadable)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    return always_changed_stages(data) if isinstance(data, Mapping) else []


def append_step_summary(path: str | None, text: str) -> None:
    """Append ``text`` to ``$GITHUB_STEP_SUMMARY`` when it is set."""
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")


def read_event(path: str | None) -> dict[str, Any]:
    """The GitHub event payload at ``$GITHUB_EVENT_PATH`` ({} when unset or unreadable)."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            event = json.load(handle)
    except (OSError, json.JSONDecodeError) as exc:
        raise TmdbGenresError(f"cannot read the event payload {path}: {exc}",
                              "run inside GitHub Actions or unset GITHUB_EVENT_PATH") from exc
    return event if isinstance(event, dict) else {}


# ---------------------------------------------------------------------------------------------
# Command


def collect(args: argparse.Namespace, env: Mapping[str, str]) -> ReportData:
    """Run git and dvc and read the repro log: everything the report needs."""
    cwd = Path(args.repo)
    check_base(args.base, cwd)
    metrics = parse_metrics_diff(dvc_diff_json("metrics", args.base, cwd,
                                               metrics_targets(args.base, cwd)))
    params = parse_params_diff(dvc_diff_json("params", args.base, cwd))
    stages = None
    if args.repro_log is not None:
        try:
            stages = parse_repro_log(Path(args.repro_log).read_text(encoding="utf-8"),
                                     always=read_always_changed(cwd / "dvc.yaml"))
        except OSError as exc:
            raise TmdbGenresError(f"cannot read the dvc repro log {args.repro_log}: "
                                  f"{exc.strerror}", "save `dvc repro` output with tee") from exc
    run_url = run_url_from_env(env)
    artifact_url = args.artifact_url or env.get("ARTIFACT_URL") or (
        f"{run_url}#artifacts" if run_url else None)
    return ReportData(base=args.base, metrics=metrics, params=params, stages=stages,
                      lock_status=lock_status(cwd), run_url=run_url,
                      artifact_url=artifact_url, split=args.split)


def publish(body: str, args: argparse.Namespace, env: Mapping[str, str]) -> str:
    """Write the summary and post or skip the comment; return one line saying what happened."""
    pr = pull_request_from_event(read_event(env.get("GITHUB_EVENT_PATH")))
    summary = env.get("GITHUB_STEP_SUMMARY")
    if args.comment == "never" or pr is None:
        append_step_summary(summary, body)
        return "report: no pull request comment (not a pull request run)" if pr is None \
            else "report: comment disabled (--comment never)"
    if pr.is_fork:
        append_step_summary(summary, body + f"\n> **Notice:** {FORK_NOTICE}\n")
        print(f"::notice title=tmdb-genres report::{FORK_NOTICE}")
        return "report: fork pull request, comment skipped"
    append_step_summary(summary, body)
    token = env.get("GITHUB_TOKEN")
    if not token:
        raise TmdbGenresError("GITHUB_TOKEN is not set, so the pull-request comment cannot be "
                              "posted", "pass `GITHUB_TOKEN: ${{ github.token }}` in the step env")
    client = GitHubClient(env.get("GITHUB_API_URL") or DEFAULT_API, token,
                          user_agent="tmdb-genres-report")
    action, url = client.upsert_comment(pr.repo, pr.number, body, MARKER)
    return f"report: {action} the comment on {pr.repo}#{pr.number}: {url}"


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the report command's options to ``parser``."""
    parser.add_argument("--base", default="origin/main",
                        help="git ref to compare with (default: origin/main)")
    parser.add_argument("--repro-log", type=Path, default=None,
                        help="saved output of `dvc repro` (to list stages ran/reused)")
    parser.add_argument("--output", type=Path, default=None, help="also write markdown here")
    parser.add_argument("--comment", choices=("auto", "never"), default="auto",
                        help="auto: post/update the pull-request comment on pull_request runs")
    parser.add_argument("--split", default="test", help="split of the headline metrics")
    parser.add_argument("--artifact-url", default=None,
                        help="link to the run's artifacts (default: $ARTIFACT_URL or the run)")
    parser.add_argument("--repo", type=Path, default=Path("."), help="project root")
    return parser


def main(args: argparse.Namespace) -> None:
    """Build the report, print it, write the summary and post or update the comment."""
    env = os.environ
    body = render_report(collect(args, env))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(body, encoding="utf-8")
    print(body)
    print(publish(body, args, env))
