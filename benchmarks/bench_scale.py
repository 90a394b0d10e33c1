"""Scale benchmark: the whole pipeline on a synthetic catalogue of N movies, stage by stage.

Makes (or reuses) a synthetic catalogue of ``--movies`` movies from the real shared ones
(``tmdb-genres synth``: cost figures only, never quality), copies the project into a fresh
temporary git + DVC repository whose ``fetch.source`` is that file, then runs each stage with
``dvc repro --single-item <stage>`` in pipeline order and prints, per stage: wall seconds, CPU
seconds (user + system of every process of the stage), peak RSS (the largest process), the
stage's output bytes, the DVC cache size after it, and seconds per 1,000 movies; then the
totals as a Markdown table (what docs/scale.md carries). ``--real`` runs the real shared
movies instead. ``--use`` adds the trained model in use: ``predict`` over the whole
catalogue, ``publish --dry-run`` (the Hub folder's file sizes) and ``bench_serve.py`` (load
time, RSS, latency). The catalogue is kept in ``--data`` (default: the system temp dir).

    python benchmarks/bench_scale.py --movies 120000 [--seed 0] [--data DIR] [--use] [--keep]
    python benchmarks/bench_scale.py --real
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark import MEASURE, ROOT, SHARED_MOVIES, environment, make_repo, measured

GIB = 1024**3
MB = 1000**2
STAGES = ("fetch", "prepare", "featurize", "train", "evaluate")


def measure(args: list[str], cwd: Path) -> dict[str, float]:
    """Run a command; return its wall and CPU seconds (of every process of its tree), the
    peak RSS of its largest process
    (``rss``) and the peak of its whole process tree's memory (``tree``: the sum of the
    processes' proportional set sizes, polled twice a second, so pages shared by processes,
    like the training matrix mapped into the workers, count once). Raises on failure."""
    import psutil

    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, "-c", MEASURE, *args], cwd=cwd,
                                   env=environment(), stdout=out, stderr=err, text=True)
        tree = 0
        cpu: dict[int, float] = {}  # last CPU seconds seen of each process of the tree
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                members = [watched, *watched.children(recursive=True)]
                tree = max(tree, sum(m.memory_full_info().pss for m in members))
                for m in members:
                    times = m.cpu_times()
                    cpu[m.pid] = times.user + times.system
            except psutil.Error:  # a member ended between the listing and the reading
                pass
            time.sleep(0.5)
        wall = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{stdout}\n{stderr}")
    figures = measured(stderr)
    # rusage misses worker processes their parent never waited for (loky's): add what polling saw
    figures["cpu"] = max(figures["cpu"], sum(cpu.values()))
    return {"wall": wall, **figures, "tree": tree or figures["rss"], "stdout": stdout}


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a directory (0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def stage_outputs(repo: Path, stage: str) -> list[Path]:
    """Every path a stage writes (outs, plots and metrics), as declared in dvc.yaml."""
    spec = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]
    found = []
    for key in ("outs", "plots", "metrics"):
        for entry in spec.get(key, []):
            found.append(repo / (entry if isinstance(entry, str) else next(iter(entry))))
    return found


def catalogue(movies: int, seed: int, data: Path) -> Path:
    """The synthetic catalogue file, made with ``tmdb-genres synth`` unless already there."""
    path = data / f"synthetic-{movies}-seed{seed}.jsonl.gz"
    if path.is_file():
        print(f"catalogue: reusing {path} ({tree_bytes(path) / MB:.0f} MB)")
        return path
    data.mkdir(parents=True, exist_ok=True)
    figures = measure(["tmdb-genres", "synth", "--movies", str(movies), "--seed", str(seed),
                       "--source", str(SHARED_MOVIES), "--out", str(path)], ROOT)
    print(f"catalogue: {movies:,} synthetic movies in {figures['wall']:.0f} s, peak RSS "
          f"{figures['rss'] / GIB:.2f} GiB, {tree_bytes(path) / MB:.0f} MB -> {path}")
    return path


def run_pipeline(repo: Path, movies: int) -> list[dict]:
    """Run every stage in order in ``repo``; print and return each stage's figures."""
    rows = []
    header = (f"{'stage':<10} {'wall s':>8} {'CPU s':>8} {'peak RSS GiB':>13} "
              f"{'tree GiB':>9} {'outputs MB':>11} {'DVC cache MB':>13} {'s/1k movies':>12}")
    print(header)
    for stage in STAGES:
        figures = measure(["dvc", "repro", "--single-item", "-q", stage], repo)
        row = {
            "stage": stage, **figures,
            "outputs": sum(tree_bytes(p) for p in stage_outputs(repo, stage)),
            "cache": tree_bytes(repo / ".dvc" / "cache"),
        }
        rows.append(row)
        print(f"{stage:<10} {row['wall']:>8.1f} {row['cpu']:>8.1f} {row['rss'] / GIB:>13.2f} "
              f"{row['tree'] / GIB:>9.2f} {row['outputs'] / MB:>11.1f} {row['cache'] / MB:>13.1f} "
              f"{1000 * row['wall'] / movies:>12.3f}", flush=True)
    return rows


