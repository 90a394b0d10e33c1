"""Benchmark of the live ingestion path against the loopback TMDB emulator.

Without ``--movies``: prints movies/s for a full pull of the shared data with the client rate
limit off: with a well-behaved server, with 10% of requests faulted, and with ties on the sort
key reordered on every request (as TMDB does), alone and on top of the faults; and, for each,
the requests made per movie (ideal: 1/20 = 0.05) and the re-queries the completeness check
needed.

With ``--movies N``: a live pull at scale. It writes a synthetic catalogue of N movies
(``tmdb_genres.sources.synthetic``, built from the shared movies), serves it with
``tmdb-genres emulator`` in its own process, and runs ``tmdb-genres fetch`` in another:
the catalogue read as a file (the reference snapshot), a full live pull, then a pull killed
(SIGKILL) half way and rerun. It prints wall time, peak RSS of the client and of the emulator,
requests per movie, and whether the resumed pull's snapshot is byte-identical to the
reference.

    python benchmarks/bench_ingest.py [--cases clean,faults,...]
    python benchmarks/bench_ingest.py --movies 1000000 [--work DIR] [--no-resume]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED_MOVIES = ROOT.parent / "shared" / "data" / "movies.jsonl.gz"
TOKEN = "bench-token"
CASES = {  # name: emulator options
    "clean": {},
    "faults": {"fault_rate": 0.10},
    "ties": {"shuffle_ties": True},
    "ties+faults": {"fault_rate": 0.10, "shuffle_ties": True},
}


def pull_once(movies: list, **server: Any) -> tuple[float, int, dict[str, Any]]:
    """One full pull into a fresh directory: ``(seconds, movies, manifest)``."""
    from tmdb_genres.fetch import fetch
    from tmdb_genres.params import FetchParams
    from tmdb_genres.sources import emulator

    params = FetchParams(source="tmdb", snapshot="bench", requests_per_second=0.0,
                         concurrency=4, timeout_seconds=0.5, max_retries=8)
    config = emulator.EmulatorConfig(movies=movies, token=TOKEN, seed=1, retry_after=0,
                                     slow_seconds=0.8, **server)
    server_, thread = emulator.start(config)
    cwd = os.getcwd()
    saved = {k: os.environ.get(k) for k in ("TMDB_API_BASE", "TMDB_API_TOKEN")}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            os.chdir(tmp)
            os.environ.update(TMDB_API_BASE=server_.base_url, TMDB_API_TOKEN=TOKEN)
            start = time.perf_counter()
            report = fetch(params, Path("raw/movies.jsonl"), Path("metrics/fetch.json"))
            seconds = time.perf_counter() - start
        finally:
            os.chdir(cwd)
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            server_.shutdown()
            server_.server_close()
            thread.join(5)
    return seconds, report.movies, report.manifest


GIB = 1 << 30


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str],
                 kill_when: Any = None) -> tuple[float, float, float, int]:
    """Run ``cmd``; ``(wall seconds, CPU seconds, peak RSS GiB, return code)``, the CPU
    seconds (user + system) and peak RSS from the rusage ``wait4`` gives of the child.
    ``kill_when()`` is polled: when true the process is sent SIGKILL. Its stderr goes to a
    temporary file (read for the error message), never to a pipe that could fill."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                                stderr=stderr)
        while kill_when is not None and proc.poll() is None:
            if kill_when():
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.2)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0, -signal.SIGKILL):
            stderr.seek(0)
            error = stderr.read().decode(errors="replace")
            raise SystemExit(f"bench_ingest: {' '.join(cmd)} failed: {error.strip()[-500:]}")
    return (seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024 / GIB,
            proc.returncode)


