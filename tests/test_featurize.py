from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.featurize import (
    SHARD_ROWS,
    features,
    featurize,
    fit_vectorizer,
    label_matrix,
    load_split,
    split_chunks,
    text_features,
)
from tmdb_genres.io import load_joblib, read_jsonl, write_jsonl
from tmdb_genres.params import parse_params
from tmdb_genres.prepare import prepare

from .conftest import toy_movies


def test_vectorizer_follows_params(params_data):
    texts = [m["title"] + " . " + m["overview"] for m in toy_movies(60)]
    params = parse_params(params_data).featurize
    assert [b.name for b in fit_vectorizer(params, texts).blocks] == ["word", "char"]
    params_data["featurize"]["char"]["ngram_max"] = 0
    params = parse_params(params_data).featurize
    assert [b.name for b in fit_vectorizer(params, texts).blocks] == ["word"]


def test_vectorizer_equals_scikit_learn_tfidf(params_data):
    """Same columns and weights as scikit-learn's TfidfVectorizer blocks, side by side."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    # the title twice, as prepare builds it, so that some terms occur more than once (tf > 1)
    texts = [f"{m['title']} . {m['title']} . {m['overview']}" for m in toy_movies(200)]
    params = parse_params(params_data).featurize
    ours = fit_vectorizer(params, texts[:150])
    word = TfidfVectorizer(ngram_range=(1, params.word_ngram_max), min_df=params.word_min_df,
                           stop_words=params.stop_words, sublinear_tf=params.sublinear_tf)
    char = TfidfVectorizer(analyzer="char_wb", min_df=params.char_min_df,
                           ngram_range=(params.char_ngram_min, params.char_ngram_max),
                           sublinear_tf=params.sublinear_tf)
    for reference in (word, char):
        reference.fit(texts[:150])
    assert ours.feature_names == [*word.get_feature_names_out(), *char.get_feature_names_out()]
    expected = np.hstack([word.transform(texts).toarray(), char.transform(texts).toarray()])
    assert np.allclose(ours.transform(texts).toarray(), expected, atol=1e-6)


def test_saved_model_predicts_without_scikit_learn(toy_project: Path):
    """The artifacts are plain arrays: they load and predict with scikit-learn unimportable."""
    script = (
        "import sys; sys.modules['sklearn'] = None;"  # any import of sklearn now fails
        "from pathlib import Path; from tmdb_genres.model import GenreModel;"
        "m = Path(sys.argv[1]);"
        "model = GenreModel.load(m / 'vectorizer.joblib', m / 'model.joblib',"
        " m / 'thresholds.json');"
        "print(model.decide(model.probabilities([model.text('Boo', 'a haunted ghost')])))"
    )
    result = subprocess.run([sys.executable, "-c", script, str(toy_project / "models")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Horror" in result.stdout


def test_label_matrix_columns_follow_genre_order():
    y = label_matrix([{"genres": ["Drama"]}, {"genres": ["Action", "Drama"]}],
                     ["Action", "Comedy", "Drama"])
    assert y.tolist() == [[0, 0, 1], [1, 0, 1]]


def test_features_fit_on_train_only(toy_project: Path):
    saved = load_joblib(toy_project / "models/vectorizer.joblib")
    assert saved["text_fields"] == ["title", "overview"]
    vocabulary = saved["vectorizer"].blocks[0].counter.names
    train = load_split(toy_project / "data/features", "train")
    test = load_split(toy_project / "data/features", "test")
    assert train["X"].shape[1] == test["X"].shape[1] == len(saved["vectorizer"].feature_names)
    assert "explosion" in vocabulary
    assert train["Y"].shape == (train["X"].shape[0], 19)
    assert np.all(np.diff(train["ids"]) > 0)
    assert train["X"].dtype == np.float32 and train["X"].indices.dtype == np.int32


def test_shards_hold_the_rows_of_the_vectoriser_in_order(tmp_path: Path, params_data):
    """Features written a shard at a time equal the whole split transformed at once."""
    import scipy.sparse as sp

    params = parse_params(params_data)
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, toy_movies(300))
    prepare(params.prepare, snapshot, tmp_path / "prepared", tmp_path / "prepare.json")
    featurize(params.featurize, tmp_path / "prepared", tmp_path / "features",
              tmp_path / "v.joblib")
    rows = read_jsonl(tmp_path / "prepared/train.jsonl")
    chunks = list(split_chunks(tmp_path / "prepared", "train", rows=64))
    assert [r for c in chunks for r in c] == rows and max(map(len, chunks)) == 64
    vectorizer = load_joblib(tmp_path / "v.joblib")["vectorizer"]
    saved = load_split(tmp_path / "features", "train")
    whole = features(vectorizer, params.featurize, rows, training=True)
    assert (sp.csr_matrix(saved["X"]) != whole).nnz == 0
    assert saved["ids"].tolist() == [row["id"] for row in rows]
    assert len(rows) <= SHARD_ROWS and len(list((tmp_path / "features/train").iterdir())) == 1
    test_rows = read_jsonl(tmp_path / "prepared/test.jsonl")
    saved = load_split(tmp_path / "features", "test")
    assert (saved["X"] != features(vectorizer, params.featurize, test_rows)).nnz == 0
    assert (saved["X_no_metadata"] != features(vectorizer, params.featurize, test_rows,
                                               with_metadata=False)).nnz == 0


def test_features_from_the_text_matrix_are_the_same_bytes(params_data):
    """The TF-IDF part made once gives every variant exactly the matrix made from scratch,
    and is left as it was (the metadata variants and the text-only vectoriser share it)."""
    import dataclasses

    params = parse_params(params_data).featurize
    movies = toy_movies(120)
    rows = [{"id": m["id"], "text": m["title"] + " . " + m["overview"],
             "metadata": {k: m[k] for k in ("original_language", "release_date",
                                              "vote_count", "vote_average")}}
            for m in movies]
    vectorizer = fit_vectorizer(params, [r["text"] for r in rows[:80]],
                                [r["metadata"] for r in rows[:80]])
    assert vectorizer.metadata is not None
    held_out = rows[80:]
    text = text_features(vectorizer, held_out)
    before = [a.copy() for a in (text.data, text.indices, text.indptr)]
    text_only = dataclasses.replace(vectorizer, metadata=None)
    for v, kwargs in [(vectorizer, {}), (vectorizer, {"with_metadata": False}),
                      (vectorizer, {"training": True}), (text_only, {})]:
        fresh = features(v, params, held_out, **kwargs)
        shared = features(v, params, held_out, text=text, **kwargs)
        assert shared is not text and shared.shape == fresh.shape
        for ours, theirs in zip((shared.data, shared.indices, shared.indptr),
                                (fresh.data, fresh.indices, fresh.indptr), strict=True):
            assert ours.dtype == theirs.dtype and ours.tobytes() == theirs.tobytes()
    assert all(a.tobytes() == b.tobytes()
               for a, b in zip(before, (text.data, text.indices, text.indptr), strict=True))


def test_missing_prepared_data_is_one_clear_error(tmp_path: Path, params_data):
    params = parse_params(params_data).featurize
    with pytest.raises(TmdbGenresError, match="run `dvc repro prepare` in the project root first"):
        featurize(params, tmp_path / "nope", tmp_path / "f", tmp_path / "v.joblib")


def test_outputs_are_byte_identical_across_processes_and_hash_seeds(tmp_path: Path):
    """Same inputs, fresh processes with different hash seeds: same bytes (dvc.lock stays put)."""
    script = (
        "import sys, yaml; from pathlib import Path; sys.path.insert(0, {tests!r});"
        "from conftest import run_toy_pipeline;"
        "data = yaml.safe_load(open({params!r}));"
        "run_toy_pipeline(Path(sys.argv[1]), data, n=300)"
    ).format(tests=str(Path(__file__).parent),
             params=str(Path(__file__).parents[1] / "params.yaml"))
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env)
        outputs.append({p.relative_to(out).as_posix(): p.read_bytes()
                        for p in sorted(out.rglob("*")) if p.is_file()})
    assert outputs[0].keys() == outputs[1].keys()
    assert "models/vectorizer.joblib" in outputs[0]
    differing = [name for name in outputs[0] if outputs[0][name] != outputs[1][name]]
    assert differing == []


def _prepared_copy(source: Path, target: Path, extra: dict[str, str]) -> Path:
    """A copy of a prepared directory with ``extra[split]`` appended to every text of a split."""
    shutil.copytree(source, target)
    for split, words in extra.items():
        rows = read_jsonl(target / f"{split}.jsonl")
        write_jsonl(target / f"{split}.jsonl",
                    [{**row, "text": f"{row['text']} {words}"} for row in rows])
    return target


def test_validation_and_test_texts_never_reach_the_vectorizer(tmp_path: Path, params_data):
    """Leakage: TF-IDF's vocabulary and idf come from the training split alone.

    Words that occur only in validation and test (in every one of their rows, far above
    min_df) must not become features, and rewriting those splits' texts must not change one
    byte of the saved vectoriser or of the training features.
    """
    params = parse_params(params_data)
    snapshot = tmp_path / "movies.jsonl"
    write_jsonl(snapshot, toy_movies(300))
    prepare(params.prepare, snapshot, tmp_path / "clean", tmp_path / "prepare.json")
    _prepared_copy(tmp_path / "clean", tmp_path / "leaky",
                           {"validation": "zorblax quintessential", "test": "zorblax vermilion"})
    _prepared_copy(tmp_path / "clean", tmp_path / "learnt",
                            {"train": "zorblax quintessential"})
    outputs = {}
    for name in ("clean", "leaky", "learnt"):
        featurize(params.featurize, tmp_path / name, tmp_path / f"{name}-features",
                  tmp_path / f"{name}.joblib")
        outputs[name] = load_joblib(tmp_path / f"{name}.joblib")["vectorizer"].feature_names
    assert "zorblax" in outputs["learnt"]  # the control: the same word in train is learnt
    for term in ("zorblax", "quintessential", "vermilion", "zorblax vermilion"):
        assert term not in outputs["leaky"], f"{term!r} occurs only outside train"
    assert not any("zorb" in name for name in outputs["leaky"])  # nor its character n-grams
    assert (tmp_path / "leaky.joblib").read_bytes() == (tmp_path / "clean.joblib").read_bytes()
    assert ((tmp_path / "leaky-features/train/00000.npz").read_bytes()
            == (tmp_path / "clean-features/train/00000.npz").read_bytes())
