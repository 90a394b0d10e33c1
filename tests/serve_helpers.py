"""Helpers for the service tests: a model trained on a sample of the real data, and the
service on loopback (in a thread, or as the real command in a subprocess)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]


def project_copy(outputs: Path, dest: Path) -> Path:
    """A copy of the pipeline ``outputs`` at ``dest`` with the committed params.yaml, as a
    project root the service reads."""
    root = Path(shutil.copytree(outputs, dest))
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    return root


def train_sample_project(root: Path, movies: Path, every: int = 3) -> Path:
    """Run prepare -> evaluate on every ``every``-th real movie under ``root`` (with the
    committed params.yaml copied in, so the project reads like a real one)."""
    from tmdb_genres.params import parse_params

    from .conftest import run_stages

    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    with open(root / "params.yaml", encoding="utf-8") as handle:
        params = parse_params(yaml.safe_load(handle))
    with gzip.open(movies, "rt", encoding="utf-8") as handle:
        sample = [json.loads(line) for i, line in enumerate(handle) if i % every == 0]
    return run_stages(root, params, sample)


@contextmanager
def app_server(model: Any, info: dict[str, Any], workers: int = 2) -> Iterator[str]:
    """The app on a free loopback port, served by uvicorn in a thread; yields its base URL."""
    import uvicorn

    from tmdb_genres.serve.app import create_app
    from tmdb_genres.serve.command import listen_socket

    sock = listen_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(create_app(model, info, workers),
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        wait_until_up(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def wait_until_up(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None
                  ) -> None:
    """Poll ``url``/health until it answers (or the process dies, or time runs out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}: "
                                 f"{process.stderr.read() if process.stderr else ''}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{url} did not come up within {timeout} s")


@contextmanager
def serve_command(args: list[str], cwd: Path, timeout: float = 60.0,
                  log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """``tmdb-genres serve --port 0 ARGS`` as a subprocess; yields (base URL, process). Its
    stderr goes to the file ``log`` (by default a temporary one), never to a pipe that could
    fill and stall a server that logs a lot."""
    with tempfile.TemporaryDirectory(prefix="serve-log-") as scratch:
        log = log or Path(scratch) / "serve.log"
        with open(log, "w", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "tmdb_genres", "serve", "--port", "0", *args],
                cwd=cwd, stderr=stderr, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout
            while not (found := re.search(r"http://[\d.]+:(\d+)/", log.read_text("utf-8"))):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"no ready line: {log.read_text('utf-8')}")
                time.sleep(0.05)
            url = f"http://127.0.0.1:{found.group(1)}"
            wait_until_up(url, timeout, process)
            yield url, process
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
