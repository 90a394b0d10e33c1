"""Stage 5, evaluate: choose thresholds, score the test split, write metrics and plots.

Thresholds come from ``params.yaml``: one global threshold, or (``mode: tuned``) one per
genre picked on validation scores only, and per-genre overrides by name on top. The chosen
thresholds are written to ``models/thresholds.json`` for prediction. Only calibrated scores
saved by train are read, so this stage never retrains and takes seconds. The test split is
also scored with its metadata removed (``test_no_metadata``), and each test figure carries
its bootstrap noise (how much it moves from the choice of test movies alone).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .io import atomic_dir, load_joblib, write_json
from .model import apply_thresholds
from .numeric import settle
from .params import EvaluateParams, load_params

GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)  # candidate thresholds
HEADLINE = ("f1", "precision", "recall")  # of each split's micro and macro average
CURVE = np.round(np.arange(0.0, 1.0001, 0.02), 2)  # thresholds of precision-recall curves


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp, dtype=float),
                     where=denominator > 0)


def f1_by_threshold(y: np.ndarray, p: np.ndarray, grid: np.ndarray = GRID) -> np.ndarray:
    """F1 of one genre at each candidate threshold (vectorised over the grid)."""
    predicted = p[None, :] >= grid[:, None]
    truth = y[None, :].astype(bool)
    tp = (predicted & truth).sum(axis=1)
    fp = (predicted & ~truth).sum(axis=1)
    fn = (~predicted & truth).sum(axis=1)
    return _f1(tp, fp, fn)


def tune_threshold(y: np.ndarray, p: np.ndarray, fallback: float) -> float:
    """The grid threshold with the best F1; ties go to the one closest to ``fallback``."""
    scores = f1_by_threshold(y, p)
    best = np.flatnonzero(scores >= scores.max() - 1e-12)
    return float(GRID[best[np.argmin(np.abs(GRID[best] - fallback))]])


def best_global_threshold(y: np.ndarray, p: np.ndarray, grid: np.ndarray = GRID) -> float:
    """The grid threshold with the best micro-F1 when every genre uses it (the lowest of
    ties): how the committed global threshold is chosen on the validation curve."""
    truth = y.astype(bool)
    scores = []
    for t in grid:
        predicted = p >= t
        tp = float((predicted & truth).sum())
        scores.append(_ratio(2 * tp, float(predicted.sum()) + float(truth.sum())))
    return float(grid[int(np.argmax(scores))])


def choose_thresholds(
    params: EvaluateParams, genres: list[str], y_val: np.ndarray, p_val: np.ndarray
) -> dict[str, float]:
    """Per-genre thresholds: global or tuned on validation, then per-genre overrides."""
    thresholds = {}
    for j, genre in enumerate(genres):
        threshold = params.threshold
        if params.mode == "tuned" and y_val[:, j].sum() >= params.tuned_min_positives:
            threshold = tune_threshold(y_val[:, j], p_val[:, j], params.threshold)
        thresholds[genre] = round(params.per_genre.get(genre, threshold), 4)
    return thresholds


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def multilabel_metrics(y: np.ndarray, decisions: np.ndarray, genres: list[str]) -> dict:
    """Micro/macro/weighted/samples scores, Hamming loss, subset accuracy and per-genre scores."""
    truth = y.astype(bool)
    tp = (decisions & truth).sum(axis=0).astype(float)
    fp = (decisions & ~truth).sum(axis=0).astype(float)
    fn = (~decisions & truth).sum(axis=0).astype(float)
    support = truth.sum(axis=0)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    recall = np.divide(tp, tp + fn, out=np.zeros_like(tp), where=(tp + fn) > 0)
    f1 = _f1(tp, fp, fn)
    weights = support / support.sum() if support.sum() else np.zeros_like(tp)
    row_tp = (decisions & truth).sum(axis=1)
    row_pred = decisions.sum(axis=1)
    row_true = truth.sum(axis=1)
    row_f1 = _f1(row_tp, row_pred - row_tp, row_true - row_tp)
    row_p = np.divide(row_tp, row_pred, out=np.zeros(len(y)), where=row_pred > 0)
    row_r = np.divide(row_tp, row_true, out=np.zeros(len(y)), where=row_true > 0)
    metrics = {
        "micro_precision": _ratio(tp.sum(), tp.sum() + fp.sum()),
        "micro_recall": _ratio(tp.sum(), tp.sum() + fn.sum()),
        "micro_f1": _ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "weighted_precision": float(np.dot(weights, precision)),
        "weighted_recall": float(np.dot(weights, recall)),
        "weighted_f1": float(np.dot(weights, f1)),
        "samples_precision": float(row_p.mean()) if len(y) else 0.0,
        "samples_recall": float(row_r.mean()) if len(y) else 0.0,
        "samples_f1": float(row_f1.mean()) if len(y) else 0.0,
        "hamming_loss": float((decisions != truth).mean()) if len(y) else 0.0,
        "subset_accuracy": float((decisions == truth).all(axis=1).mean()) if len(y) else 0.0,
    }
    rounded: dict[str, Any] = {k: round(v, 4) for k, v in metrics.items()}
    rounded["rows"] = len(y)
    rounded["labels_per_movie"] = round(float(row_true.mean()), 4) if len(y) else 0.0
    rounded["predicted_per_movie"] = round(float(row_pred.mean()), 4) if len(y) else 0.0
    rounded["per_genre"] = {
        g: {
            "precision": round(float(precision[j]), 4),
            "recall": round(float(recall[j]), 4),
            "f1": round(float(f1[j]), 4),
            "support": int(support[j]),
        }
        for j, g in enumerate(genres)
    }
    return rounded


def threshold_sweep(scores: dict[str, dict[str, Any]], in_force: float) -> list[dict[str, Any]]:
    """Micro and macro F1 of validation and test when one global threshold is used.

    One row per (threshold, split, average), so that the plot can colour by split and dash
    by average; every row carries ``in_force``, the global threshold of ``params.yaml``,
    which the plot marks.
    """
    rows = []
    for t in GRID:
        for split, data in scores.items():
            decisions = data["P"] >= t
            m = multilabel_metrics(data["Y"], decisions, data["genres"])
            for average in ("micro", "macro"):
                rows.append({"threshold": float(t), "split": split, "average": average,
                             "f1": m[f"{average}_f1"], "in_force": in_force})
    return rows


def headline(metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{"<split>_<average>": {f1, precision, recall}}``: one small file each, so that
    ``dvc metrics show`` prints them as rows of three columns."""
    return {
        f"{split}_{average}": {name: figures[f"{average}_{name}"] for name in HEADLINE}
        for split, figures in metrics.items()
        for average in ("micro", "macro")
    }


