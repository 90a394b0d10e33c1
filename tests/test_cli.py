"""The command line's dispatcher: building every command's parser stays light."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("asyncio", "sklearn", "scipy", "pandas", "fastapi", "uvicorn", "requests", "joblib",
         "huggingface_hub", "dvc")


def test_building_the_parser_imports_no_heavy_library() -> None:
    """`tmdb-genres --help` and every stage (each builds all parsers) pay only for what the
    command runs: a module that imports a heavy library at its top fails here (before: the
    service's limits module imported asyncio for every command)."""
    script = ("import sys, tmdb_genres.cli as cli; cli.build_parser(); "
              "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
