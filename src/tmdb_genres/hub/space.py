"""The demo Space: a Docker Space folder that serves the published model with its web page.

The folder builds from itself alone: it carries a wheel of this exact tmdb-genres version and
the pinned ``constraints.txt`` it is installed with. At start-up (``start.sh``, the image's
``CMD``) it downloads the model from the Hub and runs ``tmdb-genres serve --model-dir``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from .. import __version__
from ..errors import TmdbGenresError
from ..io import atomic_dir

APP_PORT = 7860  # the port a Docker Space routes to (``app_port`` in its card)
WHEEL = f"tmdb_genres-{__version__}-py3-none-any.whl"

_START = """#!/bin/sh
# Start-up of the Space: download the model from the Hub (MODEL_REPO; HF_ENDPOINT and
# HF_TOKEN apply, a local folder is used as it is), then serve it with its page on PORT.
# It is public: the service's limits (body size, slow clients, connections) keep their
# defaults; SERVE_OPTIONS (a Space variable, e.g. "--max-connections 200") changes them.
set -eu
model_dir="$(python -m tmdb_genres.hub.remote "${MODEL_REPO:?set MODEL_REPO}")"
# shellcheck disable=SC2086 # SERVE_OPTIONS is a list of options: split on purpose
exec tmdb-genres serve --model-dir "$model_dir" --host 0.0.0.0 --port "${PORT:-%(port)d}" \
  ${SERVE_OPTIONS:-}
"""

_DOCKERFILE = """# A Docker Space for the tmdb-genres model %(repo)s.
# Everything it installs is in this folder: the tmdb-genres wheel and its pinned constraints.
FROM python:3.11-slim
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app
COPY --chown=user . .
RUN pip install --no-cache-dir -c constraints.txt "./%(wheel)s[%(extras)s]"
USER user
ENV HOME=/home/user PORT=%(port)d MODEL_REPO=%(repo)s
EXPOSE %(port)d
CMD ["sh", "start.sh"]
"""


def space_card(repo_id: str, space_id: str) -> str:
    """The Space's README.md: the Hub's Space settings, then what the demo does."""
    front = {
        "title": "TMDB genres",
        "emoji": "🎬",
        "colorFrom": "indigo",
        "colorTo": "pink",
        "sdk": "docker",
        "app_port": APP_PORT,
        "pinned": False,
        "license": "mit",
        "models": [repo_id],
        "short_description": "Movie genres from a title and an overview",
    }
    return "\n".join([
        "---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip("\n"), "---", "",
        f"# {space_id.split('/')[-1]}: movie genres from a title and an overview", "",
        f"Paste an overview and see the genres [{repo_id}](https://huggingface.co/{repo_id}) "
        "ranks, with every genre's probability, a threshold slider and the words that pushed "
        "each genre up. The same app answers `POST /predict`, `GET /genres` and `GET /health` "
        "(OpenAPI docs at `/docs`).", "",
        f"The image installs the tmdb-genres wheel in this folder (`{WHEEL}`) with the pinned "
        "`constraints.txt`; `start.sh` downloads the model at start-up and runs "
        "`tmdb-genres serve --model-dir`. Set the `MODEL_REPO` variable to serve another "
        "published model.", "",
    ])


_WHEEL_EPOCH = "315532800"  # 1980-01-01, the earliest time a zip file can hold


def build_wheel(project_root: Path, out_dir: Path) -> Path:
    """Build this project's wheel into ``out_dir`` from a clean copy of its sources."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tmdb-genres-wheel-") as tmp:
        source = Path(tmp) / "src-copy"
        source.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(project_root / name, source / name)
        shutil.copytree(project_root / "src", source / "src",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
        done = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
             "--disable-pip-version-check", "--wheel-dir", str(Path(tmp) / "dist"), str(source)],
            capture_output=True, text=True, check=False,
            # fixed timestamps in the zip: the same sources give the same wheel bytes
            env={**os.environ, "SOURCE_DATE_EPOCH": _WHEEL_EPOCH})
        built = sorted((Path(tmp) / "dist").glob("tmdb_genres-*.whl"))
        if done.returncode != 0 or not built:
            last = (done.stderr.strip().splitlines() or ["no wheel was written"])[-1]
            raise TmdbGenresError(f"cannot build the tmdb-genres wheel for the Space: {last}",
                                  "check that `pip wheel .` works in the project")
        target = out_dir / WHEEL
        shutil.copy2(built[0], target)
    return target


def write_space_folder(out_dir: Path, repo_id: str, space_id: str, project_root: Path,
                       wheel: Path | None = None, kind: str = "fast") -> list[Path]:
    """Atomically write the Docker Space folder; return its files, sorted.

    ``wheel`` reuses an already built wheel of this version instead of building one. For the
    ``accurate`` model the image also installs the ``embeddings`` extra.
    """
    constraints = project_root / "constraints.txt"
    if not constraints.is_file():
        raise TmdbGenresError(f"{str(constraints)!r} not found",
                              "run publish from the project root (where constraints.txt is)")
    values = {"repo": repo_id, "port": APP_PORT, "wheel": WHEEL,
              "extras": "serve,embeddings" if kind == "accurate" else "serve"}
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / "README.md").write_text(space_card(repo_id, space_id), encoding="utf-8")
        (tmp / "Dockerfile").write_text(_DOCKERFILE % values, encoding="utf-8")
        (tmp / "start.sh").write_text(_START % values, encoding="utf-8")
        (tmp / "start.sh").chmod(0o755)
        shutil.copy2(constraints, tmp / "constraints.txt")
        if wheel is not None:
            shutil.copy2(wheel, tmp / WHEEL)
        else:
            build_wheel(project_root, tmp)
    return sorted(out_dir.iterdir())


def start_command(space_dir: Path) -> list[str]:
    """The command the Space's image runs (its Dockerfile's ``CMD``), as an argument list."""
    import json

    for line in (Path(space_dir) / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("CMD "):
            return [str(part) for part in json.loads(line[4:])]
    raise TmdbGenresError(f"no CMD in {space_dir}/Dockerfile", "write the Space folder again")
