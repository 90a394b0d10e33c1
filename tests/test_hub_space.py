"""The Docker Space folder: self-contained, and its own start command serves the page."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.hub_fake import CLIENT_ENV, FakeHub
from tmdb_genres import __version__
from tmdb_genres.hub import folder, space

from .test_parity import Reference

ROOT = Path(__file__).resolve().parents[1]
REPO = "alice/tmdb-genres"
SPACE = "alice/tmdb-genres-demo"


def _front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def test_the_space_folder_carries_what_it_installs(tmp_path: Path, wheel: Path) -> None:
    files = space.write_space_folder(tmp_path / "space", REPO, SPACE, ROOT)  # builds its wheel
    assert sorted(p.name for p in files) == sorted(
        ["Dockerfile", "README.md", "constraints.txt", "start.sh", space.WHEEL])
    card = _front_matter((tmp_path / "space/README.md").read_text())
    assert card["sdk"] == "docker" and card["app_port"] == space.APP_PORT
    assert card["models"] == [REPO]
    dockerfile = (tmp_path / "space/Dockerfile").read_text()
    assert f'pip install --no-cache-dir -c constraints.txt "./{space.WHEEL}[serve]"' in dockerfile
    assert f"MODEL_REPO={REPO}" in dockerfile and "COPY --chown=user . ." in dockerfile
    assert (tmp_path / "space/constraints.txt").read_bytes() == (ROOT / "constraints.txt"
                                                                 ).read_bytes()
    with zipfile.ZipFile(tmp_path / "space" / space.WHEEL) as archive:
        names = archive.namelist()
        metadata = archive.read(f"tmdb_genres-{__version__}.dist-info/METADATA").decode()
    assert "tmdb_genres/hub/folder.py" in names and "tmdb_genres/hub/remote.py" in names
    if importlib.util.find_spec("tmdb_genres.serve") is not None:  # the page's files too
        assert "tmdb_genres/serve/static/index.html" in names
    assert f"Version: {__version__}" in metadata
    assert space.start_command(tmp_path / "space") == ["sh", "start.sh"]


def test_the_accurate_models_space_installs_the_embeddings_extra(tmp_path: Path,
                                                                  wheel: Path) -> None:
    space.write_space_folder(tmp_path / "space", REPO, SPACE, ROOT, wheel=wheel,
                             kind="accurate")
    dockerfile = (tmp_path / "space/Dockerfile").read_text()
    assert (f'pip install --no-cache-dir -c constraints.txt "./{space.WHEEL}[serve,embeddings]"'
            in dockerfile)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, data: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=None if data is None else json.dumps(data).encode(),
        headers={"Content-Type": "application/json"} if data is not None else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.mark.skipif(importlib.util.find_spec("tmdb_genres.serve") is None,
                    reason="needs the `tmdb-genres serve` command (tmdb_genres.serve)")
def test_the_space_start_command_serves_the_page_over_a_published_folder(
        tmp_path: Path, toy_project: Path, params_data: dict, hub: FakeHub, wheel: Path) -> None:
    # a --dry-run model folder, published on the fake Hub
    (toy_project / "params.yaml").write_text(yaml.safe_dump(params_data), encoding="utf-8")
    (toy_project / "constraints.txt").write_bytes((ROOT / "constraints.txt").read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "tmdb_genres", "publish", REPO, "--dry-run", "--output",
         str(tmp_path / "model"), "--space", SPACE, "--space-output", str(tmp_path / "space"),
         "--wheel", str(wheel)],
        cwd=toy_project, capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert done.returncode == 0, done.stderr
    hub.seed(REPO, {name: (tmp_path / "model" / name).read_bytes() for name in folder.FILES})

    # the Space's own start command, read from its folder
    command = space.start_command(tmp_path / "space")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(CLIENT_ENV, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"),
               MODEL_REPO=REPO, PORT=str(port), SERVE_OPTIONS="--max-body-bytes 5000",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}")
    log = open(tmp_path / "space.log", "w+")  # noqa: SIM115 - read after the process ends
    process = subprocess.Popen(command, cwd=tmp_path / "space", env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            try:
                status, page = _get(base + "/")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the Space did not start: {log.read()[-2000:]}")
                time.sleep(0.2)
        assert status == 200 and "<html" in page.lower()
        status, body = _get(base + "/predict", {
            "title": "The Haunting",
            "overview": "A haunted house, a ghost in the attic, blood and a demon that screams."})
        assert status == 200
        answer = json.loads(body)
        assert "Horror" in json.dumps(answer)
        # what the Space serves is what the evaluate stage scored (see tests/test_parity.py)
        reference = Reference(toy_project, "fast")
        answers = []  # in batches that fit the 5,000-byte body limit set below
        for start in range(0, len(reference.movies), 10):
            status, body = _get(base + "/predict",
                                {"movies": reference.movies[start:start + 10]})
            answers += json.loads(body)["movies"]
        reference.check_served(answers, "the Space")
        assert ("GET", f"/api/models/{REPO}/revision/main") in hub.requests  # from the Hub
        # the service's limits, set through the Space's SERVE_OPTIONS variable
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(base + "/predict", {"title": "Long", "overview": "word " * 1500})
        assert refused.value.code == 413 and b"over the cap of 5,000" in refused.value.read()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()
