from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from tmdb_genres.featurize import read_shard, write_shard
from tmdb_genres.io import load_joblib, read_jsonl
from tmdb_genres.model import GenreModel
from tmdb_genres.params import parse_params
from tmdb_genres.train import fit_genre, train


def test_constant_labels_give_a_constant_margin(params_data):
    params = parse_params(params_data).train
    x = sp.random(20, 7, density=0.5, format="csr", random_state=0)
    weights, intercept = fit_genre(x, np.zeros(20, dtype=np.uint8), params)
    assert not weights.any() and intercept == -1.0


def test_scores_are_calibrated_on_validation_and_saved_for_test(toy_project: Path):
    model = load_joblib(toy_project / "models/model.joblib")
    assert model["coef"].shape[0] == len(model["genres"]) == 19
    for split in ("validation", "test"):
        scores = load_joblib(toy_project / f"data/scores/{split}.joblib")
        assert scores["P"].shape == scores["Y"].shape
        assert np.all((scores["P"] > 0) & (scores["P"] < 1))
    test = load_joblib(toy_project / "data/scores/test.joblib")
    horror = model["genres"].index("Horror")
    positives = test["P"][test["Y"][:, horror] == 1, horror]
    negatives = test["P"][test["Y"][:, horror] == 0, horror]
    assert positives.mean() > 0.5 > negatives.mean()


def _train_with(project: Path, out: Path, params, permute: dict[str, int]) -> dict:
    """Train on a copy of ``project``'s features whose splits' labels are shuffled by seed."""
    features = out / "features"
    shutil.copytree(project / "data/features", features)
    for split, seed in permute.items():
        for path in sorted((features / split).glob("*.npz")):
            shard = read_shard(path)
            order = np.random.default_rng(seed).permutation(len(shard["Y"]))
            write_shard(path, shard["X"], shard["ids"], shard["Y"][order],
                        shard.get("X_no_metadata"))
    train(params, features, out / "model.joblib", out / "scores")
    return load_joblib(out / "model.joblib")


def test_test_labels_never_reach_the_model_or_its_calibration(
        toy_project: Path, tmp_path: Path, params_data):
    """Leakage: SVMs are fitted on train and Platt sigmoids on validation margins only.

    Shuffling the test split's labels must not change one byte of the saved model (weights
    and calibration) or of the validation scores; shuffling validation's labels must change
    the calibration (the control that shows the comparison can fail).
    """
    params = parse_params(params_data).train
    clean = _train_with(toy_project, tmp_path / "clean", params, {})
    shuffled_test = _train_with(toy_project, tmp_path / "test", params, {"test": 1})
    assert ((tmp_path / "test/model.joblib").read_bytes()
            == (tmp_path / "clean/model.joblib").read_bytes())
    assert ((tmp_path / "test/scores/validation.joblib").read_bytes()
            == (tmp_path / "clean/scores/validation.joblib").read_bytes())
    assert np.array_equal(shuffled_test["platt_a"], clean["platt_a"])
    shuffled_validation = _train_with(toy_project, tmp_path / "val", params, {"validation": 1})
    assert np.array_equal(shuffled_validation["coef"], clean["coef"])  # SVMs: train only
    assert not np.allclose(shuffled_validation["platt_a"], clean["platt_a"])


def test_saved_scores_are_what_the_saved_model_predicts(toy_project: Path):
    """The scores evaluate reads are the probabilities `predict` computes from the model files.

    Guards train/predict skew: e.g. margins built with the intercept's sign flipped are
    absorbed by the Platt fit on them, so the saved scores alone look right.
    """
    model = GenreModel.load(toy_project / "models/vectorizer.joblib",
                            toy_project / "models/model.joblib",
                            toy_project / "models/thresholds.json")
    for split in ("validation", "test"):
        rows = read_jsonl(toy_project / f"data/prepared/{split}.jsonl")
        saved = load_joblib(toy_project / f"data/scores/{split}.joblib")
        assert saved["ids"].tolist() == [row["id"] for row in rows]
        texts = [row["text"] for row in rows]  # model texts
        predicted = model.probabilities(texts, [row["metadata"] for row in rows])
        assert predicted.shape == saved["P"].shape
        assert np.allclose(predicted, saved["P"], rtol=0, atol=1e-6)
        if split == "test":  # and without any metadata: what a text-only caller gets
            assert np.allclose(model.probabilities(texts), saved["P_no_metadata"], rtol=0,
                               atol=1e-6)
            assert not np.allclose(saved["P"], saved["P_no_metadata"], rtol=0, atol=1e-6)


def test_outputs_do_not_depend_on_the_number_of_workers(toy_project: Path, tmp_path: Path,
                                                        params_data):
    """Genres fitted by 1, 2 or 3 processes (the matrix memory-mapped into them) give the
    same model and scores, byte for byte, and leave no temporary matrix behind."""
    outputs = []
    for workers in (1, 2, 3):
        params_data["train"]["workers"] = workers
        out = tmp_path / str(workers)
        train(parse_params(params_data).train, toy_project / "data/features",
              out / "model.joblib", out / "scores")
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes()
                        for p in sorted(out.rglob("*")) if p.is_file()})
    assert len(outputs[0]) == 3  # model.joblib and two score files: the matrix is gone
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0]["model.joblib"] == (toy_project / "models/model.joblib").read_bytes()


def test_the_training_matrix_is_a_scratch_dir_of_the_model(toy_project: Path, tmp_path: Path,
                                                           params_data,
                                                           monkeypatch: pytest.MonkeyPatch):
    """The float64 matrix folder is an io.scratch_dir beside the model: registered for the
    SIGTERM handler while train fits, and one a `kill -9`'d train left is removed by the next."""
    from tmdb_genres import io
    from tmdb_genres import train as train_module

    model = tmp_path / "models/model.joblib"
    model.parent.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = model.parent / f".{model.name}.{dead.pid}.abc123.tmp"
    stale.mkdir()
    (stale / "data").write_bytes(b"\0" * 64)
    seen = []
    fit_all = train_module.fit_all

    def watched(files, y, params):
        seen.append((files.directory, files.directory in io._LIVE_TEMPS, stale.exists()))
        return fit_all(files, y, params)

    monkeypatch.setattr(train_module, "fit_all", watched)
    train(parse_params(params_data).train, toy_project / "data/features", model,
          tmp_path / "scores")
    [(directory, registered, stale_then)] = seen
    assert directory.parent == model.parent and directory.name.startswith(f".{model.name}.")
    assert registered and not stale_then
    assert sorted(p.name for p in model.parent.iterdir()) == [model.name]
