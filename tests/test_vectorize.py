from __future__ import annotations

import pickle
import re

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from tmdb_genres.vectorize import CharNgrams, NgramTrie, WordNgrams

from .conftest import toy_movies

TEXTS = [m["title"] + " . " + m["overview"] for m in toy_movies(300)] + [
    "Amélie's café — naïve   déjà-vu\tin Zürich; it's 2001!",
    "a I x",  # only one-letter words: no word tokens, short char n-grams
    "",
    "The the THE haunted Haunted",
    "日本の映画 アニメ ghost",
]


def same_counts(ours, theirs) -> None:
    assert ours.shape == theirs.shape
    assert (ours != theirs.astype(np.float32)).nnz == 0


@pytest.mark.parametrize("ngram_max", [1, 2, 3])
@pytest.mark.parametrize("stop_words", [None, "english"])
def test_word_counts_equal_count_vectorizer(ngram_max, stop_words):
    counter = WordNgrams.fit(TEXTS[:250], ngram_max, 2, None, stop_words)
    reference = CountVectorizer(ngram_range=(1, ngram_max), min_df=2, stop_words=stop_words)
    theirs = reference.fit_transform(TEXTS[:250])
    assert counter.names == reference.get_feature_names_out().tolist()
    same_counts(counter.counts(TEXTS[:250]), theirs)
    same_counts(counter.counts(TEXTS[250:]), reference.transform(TEXTS[250:]))


@pytest.mark.parametrize(("low", "high"), [(2, 5), (1, 3), (3, 6), (4, 6)])
def test_char_counts_equal_count_vectorizer(low, high):
    counter = CharNgrams.fit(TEXTS[:250], low, high, 1, None)
    reference = CountVectorizer(analyzer="char_wb", ngram_range=(low, high), min_df=1)
    same_counts(counter.counts(TEXTS[:250]), reference.fit_transform(TEXTS[:250]))
    same_counts(counter.counts(TEXTS[250:]), reference.transform(TEXTS[250:]))


def test_max_features_keeps_count_vectorizer_columns():
    counter = CharNgrams.fit(TEXTS, 2, 4, 1, 500)
    reference = CountVectorizer(analyzer="char_wb", ngram_range=(2, 4), max_features=500)
    same_counts(counter.counts(TEXTS), reference.fit_transform(TEXTS))


@pytest.mark.parametrize("min_df", [1, 2, 5])
@pytest.mark.parametrize("max_features", [None, 40, 700])
def test_vocabulary_fit_in_arrays_equals_count_vectorizer(min_df, max_features):
    """The chunked, array-based vocabulary fit keeps CountVectorizer's terms in its column
    order, with min_df, max_features (ties included) and stop words, on odd texts too."""
    for ngram_max, stop_words in ((1, None), (2, "english"), (3, None)):
        counter = WordNgrams.fit(TEXTS, ngram_max, min_df, max_features, stop_words)
        reference = CountVectorizer(ngram_range=(1, ngram_max), min_df=min_df,
                                    max_features=max_features, stop_words=stop_words)
        same_counts(counter.counts(TEXTS), reference.fit_transform(TEXTS))
        assert counter.names == reference.get_feature_names_out().tolist()
    for low, high in ((2, 5), (1, 3)):
        counter = CharNgrams.fit(TEXTS, low, high, min_df, max_features)
        reference = CountVectorizer(analyzer="char_wb", ngram_range=(low, high),
                                    min_df=min_df, max_features=max_features)
        same_counts(counter.counts(TEXTS), reference.fit_transform(TEXTS))
        assert counter.names == reference.get_feature_names_out().tolist()
    with pytest.raises(ValueError, match="no terms remain"):
        CharNgrams.fit(TEXTS[:3], 2, 3, 10, None)


def test_counting_leaves_no_state_in_the_pickle():
    counter = CharNgrams.fit(TEXTS, 2, 5, 1, None)
    before = pickle.dumps(counter)
    counter.counts(["unseen words here"])
    assert pickle.dumps(counter) == before


def test_trie_finds_terms_within_segments_only():
    trie = NgramTrie.build({(1,): 0, (1, 2): 1, (2, 3, 1): 2}, n_symbols=3)
    symbols = np.array([1, 2, 3, 1, 0, 1, 2])  # segments [0, 4) and [4, 7); 0 is unknown
    ends = np.array([4, 4, 4, 4, 7, 7, 7])
    starts, columns = trie.find(symbols, ends, 1, 3)
    assert sorted(zip(starts.tolist(), columns.tolist(), strict=True)) == [
        (0, 0), (0, 1), (1, 2), (3, 0), (5, 0), (5, 1)]
    assert trie.find(symbols, ends, 2, 3)[1].tolist() == [1, 1, 2]


