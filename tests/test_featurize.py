from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.featurize import build_vectorizer, featurize, label_matrix, load_split
from tmdb_genres.io import load_joblib
from tmdb_genres.params import parse_params


def test_vectorizer_follows_params(params_data):
    params = parse_params(params_data).featurize
    names = [name for name, _ in build_vectorizer(params).transformer_list]
    assert names == ["word", "char"]
    params_data["featurize"]["char"]["ngram_max"] = 0
    params = parse_params(params_data).featurize
    assert [name for name, _ in build_vectorizer(params).transformer_list] == ["word"]


def test_label_matrix_columns_follow_genre_order():
    y = label_matrix([{"genres": ["Drama"]}, {"genres": ["Action", "Drama"]}],
                     ["Action", "Comedy", "Drama"])
    assert y.tolist() == [[0, 0, 1], [1, 0, 1]]


def test_features_fit_on_train_only(toy_project: Path):
    saved = load_joblib(toy_project / "models/vectorizer.joblib")
    assert saved["text_fields"] == ["title", "overview"]
    counts = saved["vectorizer"].transformer_list[0][1].named_steps["counts"]
    vocabulary = counts.vocabulary_
    train = load_split(toy_project / "data/features", "train")
    test = load_split(toy_project / "data/features", "test")
    assert train["X"].shape[1] == test["X"].shape[1]
    assert "explosion" in vocabulary
    assert not hasattr(counts.vectorizer_, "stop_words_")
    assert train["Y"].shape == (train["X"].shape[0], 19)
    assert np.all(np.diff(train["ids"]) > 0)


def test_missing_prepared_data_is_one_clear_error(tmp_path: Path, params_data):
    params = parse_params(params_data).featurize
    with pytest.raises(TmdbGenresError, match="run `dvc repro prepare` first"):
        featurize(params, tmp_path / "nope", tmp_path / "f", tmp_path / "v.joblib")


def test_outputs_are_byte_identical_across_processes_and_hash_seeds(tmp_path: Path):
    """Same inputs, fresh processes with different hash seeds: same bytes (dvc.lock stays put)."""
    script = (
        "import sys, yaml; from pathlib import Path; sys.path.insert(0, {tests!r});"
        "from conftest import run_toy_pipeline;"
        "data = yaml.safe_load(open({params!r}));"
        "run_toy_pipeline(Path(sys.argv[1]), data, n=300)"
    ).format(tests=str(Path(__file__).parent),
             params=str(Path(__file__).parents[1] / "params.yaml"))
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes()
                        for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0].keys() == outputs[1].keys()
    assert "models/vectorizer.joblib" in outputs[0]
    differing = [name for name in outputs[0] if outputs[0][name] != outputs[1][name]]
    assert differing == []
