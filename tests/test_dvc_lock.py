"""The committed dvc.lock matches the committed dvc.yaml, code and params.

A stale lock makes every clone (and CI) rerun stages that nothing real changed, and a
missing dependency lets a stage's outputs go stale without DVC noticing. Checked without
running DVC, this guarantees:

- every stage of dvc.yaml is locked with dvc.yaml's command;
- each stage's locked params are exactly the params dvc.yaml declares for it (a param added
  to or removed from dvc.yaml without relocking fails), with params.yaml's current values;
- each stage's locked deps are exactly the deps dvc.yaml declares (a dep added without
  relocking fails), and the md5 of every locked source file (the project's modules, and the
  shared data where present) is the file's md5 today. Like DVC itself, this is byte-exact:
  any edit of a listed module, a comment included, needs `dvc repro` and a new dvc.lock;
- every module of the package that a stage's module imports, directly or transitively,
  at the top or inside a function (e.g. ``io.py``, ``params.py``), is a declared dep of
  that stage, so no code a stage runs can change without DVC rerunning it. Not covered:
  ``cli.py`` (the dispatcher: it builds every command's parser and runs the stage's
  ``main``), the packages' ``__init__.py`` files (a docstring and the version) and the
  installed third-party libraries (pinned by ``constraints.txt``, not by the lock).

The outputs' hashes are checked by the end-to-end tests, which run DVC.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT

LOCK = yaml.safe_load((ROOT / "dvc.lock").read_text(encoding="utf-8"))["stages"]
PIPELINE = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
PACKAGE = ROOT / "src" / "tmdb_genres"


def lookup(data: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted params key, as DVC records it."""
    for part in dotted.split("."):
        data = data[part]
    return data


def resolve(text: str) -> str:
    """dvc.yaml's ``${key}`` interpolations replaced by params.yaml's values."""
    return re.sub(r"\$\{([\w.]+)\}", lambda m: str(lookup(PARAMS, m.group(1))), text)


def declared_params(stage: str) -> set[str]:
    """The params.yaml keys dvc.yaml lists for a stage."""
    keys: set[str] = set()
    for entry in PIPELINE[stage].get("params", []):
        if isinstance(entry, str):
            keys.add(entry)
        else:
            for file, names in entry.items():
                assert file == "params.yaml", f"{stage}: params from {file} are not checked"
                keys.update(names)
    return keys


def declared_deps(stage: str) -> set[str]:
    return {resolve(dep) for dep in PIPELINE[stage]["deps"]}


def module_of(path: Path) -> str:
    """``src/tmdb_genres/sources/export.py`` -> ``tmdb_genres.sources.export``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def file_of(module: str) -> Path | None:
    """The source file of a module of the package, or None for anything else."""
    if module != "tmdb_genres" and not module.startswith("tmdb_genres."):
        return None
    base = PACKAGE.parent.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """The package's modules that ``path`` imports anywhere in its code (not transitively)."""
    package = module_of(path) if path.name == "__init__.py" else module_of(path).rpartition(".")[0]
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # ``from . import paths`` imports the module ``paths``; ``from .io import x`` io
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(f for f in map(file_of, names) if f is not None and f.name != "__init__.py")
    return found


def closure(start: Path) -> set[Path]:
    """``start`` and every module of the package it imports, transitively."""
    seen: set[Path] = set()
    todo = [start]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported_files(path) - seen)
    return seen


def stage_module(stage: str) -> Path:
    """The module a stage's command runs: ``tmdb-genres <name>`` runs ``<name>.py``."""
    match = re.match(r"tmdb-genres (\w+)\b", PIPELINE[stage]["cmd"])
    assert match, f"{stage}: the command does not run `tmdb-genres <stage>`"
    return PACKAGE / f"{match.group(1)}.py"


def test_every_stage_is_locked():
    assert list(LOCK) == list(PIPELINE)


@pytest.mark.parametrize("stage", list(PIPELINE))
def test_lock_has_the_committed_command_and_params(stage: str):
    assert LOCK[stage]["cmd"] == PIPELINE[stage]["cmd"]
    locked = LOCK[stage].get("params", {}).get("params.yaml", {})
    assert set(locked) == declared_params(stage), (
        f"{stage}: the params in dvc.lock differ from those dvc.yaml declares; run `dvc repro` "
        "and commit dvc.lock")
    for key, value in locked.items():
        assert lookup(PARAMS, key) == value, f"{stage}: {key} in dvc.lock differs from params.yaml"


@pytest.mark.parametrize("stage", list(PIPELINE))
def test_lock_has_the_committed_deps_and_source_files(stage: str):
    locked = {dep["path"] for dep in LOCK[stage]["deps"]}
    assert locked == declared_deps(stage), (
        f"{stage}: the deps in dvc.lock differ from those dvc.yaml declares; run `dvc repro` "
        "and commit dvc.lock")
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


@pytest.mark.parametrize("stage", list(PIPELINE))
def test_every_module_a_stage_imports_is_a_dep(stage: str):
    needed = {p.relative_to(ROOT).as_posix() for p in closure(stage_module(stage))}
    missing = sorted(needed - declared_deps(stage))
    assert not missing, (
        f"{stage}: {', '.join(missing)} run in this stage but are not deps in dvc.yaml, so "
        "editing them would not rerun it; add them to the stage's deps and run `dvc repro`")


def test_import_closure_follows_relative_and_lazy_imports():
    """The closure above is what it claims: relative, ``from . import`` and in-function."""
    train = {p.relative_to(PACKAGE).as_posix() for p in closure(PACKAGE / "train.py")}
    assert {"train.py", "model.py", "io.py", "params.py", "paths.py", "featurize.py",
            "errors.py"} <= train
    fetch = {p.relative_to(PACKAGE).as_posix() for p in closure(PACKAGE / "fetch.py")}
    assert {"sources/export.py", "sources/tmdb_api.py", "genres.py"} <= fetch  # in functions
    assert "sources/emulator.py" not in fetch and "cli.py" not in fetch


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
