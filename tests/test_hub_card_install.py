"""The model card is self-sufficient: a Hub visitor who has only the card and the published
folder installs what the card says in a fresh virtual environment, runs its load snippet and
gets the output the card shows.

The folder is the one `tmdb-genres publish --dry-run` writes, served by the loopback fake Hub;
the card's commands run as written (pip, `hf download`, python) in a new venv. Installing needs
PyPI (the pip cache makes it quick): without it the test skips with the reason, except where
TMDB_GENRES_REQUIRE_PYPI=1 (.ci/run), where it fails.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import yaml

from tests.conftest import built_wheel
from tests.hub_fake import CLIENT_ENV, FakeHub

pytestmark = pytest.mark.e2e

REPO = "visitor/tmdb-genres"


def _block(card: str, language: str, after: str = "") -> str:
    """The first fenced block of ``language`` in ``card`` (after the text ``after``)."""
    start = card.index(after) if after else 0
    found = re.search(rf"```{language}\n(.*?)```", card[start:], re.S)
    assert found, f"the card has no ```{language} block" + (f" after {after!r}" if after else "")
    return found.group(1)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False,
                          timeout=900)


def test_the_cards_install_and_load_commands_work_in_a_fresh_venv(
        tmp_path: Path, toy_project: Path, params_data: dict, hub: FakeHub) -> None:
    (toy_project / "params.yaml").write_text(yaml.safe_dump(params_data), encoding="utf-8")
    folder = tmp_path / "published"
    done = subprocess.run(
        [sys.executable, "-m", "tmdb_genres", "publish", REPO, "--dry-run", "--output",
         str(folder), "--wheel", str(built_wheel())],
        cwd=toy_project, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    hub.seed(REPO, {str(p.relative_to(folder)): p.read_bytes()
                    for p in sorted(folder.rglob("*")) if p.is_file()})
    card = (folder / "README.md").read_text(encoding="utf-8")

    # a fresh virtual environment, nothing installed but pip; the visitor's working directory
    env_dir, home = tmp_path / "venv", tmp_path / "visitor"
    venv.create(env_dir, with_pip=True)
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(CLIENT_ENV, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"),
               PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}",
               PIP_DISABLE_PIP_VERSION_CHECK="1")

    install = [line for line in _block(card, "bash", "## Use it").splitlines() if line.strip()]
    assert install[0] == "pip install huggingface_hub" and install[-1].startswith("pip install ./")
    for line in install:
        result = _run(shlex.split(line), home, env)
        if result.returncode and line.startswith("pip install huggingface_hub"):
            reason = (result.stderr.strip().splitlines() or ["no output"])[-1]
            if os.environ.get("TMDB_GENRES_REQUIRE_PYPI") == "1":
                pytest.fail(f"cannot install from PyPI: {reason} (TMDB_GENRES_REQUIRE_PYPI=1)")
            pytest.skip(f"cannot install from PyPI (no network?): {reason}")
        assert result.returncode == 0, f"{line}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"

    python = str(env_dir / "bin" / "python")
    # the light runtime: neither the pipeline's scikit-learn and DVC nor joblib came with it
    probe = _run([python, "-c", "import importlib.util as u; print([m for m in "
                  "('sklearn', 'dvc', 'joblib') if u.find_spec(m)])"], home, env)
    assert probe.stdout.strip() == "[]", probe.stdout + probe.stderr

    snippet = _block(card, "python", "## Use it")
    loaded = _run([python, "-c", snippet], home, env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    expected = _block(card, "text", "## Use it").strip()
    assert expected.startswith("[[") and loaded.stdout.strip() == expected
