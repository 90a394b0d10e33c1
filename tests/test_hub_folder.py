"""The published model folder: complete, byte-identical, loadable without scikit-learn."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tmdb_genres.accurate.model import load_model
from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.hub import folder, from_pretrained
from tmdb_genres.hub.card import card_micro_f1

TEXTS = [
    ("Night Shift", "A haunted house, a ghost in the attic and a family that screams."),
    ("Orbit", "A robot crew steers a spaceship past an alien planet."),
    ("", "hilarious prank wacky"),
    ("Ünïcode ☃", "Grief and memory; a family struggles with loss. Explosion!"),
]


@pytest.fixture
def project(toy_project: Path, params_data: dict) -> Path:
    """The toy pipeline's outputs with the params.yaml they were made with."""
    (toy_project / "params.yaml").write_text(yaml.safe_dump(params_data), encoding="utf-8")
    return toy_project


def _write(project: Path, out: Path) -> list[Path]:
    model = load_model("fast", project / "models")
    return folder.write_model_folder(model, folder.model_info(project), out)


def test_model_info_reads_the_project_outputs(project: Path) -> None:
    info = folder.model_info(project)
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    assert info["metrics"]["test"]["micro_f1"] == metrics["test"]["micro_f1"]
    assert info["metrics"]["validation"]["macro_f1"] == metrics["validation"]["macro_f1"]
    assert set(info["per_genre"]) == set(metrics["test"]["per_genre"])
    thresholds = json.loads((project / "models/thresholds.json").read_text())["thresholds"]
    assert all(info["per_genre"][g]["threshold"] == thresholds[g] for g in info["per_genre"])
    snapshot = info["snapshot"]
    assert snapshot["movies"] == 400
    assert (snapshot["release_date_min"], snapshot["release_date_max"]) == ("1990-01-01",
                                                                          "2019-01-01")
    assert info["training_command"] == "dvc repro"
    assert set(info["params"]) >= {"prepare", "featurize", "train", "evaluate"}


def test_folder_is_complete_and_byte_identical(project: Path, tmp_path: Path) -> None:
    written = _write(project, tmp_path / "a")
    assert sorted(p.name for p in written) == sorted(folder.FILES)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(folder.FILES)
    script = ("import sys; from pathlib import Path; from tests.test_hub_folder import _write; "
              "_write(Path(sys.argv[1]), Path(sys.argv[2]))")
    subprocess.run([sys.executable, "-c", script, str(project), str(tmp_path / "b")],
                   cwd=Path(__file__).resolve().parents[1], check=True)  # another process
    for name in folder.FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert not list((tmp_path / "a").glob("*.pkl")) and not list((tmp_path / "a").glob("*.joblib"))


def test_loaded_folder_predicts_exactly_like_the_dvc_outputs(project: Path,
                                                             tmp_path: Path) -> None:
    _write(project, tmp_path / "m")
    original = load_model("fast", project / "models")
    loaded, info = folder.load_model_folder(tmp_path / "m")
    texts = [original.text(t, o) for t, o in TEXTS]
    assert [loaded.text(t, o) for t, o in TEXTS] == texts
    expected = original.probabilities(texts)
    assert np.array_equal(loaded.probabilities(texts), expected)
    assert loaded.decide(expected) == original.decide(expected)
    # the metadata encoder travels in config.json: the same numbers with each field alone,
    # all of them, and none
    assert loaded.vectorizer.metadata == original.vectorizer.metadata is not None
    full = {"original_language": "fr", "release_date": "1995-01-01", "vote_count": 250,
            "popularity": 3.5, "vote_average": 6.5}
    for metadata in [full, {}, *({k: v} for k, v in full.items())]:
        rows = [metadata] * len(texts)
        expected = original.probabilities(texts, rows)
        assert np.array_equal(loaded.probabilities(texts, rows), expected)
        assert loaded.probabilities_one(texts[0], metadata).tobytes() == expected[0].tobytes()
    assert np.array_equal(loaded.thresholds, original.thresholds)
    assert info == folder.model_info(project)
    assert from_pretrained(tmp_path / "m").genres == original.genres


def test_loading_needs_neither_joblib_nor_sklearn(project: Path, tmp_path: Path) -> None:
    _write(project, tmp_path / "m")
    original = load_model("fast", project / "models")
    texts = [original.text(t, o) for t, o in TEXTS]
    expected = original.probabilities(texts).tolist()
    script = (
        "import json, sys\n"
        "sys.modules['sklearn'] = None\n"
        "sys.modules['joblib'] = None\n"
        "from tmdb_genres.hub import from_pretrained\n"
        "model = from_pretrained(sys.argv[1])\n"
        "texts = json.loads(sys.argv[2])\n"
        "print(json.dumps(model.probabilities(texts).tolist()))\n"
        "assert 'sklearn' not in [m.split('.')[0] for m in sys.modules if sys.modules[m]]\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m"), json.dumps(texts)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected


def test_card_declares_the_test_micro_f1(project: Path, tmp_path: Path) -> None:
    _write(project, tmp_path / "m")
    card = (tmp_path / "m/README.md").read_text()
    info = folder.model_info(project)
    assert card_micro_f1(card) == info["metrics"]["test"]["micro_f1"]
    for needle in ("library_name: tmdb-genres", "pipeline_tag: text-classification",
                   "model-index:", "license: mit", "from_pretrained(",
                   "| Horror |", "dvc repro", "English", "Drift"):
        assert needle in card, needle


def test_bad_folders_are_one_line_errors(project: Path, tmp_path: Path) -> None:
    with pytest.raises(TmdbGenresError, match="not found"):
        folder.load_model_folder(tmp_path / "missing")
    _write(project, tmp_path / "m")
    config = json.loads((tmp_path / "m/config.json").read_text())
    (tmp_path / "m/config.json").write_text(json.dumps({**config, "folder_format": 99}))
    with pytest.raises(TmdbGenresError, match="folder format 99") as caught:
        folder.load_model_folder(tmp_path / "m")
    assert "\n" not in str(caught.value)
    (tmp_path / "m/config.json").write_text(json.dumps(config))
    weights = tmp_path / "m/model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(TmdbGenresError, match=r"model folder .*: \w*Error") as caught:
        folder.load_model_folder(tmp_path / "m")
    assert "\n" not in str(caught.value)
    weights.unlink()
    with pytest.raises(TmdbGenresError, match=r"missing model\.safetensors"):
        folder.load_model_folder(tmp_path / "m")