def precision_recall_curve(y: np.ndarray, p: np.ndarray) -> list[dict[str, float]]:
    """Precision and recall of one genre at thresholds 0, 0.02, ..., 1.

    Thresholds at which no movie is predicted have no precision and are left out.
    """
    truth = y.astype(bool)
    points = []
    for t in CURVE:
        predicted = p >= t
        if not predicted.any():
            continue
        tp = float((predicted & truth).sum())
        points.append(
            {
                "threshold": float(t),
                "precision": round(_ratio(tp, predicted.sum()), 4),
                "recall": round(_ratio(tp, truth.sum()), 4),
            }
        )
    return points


def confusion_shares(y: np.ndarray, decisions: np.ndarray,
                     genres: list[str]) -> list[dict[str, Any]]:
    """For each true genre, the share of its movies that got each genre predicted.

    One row per (actual, predicted) pair of genres; the diagonal is each genre's recall.
    Dividing by the true genre's support keeps rare genres as readable as Drama and Comedy.
    Genres with no movie in the split have no row.
    """
    truth = y.astype(bool)
    counts = truth.T.astype(np.int64) @ decisions.astype(np.int64)  # actual x predicted
    support = truth.sum(axis=0)
    return [
        {"actual": genres[a], "predicted": genres[p],
         "share": round(_ratio(float(counts[a, p]), float(support[a])), 4)}
        for a in range(len(genres)) if support[a]
        for p in range(len(genres))
    ]


def bootstrap_noise(y: np.ndarray, decisions: np.ndarray, rounds: int, seed: int
                    ) -> dict[str, float]:
    """How much micro- and macro-F1 move from the choice of test movies alone.

    ``rounds`` resamples of the movies (with replacement, seeded); returns each average's
    standard deviation over them (``micro_f1_sd``, ``macro_f1_sd``) and the half-width of
    the central 95% interval (``micro_f1_band``, ``macro_f1_band``), settled and rounded.
    """
    if not len(y) or not rounds:
        return {f"{a}_f1_{k}": 0.0 for a in ("micro", "macro") for k in ("sd", "band")}
    truth = y.astype(bool)
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(y), np.full(len(y), 1.0 / len(y)), size=rounds)
    weights = weights.astype(np.float64)  # (rounds x movies): how often each is drawn
    tp = weights @ (decisions & truth)
    fp = weights @ (decisions & ~truth)
    fn = weights @ (~decisions & truth)
    micro = _f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    macro = _f1(tp, fp, fn).mean(axis=1)
    noise = {}
    for average, values in (("micro", micro), ("macro", macro)):
        low, high = np.percentile(settle(values), [2.5, 97.5])
        noise[f"{average}_f1_sd"] = round(settle(float(np.std(settle(values)))), 4)
        noise[f"{average}_f1_band"] = round(settle(float(high - low) / 2), 4)
    return noise