def markdown(rows: list[dict], movies: int, label: str) -> str:
    """The figures as a Markdown table, with the full run's totals last."""
    lines = [f"| {label}, stage | wall s | CPU s | peak RSS GiB (largest process / tree) | "
             "outputs MB | s / 1k movies |", "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['stage']} | {row['wall']:.1f} | {row['cpu']:.1f} | "
                     f"{row['rss'] / GIB:.2f} / {row['tree'] / GIB:.2f} | "
                     f"{row['outputs'] / MB:.1f} | {1000 * row['wall'] / movies:.3f} |")
    wall = sum(r["wall"] for r in rows)
    lines.append(f"| **full pipeline** | **{wall:.1f}** | {sum(r['cpu'] for r in rows):.1f} | "
                 f"**{max(r['rss'] for r in rows) / GIB:.2f}** / "
                 f"{max(r['tree'] for r in rows) / GIB:.2f} | "
                 f"{sum(r['outputs'] for r in rows) / MB:.1f} "
                 f"(DVC cache {rows[-1]['cache'] / MB:.1f}) | {1000 * wall / movies:.3f} |")
    return "\n".join(lines)


def model_use(repo: Path, source: Path, movies: int) -> None:
    """Figures of the trained model in use: `predict` over the whole catalogue (the batch
    path), the Hub folder `publish --dry-run` writes (file sizes against the Hub's limits),
    and benchmarks/bench_serve.py on this model (load time, RSS, single-request latency)."""
    figures = measure(["tmdb-genres", "predict", str(source), "-o", "predictions.jsonl"], repo)
    print(f"predict (batch path, CLI) on all {movies:,} movies: {figures['wall']:.1f} s "
          f"({movies / figures['wall']:,.0f} movies/s), CPU {figures['cpu']:.1f} s, peak RSS "
          f"{figures['rss'] / GIB:.2f} GiB")
    (repo / "predictions.jsonl").unlink()
    # publish builds the project's wheel and card from the checkout: give it what they read
    shutil.copy2(ROOT / "README.md", repo / "README.md")
    shutil.copytree(ROOT / "docs", repo / "docs", dirs_exist_ok=True)
    figures = measure(["tmdb-genres", "publish", "owner/tmdb-genres-scale", "--dry-run",
                       "--output", "hub-folder"], repo)
    sizes = sorted((p.stat().st_size, p.name) for p in (repo / "hub-folder").iterdir())
    print(f"publish --dry-run: {figures['wall']:.1f} s, peak RSS {figures['rss'] / GIB:.2f} "
          f"GiB; files: " + ", ".join(f"{name} {size / MB:.1f} MB" for size, name in sizes)
          + f" (largest {sizes[-1][0] / MB:.1f} MB; the Hub takes files up to 50 GB, and "
          "stores those over 10 MB as large files)")
    serve = measure([sys.executable, str(ROOT / "benchmarks" / "bench_serve.py"), "--models",
                     str(repo / "models"), "--movies", "300", "--warm", "50", "--repeats", "1",
                     "--clients", "2", "--batches", "2"], repo)
    print("bench_serve.py on this model (peak RSS of the benchmark and its service "
          f"{serve['tree'] / GIB:.2f} GiB):")
    print(serve["stdout"].rstrip())


def main() -> None:
    """Parse options, make the catalogue, run the pipeline and print every figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movies", type=int, help="size of the synthetic catalogue")
    parser.add_argument("--real", action="store_true", help="run the real shared movies instead")
    parser.add_argument("--seed", type=int, default=0, help="catalogue seed (default: 0)")
    parser.add_argument("--data", type=Path,
                        default=Path(tempfile.gettempdir()) / "tmdb-genres-scale",
                        help="where synthetic catalogues are kept for reuse "
                             "(default: %(default)s)")
    parser.add_argument("--use", action="store_true",
                        help="also time predict over the catalogue, publish --dry-run and "
                             "bench_serve.py on the trained model")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary repository (its path is printed)")
    args = parser.parse_args()
    if args.real == (args.movies is not None):
        parser.error("give either --movies N or --real")
    if args.movies is not None and args.movies < 1000:
        parser.error("--movies must be at least 1000 (every split needs movies)")
    if not SHARED_MOVIES.is_file():
        raise SystemExit(f"bench_scale needs the shared data at {SHARED_MOVIES}")
    print(f"tmdb-genres bench_scale, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    if args.real:
        source = SHARED_MOVIES
        movies = sum(1 for line in subprocess.run(
            ["gzip", "-dc", str(source)], capture_output=True, text=True, check=True
        ).stdout.splitlines() if line.strip())
        label = f"{movies:,} real movies"
    else:
        source = catalogue(args.movies, args.seed, args.data)
        movies = args.movies
        label = f"{movies:,} synthetic movies"
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        repo = make_repo(workdir, source)
        print(f"pipeline on {label} in {repo}")
        rows = run_pipeline(repo, movies)
        features = json.loads(subprocess.run(
            [sys.executable, "-c", "import json, sys; from tmdb_genres.io import load_joblib; "
             "v = load_joblib('models/vectorizer.joblib')['vectorizer']; "
             "print(json.dumps(len(v.feature_names)))"],
            cwd=repo, env=environment(), capture_output=True, text=True, check=True).stdout)
        print(f"features: {features:,}; models/: " + ", ".join(
            f"{p.name} {tree_bytes(p) / MB:.1f} MB" for p in sorted((repo / "models").iterdir())))
        print(markdown(rows, movies, label))
        if args.use:
            model_use(repo, source, movies)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            subprocess.run(["rm", "-rf", str(workdir)], check=False)


if __name__ == "__main__":
    main()
