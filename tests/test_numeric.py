"""Settled floating point: written bytes do not depend on the last bits of a CPU's results.

Another CPU (another SIMD path for exp/log, another BLAS kernel) gives results that differ
from this one's in their last bits. These tests play that CPU: every such step's result is
moved by one ulp (``np.nextafter``) up or down, and every byte the stages write must stay
the same.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml

from tmdb_genres import evaluate as evaluate_module
from tmdb_genres import model, train, vectorize
from tmdb_genres.evaluate import evaluate
from tmdb_genres.io import dump_joblib, load_joblib
from tmdb_genres.model import calibrated, fit_platt
from tmdb_genres.numeric import SIGNIFICANT_BITS, settle
from tmdb_genres.params import parse_params

from .conftest import ROOT, run_toy_pipeline

# NumPy functions whose results may differ in their last bits between CPUs: SIMD-dispatched
# transcendental functions and reductions, and BLAS/LAPACK (dot, solve).
NOISY = frozenset({"exp", "log", "logaddexp", "sqrt", "dot", "sum", "mean", "bincount"})


def nudge(value: Any, direction: int) -> Any:
    """``value`` moved one ulp towards +inf (direction 1) or -inf (-1); non-floats as they are."""
    array = np.asarray(value)
    if array.dtype.kind != "f":
        return value
    moved = np.nextafter(array, direction * np.inf)
    return moved if isinstance(value, np.ndarray) else moved[()]


class OtherCpuNumpy:
    """``numpy`` as another CPU computes it: every noisy result is one ulp away from ours."""

    def __init__(self, direction: int) -> None:
        self._direction = direction
        self.linalg = SimpleNamespace(solve=self._noisy(np.linalg.solve))

    def _noisy(self, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return nudge(function(*args, **kwargs), self._direction)
        return call

    def __getattr__(self, name: str) -> Any:
        value = getattr(np, name)
        return self._noisy(value) if name in NOISY else value


def written(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def params_data() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


# --- settle ----------------------------------------------------------------------------------


def test_settle_keeps_significant_bits_and_special_values():
    x = np.array([0.0, -0.0, 1.0, -2.5, 1 / 3, 1e-300, 1e300, np.inf, -np.inf])
    settled = settle(x)
    assert settled.dtype == np.float64
    assert np.all(np.abs(settled[2:7] - x[2:7]) <= np.abs(x[2:7]) * 2.0 ** -SIGNIFICANT_BITS)
    assert settled[[0, 1, 2, 3, 7, 8]].tolist() == [0.0, -0.0, 1.0, -2.5, np.inf, -np.inf]
    assert np.isnan(settle(np.array([np.nan]))[0])
    assert isinstance(settle(0.1), float) and settle(0.1) == pytest.approx(0.1, rel=1e-6)
    assert np.array_equal(settle(settled), settled)  # idempotent
    in_range = settled[:5]  # float32 holds a settled value exactly where it is in range
    assert np.array_equal(in_range.astype(np.float32).astype(np.float64), in_range)


def test_settle_absorbs_one_ulp_either_way():
    x = np.random.default_rng(0).normal(size=100_000) * 10.0 ** np.arange(-5, 5).repeat(10_000)
    for direction in (1, -1):
        assert np.array_equal(settle(np.nextafter(x, direction * np.inf)), settle(x))


# --- each stage, as another CPU runs it --------------------------------------------------------


@pytest.fixture(scope="module")
def pipeline_bytes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Every output of prepare -> featurize -> train -> evaluate on toy movies, on this CPU."""
    return written(run_toy_pipeline(tmp_path_factory.mktemp("this-cpu"), params_data()))


@pytest.mark.parametrize("direction", [1, -1], ids=["up", "down"])
def test_pipeline_writes_the_same_bytes_on_another_cpu(
    pipeline_bytes: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    direction: int,
):
    other = OtherCpuNumpy(direction)
    for module in (vectorize, model, train, evaluate_module):
        monkeypatch.setattr(module, "np", other)
    # prepare writes no floats; featurize's idf and weights, train's weights, Platt fit and
    # scores, evaluate's thresholds, metrics and plots are all compared
    ours = written(run_toy_pipeline(tmp_path, params_data()))
    assert ours.keys() == pipeline_bytes.keys()
    changed = sorted(name for name in ours if ours[name] != pipeline_bytes[name])
    assert changed == [], f"another CPU changed {changed}"


@pytest.mark.parametrize("direction", [1, -1], ids=["up", "down"])
def test_platt_fit_and_calibrated_scores_ignore_one_ulp(direction: int):
    rng = np.random.default_rng(1)
    margins = rng.normal(size=3000)
    labels = rng.random(3000) < 1 / (1 + np.exp(-1.5 * margins))
    a, b = fit_platt(margins, labels)
    moved = np.nextafter(margins, direction * np.inf)
    assert fit_platt(moved, labels) == (a, b)
    assert calibrated(moved, np.array(a), np.array(b)).tobytes() == \
        calibrated(margins, np.array(a), np.array(b)).tobytes()


@pytest.mark.parametrize("direction", [1, -1], ids=["up", "down"])
def test_evaluate_writes_the_same_bytes_from_scores_one_ulp_away(
    toy_project: Path, tmp_path: Path, direction: int,
):
    """Scores that land on a threshold of the sweep or on the threshold in force."""
    params = parse_params(params_data()).evaluate
    scores = toy_project / "data/scores"
    grid = np.array([params.threshold, 0.1, 0.5, 0.9])
    for split in ("validation", "test"):
        path = scores / f"{split}.joblib"
        data = load_joblib(path)
        data["P"] = data["P"].copy()
        data["P"][: len(grid) * 5, 0] = np.tile(grid, 5)  # exactly on a threshold
        dump_joblib(path, data)
    moved = tmp_path / "moved"
    shutil.copytree(scores, moved)
    for split in ("validation", "test"):
        data = load_joblib(moved / f"{split}.joblib")
        data["P"] = np.nextafter(data["P"], direction * np.inf)
        dump_joblib(moved / f"{split}.joblib", data)

    def run(scores_dir: Path, out: Path) -> dict[str, bytes]:
        evaluate(params, scores_dir, out / "thresholds.json", out / "metrics.json", out / "plots")
        return written(out)

    a, b = run(scores, tmp_path / "a"), run(moved, tmp_path / "b")
    assert sorted(name for name in a if a[name] != b[name]) == []