def test_trie_hash_table_resolves_collisions():
    terms = {(a, b): 40 * (a - 1) + b - 1 for a in range(1, 51) for b in range(1, 41)}
    trie = NgramTrie.build(terms, n_symbols=60)  # 2,050 edges in 8,192 slots
    pairs = [*terms, *((a, b) for a in range(1, 51) for b in range(41, 61))]  # then absent
    ends = np.repeat(np.arange(2, 2 * len(pairs) + 1, 2), 2)
    starts, columns = trie.find(np.array(pairs).ravel(), ends, 2, 2)
    assert dict(zip((starts // 2).tolist(), columns.tolist(), strict=True)) == {
        i: terms[pair] for i, pair in enumerate(pairs) if pair in terms}


@pytest.mark.parametrize(("word_max", "char", "sublinear", "stop_words"), [
    (2, (2, 5), True, "english"), (3, (1, 3), False, None), (1, (0, 0), True, "english"),
    (2, (4, 6), True, None)])
def test_single_text_row_is_the_batch_row_bit_for_bit(word_max, char, sublinear, stop_words,
                                                      params_data):
    from dataclasses import replace

    from tmdb_genres.featurize import fit_vectorizer
    from tmdb_genres.params import parse_params
    from tmdb_genres.vectorize import SingleText

    params = parse_params(params_data).featurize
    params = replace(params, word_ngram_max=word_max, char_ngram_min=char[0],
                     char_ngram_max=char[1], sublinear_tf=sublinear, stop_words=stop_words,
                     word_min_df=1, char_min_df=1)
    vectorizer = fit_vectorizer(params, TEXTS[:250])
    single = SingleText(vectorizer)
    # long texts too: hundreds of entries a row, where summation order shows in the last bit
    texts = TEXTS + [" ".join(TEXTS[i:i + 9 * i % 50 + 5]) for i in range(0, 300, 7)]
    batch = vectorizer.transform(texts)
    for i, text in enumerate([*texts, "ghost ghost ghost ghost"]):
        expected = batch[i] if i < len(texts) else vectorizer.transform([text])
        columns, values, _ = single.row(text)
        assert columns.tolist() == expected.indices.tolist()  # sorted, as the batch's
        assert values.dtype == np.float32 and values.tobytes() == expected.data.tobytes()
        again, _, sources = single.row(text, sources=True)  # the cached words answer alike
        assert again.tolist() == columns.tolist()
        shares = np.bincount(sources.entry, weights=sources.share, minlength=len(columns))
        assert np.all(shares <= 1 + 1e-9)
        if all(re.search(r"\w", token) for token in text.split()):
            assert np.allclose(shares, 1.0)  # each entry is shared out among words in full
        assert set(sources.words) <= set(re.findall(r"\w+", text.lower()))


def test_a_word_longer_than_any_real_word_is_cut_alike_in_both_paths(params_data):
    """A token over MAX_WORD_CHARS counts as its first MAX_WORD_CHARS characters, in the
    batch path and the single-text path alike (so their rows stay equal bit for bit)."""

    from tmdb_genres.featurize import fit_vectorizer
    from tmdb_genres.params import parse_params
    from tmdb_genres.vectorize import MAX_WORD_CHARS, SingleText

    params = parse_params(params_data).featurize
    vectorizer = fit_vectorizer(params, TEXTS[:250])
    word = "hauntedghostly" * 1000
    cut = word[:MAX_WORD_CHARS]
    long, short = (vectorizer.transform([f"A {w} house"]) for w in (word, cut))
    assert long.indices.tolist() == short.indices.tolist()
    assert long.data.tobytes() == short.data.tobytes()
    tail = vectorizer.transform([f"A {word[:MAX_WORD_CHARS + 3]}y house"])
    assert tail.data.tobytes() == long.data.tobytes()  # what is past the cut never counts
    columns, values, _ = SingleText(vectorizer).row(f"A {word} house")
    assert columns.tolist() == long.indices.tolist() and values.tobytes() == long.data.tobytes()


def test_the_single_text_cache_is_bounded_in_bytes(params_data):
    """Before: about 265 KB a unique long word, emptied only at 65,536 words (~17 GB)."""

    from tmdb_genres.featurize import fit_vectorizer
    from tmdb_genres.params import parse_params
    from tmdb_genres.vectorize import SingleText

    params = parse_params(params_data).featurize
    vectorizer = fit_vectorizer(params, TEXTS[:250])
    budget = 256 * 1024
    single = SingleText(vectorizer, cache_bytes=budget)
    letters = "abcdefghijklmnopqrstuvwxyz"
    peak = 0
    for i in range(400):  # unique 10,000-character words
        word = "".join(letters[(i * 7 + k * (1 + i % 5)) % 26] for k in range(10_000))
        single.row(f"{word} {i}")
        held = sum(len(w) * 4 + a.nbytes for cache in single._char_cache
                   for w, a in cache.items())
        peak = max(peak, held)
    assert 0 < peak <= budget
    assert any(len(cache) > 10 for cache in single._char_cache)  # it does cache