def load_scores(scores_dir: Path) -> dict[str, dict[str, Any]]:
    """Validation and test scores saved by train.

    The probabilities are settled again (a no-op on train's own output), so thresholds,
    decisions and metrics come from settled values whatever wrote the files.
    """
    scores = {}
    for split in ("validation", "test"):
        path = paths.split_file(scores_dir, split, ".joblib")
        if not path.is_file():
            raise TmdbGenresError(f"scores {str(path)!r} not found", "run `dvc repro train`")
        scores[split] = load_joblib(path)
        scores[split]["P"] = settle(scores[split]["P"])
    return scores


def scores_at_thresholds(
    params: EvaluateParams, genres: list[str], validation: dict[str, Any],
    splits: dict[str, dict[str, Any]],
) -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Thresholds chosen on ``validation`` (its ``Y`` and ``P``) by the evaluate params, then
    every split's decisions and metrics: ``(thresholds by genre, decisions, metrics)``."""
    chosen = choose_thresholds(params, genres, validation["Y"], validation["P"])
    vector = np.array([chosen[g] for g in genres])
    decisions = {split: apply_thresholds(data["P"], vector, params.at_least_one)
                 for split, data in splits.items()}
    metrics = {split: multilabel_metrics(data["Y"], decisions[split], genres)
               for split, data in splits.items()}
    return chosen, decisions, metrics


def evaluate(
    params: EvaluateParams, scores_dir: Path, thresholds_path: Path, metrics_path: Path,
    plots_dir: Path, headline_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the stage; return the metrics written.

    Every figure goes to ``metrics_path``; the headline (micro and macro F1, precision and
    recall of each split) also goes to ``headline_dir`` when given.
    """
    scores = load_scores(scores_dir)
    validation, test = scores["validation"], scores["test"]
    genres = test["genres"]
    splits = dict(scores)
    if "P_no_metadata" in test:  # the same test movies with every metadata field removed
        splits["test_no_metadata"] = {"Y": test["Y"], "P": settle(test["P_no_metadata"])}
    chosen, decisions, metrics = scores_at_thresholds(params, genres, validation, splits)
    for split in splits:
        if split.startswith("test"):
            metrics[split]["noise"] = bootstrap_noise(
                splits[split]["Y"], decisions[split], params.bootstrap_rounds,
                params.bootstrap_seed)
    per_genre = metrics["test"]["per_genre"]
    with atomic_dir(plots_dir) as tmp:
        write_json(tmp / "threshold_sweep.json", threshold_sweep(
            {split: scores[split] for split in ("validation", "test")}, params.threshold))
        write_json(tmp / "per_genre_f1.json",
                   [{"genre": g, "f1": per_genre[g]["f1"]} for g in genres])
        for j, genre in enumerate(genres):
            write_json(tmp / "precision_recall" / f"{genre}.json",
                       precision_recall_curve(test["Y"][:, j], test["P"][:, j]))
        write_json(tmp / "confusion.json", confusion_shares(test["Y"], decisions["test"], genres))
    write_json(thresholds_path, {"mode": params.mode, "at_least_one": params.at_least_one,
                                 "thresholds": chosen})
    write_json(metrics_path, metrics)
    if headline_dir is not None:
        for name, figures in headline(metrics).items():
            write_json(headline_dir / f"{name}.json", figures)
    return metrics


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this stage's options to ``parser``."""
    parser.add_argument("--params", type=Path, default=paths.PARAMS, help="params file")
    parser.add_argument("--scores", type=Path, default=paths.SCORES_DIR,
                        help="directory of scores written by train")
    parser.add_argument("--thresholds", type=Path, default=paths.THRESHOLDS,
                        help="where to write the thresholds prediction uses")
    parser.add_argument("--metrics", type=Path, default=paths.METRICS,
                        help="metrics JSON (every figure)")
    parser.add_argument("--headline", type=Path, default=paths.HEADLINE_DIR,
                        help="directory for the headline metrics files")
    parser.add_argument("--plots", type=Path, default=paths.PLOTS_DIR, help="plots directory")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the evaluate stage."""
    params = load_params(args.params).evaluate
    metrics = evaluate(params, args.scores, args.thresholds, args.metrics, args.plots,
                       args.headline)
    test = metrics["test"]
    print(
        f"evaluate ({params.mode} thresholds): test micro-F1 {test['micro_f1']:.4f}, "
        f"macro-F1 {test['macro_f1']:.4f}, samples-F1 {test['samples_f1']:.4f} "
        f"on {test['rows']} movies"
    )
