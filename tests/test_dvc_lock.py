"""The committed dvc.lock matches the committed code, params and commands.

A stale lock makes every clone (and CI) rerun stages that nothing real changed, so this is
checked without running DVC: the md5 of each source dependency, each stage's params and
each command.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT

LOCK = yaml.safe_load((ROOT / "dvc.lock").read_text(encoding="utf-8"))["stages"]
PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def lookup(data: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted params key, as DVC records it."""
    for part in dotted.split("."):
        data = data[part]
    return data


def test_every_stage_is_locked():
    assert list(LOCK) == list(PIPELINE)


@pytest.mark.parametrize("stage", list(PIPELINE))
def test_lock_has_the_committed_command_and_params(stage: str):
    assert LOCK[stage]["cmd"] == PIPELINE[stage]["cmd"]
    for key, value in LOCK[stage]["params"]["params.yaml"].items():
        assert lookup(PARAMS, key) == value, f"{stage}: {key} in dvc.lock differs from params.yaml"


@pytest.mark.parametrize("stage", list(PIPELINE))
def test_lock_has_the_committed_source_files(stage: str):
    for dep in LOCK[stage]["deps"]:
        path = ROOT / dep["path"]
        if dep["path"].startswith("src/"):
            assert path.is_file(), f"{stage}: {dep['path']} is locked but missing"
        elif not (dep["path"].startswith("..") and path.is_file()):
            continue  # another stage's output, or the shared data where it is absent
        digest = hashlib.md5(path.read_bytes()).hexdigest()
        assert digest == dep["md5"], (
            f"{stage}: {dep['path']} changed since dvc.lock was written; run `dvc repro` "
            "and commit dvc.lock")


def test_default_source_is_the_locked_one():
    fetch = {dep["path"] for dep in LOCK["fetch"]["deps"]}
    assert PARAMS["fetch"]["watch"] in fetch
    assert Path(PARAMS["fetch"]["source"]) == Path(PARAMS["fetch"]["watch"])


# The accurate model is a DVC project of its own in accurate/ (see its dvc.yaml).
ACCURATE = ROOT / "accurate"
A_LOCK = yaml.safe_load((ACCURATE / "dvc.lock").read_text(encoding="utf-8"))["stages"]
A_PIPELINE = yaml.safe_load((ACCURATE / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
A_PARAMS = {"params.yaml": yaml.safe_load((ACCURATE / "params.yaml").read_text("utf-8")),
            "../params.yaml": PARAMS}


def test_every_accurate_stage_is_locked():
    assert list(A_LOCK) == list(A_PIPELINE)


@pytest.mark.parametrize("stage", list(A_PIPELINE))
def test_accurate_lock_matches_commands_params_and_sources(stage: str):
    assert A_LOCK[stage]["cmd"] == A_PIPELINE[stage]["cmd"]
    for file, values in A_LOCK[stage]["params"].items():
        for key, value in values.items():
            assert lookup(A_PARAMS[file], key) == value, f"{stage}: {file} {key} changed"
    for dep in A_LOCK[stage]["deps"]:
        if dep["path"].startswith("../src/"):
            digest = hashlib.md5((ACCURATE / dep["path"]).read_bytes()).hexdigest()
            assert digest == dep["md5"], (
                f"{stage}: {dep['path']} changed since accurate/dvc.lock was written; run "
                "`dvc repro` in accurate/ and commit its dvc.lock")


def test_root_pipeline_leaves_the_accurate_stages_out():
    """The default `dvc repro` / `dvc status` of the root never see accurate/ (a subrepo)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        names = {stage.addressing for stage in repo.index.stages}
    assert names == set(PIPELINE)
