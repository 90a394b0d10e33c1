"""Benchmark of tmdb-genres on the real shared TMDB data; prints every figure it measures.

Figures (targets on 2 cores in brackets):
- full `dvc repro` seconds from an empty cache (< 60 s) and its peak memory (< 1.5 GiB),
- threshold-only `dvc repro` seconds (< 5 s) and no-op `dvc repro` seconds (< 1.5 s),
- full-run seconds and peak memory on 25%, 50% and 100% of the data (growth should be
  close to linear), and each stage's own seconds at each size,
- `predict` throughput in overviews/s on the full data (>= 20,000),
- the ingestion figures of `bench_ingest.py` (live pull from the loopback emulator).

Each run happens in a fresh temporary git repository holding a copy of the project, so the
checkout's own outputs, cache and dvc.lock are never touched. The short figures (threshold-only,
no-op, predict) are medians over ``--repeats`` runs, with their range: on a shared virtual
machine a single run can be off by a factor of two.

    python benchmarks/benchmark.py [--skip-scaling] [--skip-ingest] [--repeats N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"
# metrics/refresh.json: declared in dvc.yaml (written by `tmdb-genres refresh`), so it must exist
PROJECT_FILES = ["src", "params.yaml", "dvc.yaml", "pyproject.toml", ".dvcignore", ".gitignore",
                 "metrics/refresh.json"]
GIB = 1024**3

# Runs a command, then prints (stderr, last line, JSON) the CPU seconds and the peak RSS in
# bytes of its process tree: RUSAGE_CHILDREN covers every waited-for descendant (dvc and its
# stage commands); ru_maxrss is that of the largest one. Parse it with measured().
MEASURE = (
    "import json, resource, subprocess, sys;"
    "code = subprocess.run(sys.argv[1:]).returncode;"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN);"
    "print(json.dumps({'cpu': u.ru_utime + u.ru_stime, 'rss': u.ru_maxrss * 1024}),"
    " file=sys.stderr);"
    "sys.exit(code)"
)


def measured(stderr: str) -> dict[str, float]:
    """The figures :data:`MEASURE` printed last on ``stderr``: ``cpu`` (s), ``rss`` (bytes)."""
    return json.loads(stderr.strip().splitlines()[-1])


def environment() -> dict[str, str]:
    """The environment with this interpreter's scripts (dvc, tmdb-genres) first on PATH."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(args: list[str], cwd: Path) -> tuple[float, int]:
    """Run a command; return its wall seconds and peak memory in bytes (raises on failure)."""
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", MEASURE, *args], cwd=cwd, env=environment(),
                            capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return seconds, int(measured(result.stderr)["rss"])


def make_repo(workdir: Path, source: Path) -> Path:
    """A fresh git + DVC repository with a copy of the project reading ``source``."""
    repo = workdir / "repo"
    repo.mkdir()
    for name in PROJECT_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, repo / name,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, repo / name)
    edit_params(repo, {"source": str(source), "watch": str(source)}, section="fetch")
    for args in (["git", "init", "-q"], ["dvc", "init", "-q"]):
        subprocess.run(args, cwd=repo, check=True, env=environment())
    return repo


def edit_params(repo: Path, values: dict, section: str) -> None:
    """Set keys of one section of the repo's params.yaml."""
    path = repo / "params.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data[section].update(values)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def sample(lines: list[str], fraction: float, path: Path) -> Path:
    """Write every movie whose position falls in the first ``fraction`` of a stride."""
    keep = [line for i, line in enumerate(lines) if (i % 100) < round(fraction * 100)]
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(keep)
    return path


def timed(label: str, seconds: list[float], unit_count: int | None = None) -> None:
    """Print the median (and range) of repeated timings; this machine's speed varies."""
    median = statistics.median(seconds)
    spread = f" (range {min(seconds):.2f}-{max(seconds):.2f} s over {len(seconds)} runs)"
    if unit_count is None:
        print(f"{label}: {median:.2f} s{spread}")
    else:
        print(f"{label}: {unit_count / median:,.0f} overviews/s, median {median:.2f} s{spread}")


