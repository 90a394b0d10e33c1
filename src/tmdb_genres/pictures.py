"""Pictures of the last ``dvc repro``: the ``dvc plots`` specs rendered to SVG offline.

``python -m tmdb_genres.pictures --out docs/img`` (``make pictures``) asks ``dvc plots show
--json`` for the filled Vega-Lite specs (the same ones ``dvc plots show`` draws, with the same
templates and data) and renders them with ``vl-convert-python`` (Vega in-process: no browser, no
network). It writes the threshold sweep, per-genre F1, the confusion shares and the 19
precision-recall curves (one grid), plus ``pictures.json``: which ``metrics/metrics.json`` they
were drawn from, so that ``tmdb-genres publish`` puts them on the model card only when they
show the model being published.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import paths
from .errors import TmdbGenresError
from .io import atomic_text, write_json

# plot id in dvc.yaml -> picture file; the precision-recall plots are drawn as one grid
PICTURES = {
    "threshold_sweep": "threshold_sweep.svg",
    "per_genre_f1": "per_genre_f1.svg",
    "confusion": "confusion.svg",
}
PR_PREFIX = "precision_recall_"
PR_PICTURE = "precision_recall.svg"
RECORD = "pictures.json"
_PR_COLUMNS = 5
_PR_SIZE = 150  # width and height of each precision-recall panel, pixels


def metrics_digest(metrics: Path = paths.METRICS) -> str:
    """SHA-256 of the metrics file the pictures describe (ties pictures to one model)."""
    return hashlib.sha256(metrics.read_bytes()).hexdigest()


def plot_specs(root: Path = Path(".")) -> dict[str, dict[str, Any]]:
    """Filled Vega-Lite specs of every plot with data, by plot id, from ``dvc plots show``."""
    try:
        done = subprocess.run(["dvc", "plots", "show", "--json"], cwd=root, capture_output=True,
                              text=True, check=False, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TmdbGenresError(f"cannot run `dvc plots show`: {exc}",
                              "install the pipeline extra (make setup)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise TmdbGenresError(f"`dvc plots show --json` failed: {last}",
                              "run `dvc repro` (or `dvc pull`) first")
    data = json.loads(done.stdout).get("data", {})
    return {plot_id: entries[0]["content"] for plot_id, entries in sorted(data.items())
            if entries and entries[0].get("type") == "vega" and entries[0].get("content")}


def precision_recall_grid(specs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One Vega-Lite spec holding every per-genre precision-recall spec, titled by genre."""
    panels = []
    for plot_id in sorted(p for p in specs if p.startswith(PR_PREFIX)):
        panel = {k: v for k, v in specs[plot_id].items() if k not in ("$schema", "params")}
        panel.update(width=_PR_SIZE, height=_PR_SIZE)
        panels.append(panel)
    if not panels:
        raise TmdbGenresError("`dvc plots show` has no precision-recall plots",
                              "run `dvc repro` first; dvc.yaml declares one per genre")
    return {"$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": "Precision-recall on test, per genre (dvc plots show)",
            "columns": _PR_COLUMNS, "concat": panels}


def render(out_dir: Path, root: Path = Path(".")) -> list[Path]:
    """Render every picture into ``out_dir``; returns the files written."""
    try:
        import vl_convert as vlc
    except ImportError:
        raise TmdbGenresError("the package 'vl-convert-python' is not installed",
                              "install the docs extra: pip install -c constraints.txt "
                              "-e '.[docs]'") from None
    specs = plot_specs(root)
    wanted = {name: specs.get(plot_id) for plot_id, name in PICTURES.items()}
    missing = sorted(plot_id for plot_id, name in PICTURES.items() if wanted[name] is None)
    if missing:
        raise TmdbGenresError(f"`dvc plots show` has no data for {', '.join(missing)}",
                              "run `dvc repro` (or `dvc pull`) first")
    wanted[PR_PICTURE] = precision_recall_grid(specs)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in sorted(wanted.items()):
        svg = vlc.vegalite_to_svg(spec)
        target = out_dir / name
        with atomic_text(target) as handle:
            handle.write(svg if svg.endswith("\n") else svg + "\n")
        written.append(target)
    record = out_dir / RECORD
    write_json(record, {"metrics_sha256": metrics_digest(root / paths.METRICS),
                        "pictures": sorted(wanted), "vl_convert": vlc.__version__})
    return [*written, record]


def current_pictures(pictures_dir: Path, metrics: Path) -> list[Path]:
    """The pictures in ``pictures_dir`` if they were drawn from ``metrics``, else none."""
    record = pictures_dir / RECORD
    if not record.is_file() or not metrics.is_file():
        return []
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if info.get("metrics_sha256") != metrics_digest(metrics):
        return []
    found = [pictures_dir / name for name in info.get("pictures", [])]
    return found if all(path.is_file() for path in found) else []


def main(argv: list[str] | None = None) -> int:
    """``python -m tmdb_genres.pictures``: render the pictures of the last ``dvc repro``."""
    parser = argparse.ArgumentParser(prog="python -m tmdb_genres.pictures",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img"),
                        help="directory of the pictures (default docs/img)")
    args = parser.parse_args(argv)
    try:
        written = render(args.out)
    except TmdbGenresError as exc:
        print(f"pictures: error: {exc}", file=sys.stderr)
        return 2
    print(f"pictures: wrote {len(written)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
