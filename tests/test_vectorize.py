from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.feature_extraction.text import CountVectorizer

from tmdb_genres.vectorize import CharNgramCounts, WordNgramCounts

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
    counter = WordNgramCounts(ngram_max=ngram_max, min_df=2, stop_words=stop_words)
    ours = counter.fit_transform(TEXTS[:250])
    reference = CountVectorizer(ngram_range=(1, ngram_max), min_df=2, stop_words=stop_words)
    theirs = reference.fit_transform(TEXTS[:250])
    assert counter.vocabulary_ == reference.vocabulary_
    same_counts(ours, theirs)
    same_counts(counter.transform(TEXTS[250:]), reference.transform(TEXTS[250:]))


@pytest.mark.parametrize(("low", "high"), [(2, 5), (1, 3), (3, 6)])
def test_char_counts_equal_count_vectorizer(low, high):
    counter = CharNgramCounts(ngram_min=low, ngram_max=high, min_df=1)
    reference = CountVectorizer(analyzer="char_wb", ngram_range=(low, high), min_df=1)
    same_counts(counter.fit_transform(TEXTS[:250]), reference.fit_transform(TEXTS[:250]))
    same_counts(counter.transform(TEXTS[250:]), reference.transform(TEXTS[250:]))
    same_counts(counter.transform(TEXTS[250:]), reference.transform(TEXTS[250:]))  # cached


def test_pickles_hold_no_cache_or_process_state():
    counter = CharNgramCounts(min_df=1).fit(TEXTS)
    counter.transform(["unseen words here"])
    state = pickle.loads(pickle.dumps(counter)).__dict__
    assert "_cache" not in state
    assert "_stop_words_id" not in state["vectorizer_"].__dict__
    words = WordNgramCounts(stop_words="english").fit(TEXTS)
    assert "stop_words_" not in words.vectorizer_.__dict__
