"""Fast n-gram counting with exactly scikit-learn's ``CountVectorizer`` semantics.

``CountVectorizer`` builds every n-gram of every document in Python, which caps prediction at
about a thousand overviews a second with character n-grams. These counters learn their
vocabulary with ``CountVectorizer`` itself (so ``min_df``, ``max_features`` and stop words
behave as documented) and count faster:

- character n-grams within word boundaries (``char_wb``) depend only on the word, so each
  distinct word's feature ids are computed once and cached;
- word n-grams come from one regex pass and dictionary lookups at C speed.

The counts are identical to ``CountVectorizer.transform``'s (the tests check it), so the
TF-IDF weighting that follows is unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import CountVectorizer

# scikit-learn's default token_pattern
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_CACHE_LIMIT = 500_000  # distinct words whose character n-gram ids are kept in memory


def _counts(rows: list[np.ndarray], n_features: int) -> sp.csr_matrix:
    """A CSR count matrix (float32) from each row's feature ids, duplicates summed."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    data = np.ones(len(indices), dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(rows), n_features))
    matrix.sum_duplicates()
    return matrix


class _Counter(BaseEstimator, TransformerMixin):
    """Shared fitting: the vocabulary is learnt by scikit-learn's CountVectorizer."""

    def _vectorizer(self) -> CountVectorizer:
        raise NotImplementedError

    def fit(self, raw_documents: Iterable[str], y: Any = None) -> _Counter:
        """Learn the vocabulary (``vocabulary_``) from the training texts."""
        self.vectorizer_ = self._vectorizer().fit(raw_documents)
        self.vocabulary_ = self.vectorizer_.vocabulary_
        # process-specific bookkeeping (an object id); dropped so pickles are reproducible
        self.vectorizer_.__dict__.pop("_stop_words_id", None)
        self.vectorizer_.__dict__.pop("stop_words_", None)
        return self

    def fit_transform(self, raw_documents: Iterable[str], y: Any = None) -> sp.csr_matrix:
        """Fit, then count with the fast path (one code path for training and prediction)."""
        documents = list(raw_documents)
        return self.fit(documents).transform(documents)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The n-grams, in column order."""
        return self.vectorizer_.get_feature_names_out()


class WordNgramCounts(_Counter):
    """Counts of word 1..``ngram_max``-grams (lowercased, stop words removed first)."""

    def __init__(self, ngram_max: int = 1, min_df: int = 1, max_features: int | None = None,
                 stop_words: str | None = None) -> None:
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.stop_words = stop_words

    def _vectorizer(self) -> CountVectorizer:
        return CountVectorizer(ngram_range=(1, self.ngram_max), min_df=self.min_df,
                               max_features=self.max_features, stop_words=self.stop_words)

    def transform(self, raw_documents: Iterable[str]) -> sp.csr_matrix:
        """Count matrix of the documents' known word n-grams."""
        lookup = self.vocabulary_.get
        stop = self.vectorizer_.get_stop_words() or frozenset()
        rows = []
        for document in raw_documents:
            tokens = [t for t in _TOKEN.findall(document.lower()) if t not in stop]
            grams: list[str] = tokens
            for n in range(2, self.ngram_max + 1):
                shifted = (tokens[k:] for k in range(n))
                grams = grams + list(map(" ".join, zip(*shifted, strict=False)))
            ids = [i for i in map(lookup, grams) if i is not None]
            rows.append(np.array(ids, dtype=np.int64))
        return _counts(rows, len(self.vocabulary_))


class CharNgramCounts(_Counter):
    """Counts of character ``ngram_min``..``ngram_max``-grams inside word boundaries."""

    def __init__(self, ngram_min: int = 2, ngram_max: int = 5, min_df: int = 1,
                 max_features: int | None = None) -> None:
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features

    def _vectorizer(self) -> CountVectorizer:
        return CountVectorizer(analyzer="char_wb", ngram_range=(self.ngram_min, self.ngram_max),
                               min_df=self.min_df, max_features=self.max_features)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_cache", None)  # rebuilt on demand; depends on what was predicted
        return state

    def _word_ids(self, word: str) -> np.ndarray:
        """Feature ids of one word's n-grams, as scikit-learn's char_wb analyser makes them."""
        padded = f" {word} "
        grams = []
        for n in range(self.ngram_min, self.ngram_max + 1):
            if len(padded) <= n:  # a short word counts once, whole
                grams.append(padded)
                break
            grams.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
        lookup = self.vocabulary_.get
        return np.array([i for i in map(lookup, grams) if i is not None], dtype=np.int64)

    def transform(self, raw_documents: Iterable[str]) -> sp.csr_matrix:
        """Count matrix of the documents' known character n-grams."""
        cache: dict[str, np.ndarray] = self.__dict__.setdefault("_cache", {})
        rows = []
        for document in raw_documents:
            parts = []
            for word in document.lower().split():
                ids = cache.get(word)
                if ids is None:
                    ids = self._word_ids(word)
                    if len(cache) < _CACHE_LIMIT:
                        cache[word] = ids
                parts.append(ids)
            rows.append(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64))
        return _counts(rows, len(self.vocabulary_))