def stage_seconds(repo: Path) -> dict[str, float]:
    """Wall seconds of each stage's command, run again outside DVC (same outputs)."""
    stages = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: run(["sh", "-c", stage["cmd"]], repo)[0] for name, stage in stages.items()}


def pipeline_figures(lines: list[str], fractions: list[float], repeats: int) -> None:
    """Full / threshold-only / no-op repro times, peak memory by data size, and predict."""
    for fraction in fractions:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            source = sample(lines, fraction, workdir / "movies.jsonl.gz")
            repo = make_repo(workdir, source)
            full, peak = run(["dvc", "repro", "-q"], repo)
            movies = round(len(lines) * fraction)
            print(f"full dvc repro, {fraction:.0%} of the data (~{movies} movies): "
                  f"{full:.1f} s, peak memory {peak / GIB:.2f} GiB")
            if fraction == 1.0:
                threshold = []
                for i in range(repeats):  # alternate, so that every run has a real change
                    value = 0.35 if i % 2 == 0 else 0.3
                    edit_params(repo, {"threshold": value, "mode": "fixed"}, section="evaluate")
                    threshold.append(run(["dvc", "repro", "-q"], repo)[0])
                timed("threshold-only dvc repro", threshold)
                timed("no-op dvc repro", [run(["dvc", "repro", "-q"], repo)[0]
                                          for _ in range(repeats)])
                predict_figures(repo, lines, repeats)
            # last: rewriting the outputs outside DVC makes its next run rehash them
            stages = ", ".join(f"{name} {seconds:.1f} s"
                               for name, seconds in stage_seconds(repo).items())
            print(f"  each stage's command alone, {fraction:.0%}: {stages}")


def predict_figures(repo: Path, lines: list[str], repeats: int) -> None:
    """Throughput of the trained model in ``repo`` on every overview of the shared data."""
    records = [{"id": m["id"], "title": m["title"], "overview": m["overview"]}
               for m in map(json.loads, lines)]
    sys.path.insert(0, str(ROOT / "src"))
    from tmdb_genres.model import GenreModel
    from tmdb_genres.predict import batches, predict_records

    model = GenreModel.load(repo / "models/vectorizer.joblib", repo / "models/model.joblib",
                            repo / "models/thresholds.json")
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        count = sum(len(predict_records(model, batch)) for batch in batches(iter(records)))
        seconds.append(time.perf_counter() - start)
    timed("predict (one process, batches of 2048, JSON-ready results)", seconds, count)
    source = repo / "input.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    cli = [run(["tmdb-genres", "predict", str(source), "-o", str(repo / "out.jsonl")], repo)[0]
           for _ in range(repeats)]
    timed("tmdb-genres predict (CLI, including start-up and model load)", cli, count)


def main() -> None:
    """Parse options and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scaling", action="store_true",
                        help="only the 100%% run (no 25%%/50%% runs)")
    parser.add_argument("--skip-ingest", action="store_true", help="no live-pull figures")
    parser.add_argument("--repeats", type=int, default=5,
                        help="runs of each short figure (threshold-only, no-op, predict); "
                             "the median is reported")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    if not SHARED_MOVIES.is_file():
        raise SystemExit(f"benchmark needs the shared data at {SHARED_MOVIES}")
    with gzip.open(SHARED_MOVIES, "rt", encoding="utf-8") as handle:
        lines = handle.readlines()
    print(f"tmdb-genres benchmark on {len(lines)} movies, {os.cpu_count()} cores")
    pipeline_figures(lines, [1.0] if args.skip_scaling else [0.25, 0.5, 1.0], args.repeats)
    if not args.skip_ingest:
        sys.path.insert(0, str(Path(__file__).parent))
        import bench_ingest

        bench_ingest.main()


if __name__ == "__main__":
    main()