def write_params(root: Path, source: str) -> None:
    """``params.yaml`` with a fetch section for ``source`` (a file, or ``tmdb``)."""
    import yaml

    data = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    watch = str(ROOT / "src/tmdb_genres/sources/tmdb_api.py") if source == "tmdb" else source
    data["fetch"].update(source=source, watch=watch, snapshot=f"bench-{root.name}",
                         release_date_lte="2030-12-31", requests_per_second=0,
                         concurrency=4, timeout_seconds=30, max_retries=8)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


class Emulator:
    """``tmdb-genres emulator`` in its own process, serving a catalogue file on loopback. Its
    stderr goes to a temporary file (where the ready line is read), never to a pipe that
    could fill and stall it."""

    def __init__(self, catalogue: Path) -> None:
        start = time.perf_counter()
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed (removed) in stop()
            prefix="bench-ingest-emulator-", suffix=".log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tmdb_genres", "emulator", "--snapshot", str(catalogue),
             "--port", "0", "--rate-limit", "0", "--token", TOKEN],
            stdout=subprocess.DEVNULL, stderr=self.log)
        path = Path(self.log.name)
        while " at http://127.0.0.1:" not in (text := path.read_text(errors="replace")):
            if self.proc.poll() is not None:
                self.log.close()
                raise SystemExit(f"bench_ingest: the emulator did not start: {text.strip()}")
            time.sleep(0.05)
        line = next(line for line in text.splitlines() if " at http://127.0.0.1:" in line)
        self.base_url = line.split(" at ", 1)[1].split()[0]
        self.load_seconds = time.perf_counter() - start

    def peak_rss_gib(self) -> float:
        """The emulator's peak RSS so far (VmHWM)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text(encoding="utf-8")
        kib = next(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith("VmHWM:"))
        return kib * 1024 / GIB

    def stop(self) -> None:
        """Stop the emulator process (and remove its log)."""
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


def scale_pull(n: int, work: Path, resume: bool) -> None:
    """Print the figures of a live pull of ``n`` synthetic movies (see the module doc)."""
    from tmdb_genres.fetch import file_sha256
    from tmdb_genres.sources import synthetic

    work.mkdir(parents=True, exist_ok=True)
    catalogue = work / f"synthetic-{n}.jsonl.gz"
    if not catalogue.is_file():
        start = time.perf_counter()
        synthetic.write(SHARED_MOVIES, n, catalogue)
        print(f"ingest [{n:,} movies]: synthetic catalogue written in "
              f"{time.perf_counter() - start:.0f} s ({catalogue.stat().st_size / 1e6:.0f} MB)",
              flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop("TMDB_API_KEY", None)
    fetch = [sys.executable, "-m", "tmdb_genres", "fetch", "--params", "params.yaml"]
    snapshot = Path("data/raw/movies.jsonl")

    reference = work / "file"
    write_params(reference, str(catalogue.resolve()))
    seconds, _, rss, _ = run_measured(fetch, reference, env)
    expected = file_sha256(reference / snapshot)
    print(f"ingest [{n:,} movies]: fetch from the catalogue file: {seconds:.0f} s, "
          f"peak RSS {rss:.2f} GiB (the reference snapshot)", flush=True)

    emulator = Emulator(catalogue)
    try:
        env.update(TMDB_API_BASE=emulator.base_url, TMDB_API_TOKEN=TOKEN)
        print(f"ingest [{n:,} movies]: emulator loaded the catalogue in "
              f"{emulator.load_seconds:.0f} s, RSS {emulator.peak_rss_gib():.2f} GiB",
              flush=True)
        live = work / "live"
        write_params(live, "tmdb")
        seconds, cpu, rss, _ = run_measured(fetch, live, env)
        manifest = json.loads((live / "metrics/fetch_manifest.json").read_text())
        movies, requests = manifest["movies"], manifest["requests"]
        print(f"ingest [{n:,} movies]: live pull: {movies:,} movies in {seconds:.0f} s "
              f"({movies / seconds:,.0f} movies/s, client CPU "
              f"{cpu:.0f} s); "
              f"{requests:,} requests ({manifest['retries']} retries), "
              f"{requests / movies:.4f} per movie (ideal 1/20 = 0.0500); "
              f"{manifest['windows']} windows, {manifest['window_splits']} splits; "
              f"complete: {manifest['completeness']['complete']}; client peak RSS "
              f"{rss:.2f} GiB; snapshot equals the reference: "
              f"{file_sha256(live / snapshot) == expected}", flush=True)
        if resume:
            killed = work / "killed"
            write_params(killed, "tmdb")
            windows = killed / "data/cache/tmdb"
            half = max(1, manifest["windows"] // 2)
            first, _, rss1, code = run_measured(
                fetch, killed, env,
                kill_when=lambda: len(list(windows.glob("*/windows/*.json"))) >= half)
            done = len(list(windows.glob("*/windows/*.json")))
            second, _, rss2, _ = run_measured(fetch, killed, env)
            again = json.loads((killed / "metrics/fetch_manifest.json").read_text())
            print(f"ingest [{n:,} movies]: resume: killed (SIGKILL: {code == -signal.SIGKILL}) "
                  f"after {first:.0f} s with {done} of {manifest['windows']} windows "
                  f"checkpointed; the rerun resumed {again['windows_resumed']} windows, made "
                  f"{again['requests']:,} requests in {second:.0f} s (peak RSS "
                  f"{max(rss1, rss2):.2f} GiB); snapshot byte-identical to the reference: "
                  f"{file_sha256(killed / snapshot) == expected}", flush=True)
        print(f"ingest [{n:,} movies]: emulator peak RSS {emulator.peak_rss_gib():.2f} GiB",
              flush=True)
    finally:
        emulator.stop()


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    parser = argparse.ArgumentParser(
        description="Time full pulls of the shared movies (../shared/data/movies.jsonl.gz) "
                    "from the loopback TMDB emulator: clean, with 10% of requests faulted, "
                    "and with ties shuffled per request, alone and with the faults; or, with "
                    "--movies N, a live pull of a synthetic catalogue of N movies (peak RSS "
                    "of client and emulator, requests per movie, wall time, kill and resume).")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated cases to run (default: %(default)s)")
    parser.add_argument("--movies", type=int, default=None,
                        help="pull a synthetic catalogue of this many movies instead")
    parser.add_argument("--work", type=Path, default=None,
                        help="with --movies: folder for the catalogue and the pulls (kept, so "
                             "the catalogue is reused; default: a temporary folder)")
    parser.add_argument("--no-resume", dest="resume", action="store_false",
                        help="with --movies: skip the kill-and-resume pull")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Print the ingestion figures (skips, saying why, without the shared data)."""
    args = build_parser().parse_args(argv)
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        build_parser().error(f"unknown case {unknown[0]!r}; choose from {', '.join(CASES)}")
    if not SHARED_MOVIES.is_file():
        print(f"bench_ingest: skipped, {SHARED_MOVIES} not found")
        return
    if args.movies is not None:
        if args.movies < 1:
            build_parser().error("--movies must be at least 1")
        if args.work is not None:
            scale_pull(args.movies, args.work.resolve(), args.resume)
        else:
            with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
                scale_pull(args.movies, Path(tmp), args.resume)
        return
    from tmdb_genres.sources import emulator

    movies = emulator.load_movies(SHARED_MOVIES)
    for case in cases:
        seconds, count, manifest = pull_once(movies, **CASES[case])
        requests = manifest["requests"]
        completeness = manifest["completeness"]
        requeries = ", ".join(f"{k} {v}" for k, v in completeness["requeries"].items())
        print(f"ingest [{case}]: {count / seconds:,.0f} movies/s ({count} movies in "
              f"{seconds:.1f} s); {requests} requests ({manifest['retries']} retries), "
              f"{requests / count:.4f} per movie (ideal 1/20 = 0.0500); "
              f"collected {completeness['collected']} of {completeness['expected']}; "
              f"re-queries: {requeries}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
