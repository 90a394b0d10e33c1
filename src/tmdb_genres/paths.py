"""The one place for the project's file layout.

Every stage receives its paths explicitly on the command line (``dvc.yaml`` passes them);
these constants are the defaults those commands and ``predict`` fall back to, relative to
the project root (the working directory ``dvc repro`` runs stages in).
"""

from __future__ import annotations

from pathlib import Path

PARAMS = Path("params.yaml")

RAW_DIR = Path("data/raw")
RAW_SNAPSHOT = RAW_DIR / "movies.jsonl"

PREPARED_DIR = Path("data/prepared")
SPLITS = ("train", "validation", "test")
TEXT_RECIPE = "text_recipe.json"  # inside PREPARED_DIR

FEATURES_DIR = Path("data/features")
SCORES_DIR = Path("data/scores")

MODELS_DIR = Path("models")
VECTORIZER = MODELS_DIR / "vectorizer.joblib"
MODEL = MODELS_DIR / "model.joblib"
THRESHOLDS = MODELS_DIR / "thresholds.json"

METRICS_DIR = Path("metrics")
FETCH_REPORT = METRICS_DIR / "fetch.json"
PREPARE_REPORT = METRICS_DIR / "prepare.json"
METRICS = METRICS_DIR / "metrics.json"  # every evaluation figure
HEADLINE_DIR = METRICS_DIR / "headline"  # what `dvc metrics show` prints: <split>_<average>.json
REFRESH_METRICS = METRICS_DIR / "refresh.json"  # written by `tmdb-genres refresh`, not a stage
PLOTS_DIR = METRICS_DIR / "plots"
CROSSVAL = METRICS_DIR / "crossval.json"  # every fold's figures (the crossval stage)


def split_file(directory: Path, split: str, suffix: str) -> Path:
    """Path of one split's file inside a stage's output directory."""
    return directory / f"{split}{suffix}"
