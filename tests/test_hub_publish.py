"""`tmdb-genres publish` against a loopback fake of the Hugging Face Hub (real HTTP and client)."""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import built_wheel, run_toy_pipeline
from tests.hub_fake import CLIENT_ENV, FakeHub
from tmdb_genres.hub import folder, space
from tmdb_genres.hub.card import card_micro_f1
from tmdb_genres.hub.publish import decide

REPO = "alice/tmdb-genres"
TOKEN = "hf_writer"  # the fake's write token for user alice


@pytest.fixture
def project(toy_project: Path, params_data: dict) -> Path:
    """The toy pipeline's outputs with the params.yaml they were made with."""
    (toy_project / "params.yaml").write_text(yaml.safe_dump(params_data), encoding="utf-8")
    return toy_project


@pytest.fixture(scope="module")
def _worse_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(__file__).resolve().parents[1]
    data = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    data["evaluate"].update(mode="fixed", threshold=0.97, at_least_one=False)
    out = run_toy_pipeline(tmp_path_factory.mktemp("worse"), copy.deepcopy(data))
    (out / "params.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    return out


def _env(hub: FakeHub, tmp_path: Path, token: str | None = TOKEN, **extra: str
         ) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(CLIENT_ENV, HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), **extra)
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def _publish(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tmdb_genres", "publish", *args,
                           "--wheel", str(built_wheel())], cwd=cwd,
                          env=env, capture_output=True, text=True, check=False, timeout=120)


def _card_score(hub: FakeHub) -> float | None:
    return card_micro_f1(hub.repo(REPO).files["README.md"].decode())


def test_first_publish_creates_the_repo_and_uploads_every_file(
        hub: FakeHub, project: Path, tmp_path: Path) -> None:
    done = _publish(project, _env(hub, tmp_path), REPO)
    assert done.returncode == 0, done.stderr
    assert "does not exist on the Hub yet" in done.stdout
    repo = hub.repo(REPO)
    assert repo is not None and len(repo.commits) == 2  # the Hub's initial commit, then ours
    # the model's files and the wheel its card installs (the toy project has no pictures)
    assert set(repo.files) == {".gitattributes", *folder.FILES, space.WHEEL}
    assert "model.safetensors" in repo.lfs  # uploaded with the LFS protocol, not inline
    assert ("PUT", next(p for m, p in hub.requests if m == "PUT")) in hub.requests
    # --dry-run writes exactly what was uploaded
    dry = _publish(project, _env(hub, tmp_path), REPO, "--dry-run", "--output",
                   str(tmp_path / "dry"))
    assert dry.returncode == 0, dry.stderr
    assert "nothing uploaded" in dry.stdout
    assert len(hub.repo(REPO).commits) == 2
    for name in [*folder.FILES, space.WHEEL]:
        assert (tmp_path / "dry" / name).read_bytes() == repo.files[name], name
    # the token is sent, and never shown
    assert f"Bearer {TOKEN}" in hub.authorizations
    assert TOKEN not in done.stdout + done.stderr + dry.stdout + dry.stderr


