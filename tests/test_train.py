from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from tmdb_genres.io import load_joblib
from tmdb_genres.params import parse_params
from tmdb_genres.train import fit_genre


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