def test_the_published_model_loads_with_the_documented_lines(
        hub: FakeHub, project: Path, tmp_path: Path) -> None:
    assert _publish(project, _env(hub, tmp_path), REPO).returncode == 0
    card = hub.repo(REPO).files["README.md"].decode()
    example = card.split("```python\n", 1)[1].split("```", 1)[0]
    assert example.count("\n") == 3 and f'from_pretrained("{REPO}")' in example
    script = "import sys\nsys.modules['sklearn'] = None\nsys.modules['joblib'] = None\n" + example
    done = subprocess.run([sys.executable, "-c", script], env=_env(hub, tmp_path, token=None),
                          capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Horror" in done.stdout


def test_a_worse_model_is_refused_and_force_publishes_it(
        hub: FakeHub, project: Path, _worse_outputs: Path, tmp_path: Path) -> None:
    assert _publish(project, _env(hub, tmp_path), REPO).returncode == 0
    best = _card_score(hub)
    worse = json.loads((_worse_outputs / "metrics/metrics.json").read_text())["test"]["micro_f1"]
    assert worse < best
    commits = len(hub.repo(REPO).commits)
    refused = _publish(_worse_outputs, _env(hub, tmp_path), REPO)
    assert refused.returncode == 0, refused.stderr
    assert (f"test micro-F1 {worse:.4f} (this model) vs {best:.4f} ({REPO} on the Hub): "
            "not higher, nothing uploaded") in refused.stdout
    assert len(hub.repo(REPO).commits) == commits and _card_score(hub) == best
    again = _publish(project, _env(hub, tmp_path), REPO)  # the same model is not higher either
    assert "not higher" in again.stdout and len(hub.repo(REPO).commits) == commits
    forced = _publish(_worse_outputs, _env(hub, tmp_path), REPO, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "publishing anyway (--force)" in forced.stdout
    assert len(hub.repo(REPO).commits) == commits + 1 and _card_score(hub) == worse
    better = _publish(project, _env(hub, tmp_path), REPO)
    assert "higher, publishing" in better.stdout and _card_score(hub) == best


@pytest.mark.parametrize(("token", "expected"), [
    ("hf_not-a-real-token-123", "the Hub rejected HF_TOKEN (401: Invalid credentials in "
                                "Authorization header)"),
    ("hf_reader", "HF_TOKEN may not upload to alice/tmdb-genres (403 Forbidden)"),
    (None, "HF_TOKEN is not set"),
])
def test_token_problems_are_one_line(hub: FakeHub, project: Path, tmp_path: Path,
                                     token: str | None, expected: str) -> None:
    done = _publish(project, _env(hub, tmp_path, token=token), REPO)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    if token:
        assert token not in done.stdout + done.stderr
    assert hub.repo(REPO) is None


def test_no_write_access_to_an_existing_repo_is_one_line(hub: FakeHub, project: Path,
                                                         tmp_path: Path) -> None:
    hub.seed("bob/genres", {"README.md": b"# someone else's model\n"})
    done = _publish(project, _env(hub, tmp_path), "bob/genres")
    assert done.returncode == 2
    assert "bob/genres has no card with a test micro-F1" in done.stdout
    assert done.stderr.count("\n") == 1 and "(403 Forbidden)" in done.stderr, done.stderr


def test_a_dead_endpoint_is_one_line(project: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(CLIENT_ENV, HF_ENDPOINT=f"http://127.0.0.1:{port}", HF_TOKEN=TOKEN,
               HF_HOME=str(tmp_path / "hf"))
    done = _publish(project, env, REPO)
    assert done.returncode == 1  # the Hub could not be reached: nothing was changed
    assert done.stderr.count("\n") == 1 and "cannot reach the Hub" in done.stderr, done.stderr
    assert TOKEN not in done.stderr


def test_the_fake_answers_missing_repos_like_the_hub(hub: FakeHub) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    for token in (TOKEN, False):  # 404 with a token, 401 without one: both "not found"
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=hub.url, token=token).model_info("alice/nothing-here")
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi(endpoint=hub.url, token="hf_bad").whoami()
    assert caught.value.response.status_code == 401
    assert caught.value.response.headers["X-Error-Message"] == ("Invalid credentials in "
                                                                "Authorization header")


@pytest.mark.parametrize(("new", "current", "exists", "force", "upload", "words"), [
    (0.6, None, False, False, True, "does not exist on the Hub yet"),
    (0.6, None, True, False, True, "has no card with a test micro-F1"),
    (0.61, 0.6, True, False, True, "0.6100 (this model) vs 0.6000 (o/n on the Hub): higher"),
    (0.6, 0.6, True, False, False, "not higher, nothing uploaded"),
    (0.5, 0.6, True, True, True, "not higher, publishing anyway (--force)"),
])
def test_decide(new: float, current: float | None, exists: bool, force: bool, upload: bool,
                words: str) -> None:
    decision = decide(new, current, "o/n", exists, force)
    assert decision.upload is upload and words in decision.message


def test_dry_run_needs_an_output(project: Path, tmp_path: Path, hub: FakeHub) -> None:
    done = _publish(project, _env(hub, tmp_path), REPO, "--dry-run")
    assert done.returncode == 2 and "--dry-run needs --output DIR" in done.stderr
    assert hub.requests == []




@pytest.mark.parametrize(("status", "expected"), [
    (500, "the Hub refused to read the card of alice/tmdb-genres: Server error '500"),
    (503, "the Hub refused to read the card of alice/tmdb-genres: Server error '503"),
    (403, "HF_TOKEN may not read the card of alice/tmdb-genres (403 Forbidden)"),
])
def test_a_hub_that_cannot_show_its_card_stops_publish(hub: FakeHub, project: Path,
                                                       tmp_path: Path, status: int,
                                                       expected: str) -> None:
    """Fail closed. Before: whoami 200 and resolve 500, 503 or 403 made publish say "has no
    card with a test micro-F1: publishing" and upload over the better model."""
    hub.seed(REPO, {"README.md": b"---\nlicense: mit\n---\n# the better model\n"})
    commits = len(hub.repo(REPO).commits)
    hub.resolve_fault = status
    done = _publish(project, _env(hub, tmp_path), REPO)
    assert done.returncode == 1, done.stdout + done.stderr  # a remote failure, not bad input
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert "nothing uploaded" in done.stderr and "--force" in done.stderr
    assert "publishing" not in done.stdout
    assert len(hub.repo(REPO).commits) == commits  # nothing was uploaded
    assert not [path for method, path in hub.requests if method in ("PUT", "POST")
                and "/commit/" in path]
    assert TOKEN not in done.stdout + done.stderr
    hub.resolve_fault = None  # --force stays the explicit override
    forced = _publish(project, _env(hub, tmp_path), REPO, "--force")
    assert forced.returncode == 0, forced.stderr
    assert len(hub.repo(REPO).commits) == commits + 1


def test_a_repo_without_a_card_is_still_published(hub: FakeHub, project: Path,
                                                  tmp_path: Path) -> None:
    """The real 404 of a missing card is the one "no card" answer."""
    hub.seed(REPO, {"notes.txt": b"no card here\n"})
    done = _publish(project, _env(hub, tmp_path), REPO)
    assert done.returncode == 0, done.stderr
    assert f"{REPO} has no card with a test micro-F1: publishing" in done.stdout
    assert "README.md" in hub.repo(REPO).files
