"""TF-IDF features of n-grams, with exactly scikit-learn's counts and weights, as plain data.

``CountVectorizer`` builds every n-gram of every document as a Python string, which caps
prediction at about a thousand overviews a second with character n-grams. Here the
vocabulary is still learnt by ``CountVectorizer`` (so ``min_df``, ``max_features`` and stop
words behave as documented), but counting uses NumPy:

- every vocabulary n-gram becomes a path in a trie over symbol ids (characters, or words),
  held in a hash table of arrays (:class:`NgramTrie`);
- a document is an array of symbol ids; all its windows walk the trie together, one symbol
  a step, and a window leaves the walk as soon as its prefix is in no vocabulary n-gram;
- character n-grams within word boundaries (``char_wb``) depend only on the word, so they
  are found once per distinct word of a batch and summed into documents by a sparse product.

The counts equal ``CountVectorizer.transform``'s and the weights ``TfidfTransformer``'s (the
tests check both). A fitted :class:`Vectorizer` holds only arrays and dictionaries, so its
pickle is deterministic, loads without scikit-learn and survives scikit-learn upgrades.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .numeric import settle

# scikit-learn's default token_pattern
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOP = -1  # the symbol of a stop word: dropped before n-grams are formed
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier


@dataclass(frozen=True)
class NgramTrie:
    """Vocabulary n-grams as paths of symbol ids (1..n_symbols; 0 is "unknown").

    Node 0 is the root. The edge from ``node`` on ``symbol`` has the key ``node * base +
    symbol``; edges live in an open-addressing hash table (``slot_keys`` -> ``slot_children``,
    -1 marks an empty slot), so a batch of lookups is a few vectorised probes.
    ``columns[node]`` is the feature column of the n-gram that ends at ``node``, or -1 when
    that prefix is not itself a feature.
    """

    base: int
    slot_keys: np.ndarray
    slot_children: np.ndarray
    columns: np.ndarray

    @classmethod
    def build(cls, terms: dict[tuple[int, ...], int], n_symbols: int) -> NgramTrie:
        """The trie of ``terms`` (symbol-id sequence -> feature column)."""
        edges: dict[tuple[int, int], int] = {}
        columns = [-1]
        for sequence, column in sorted(terms.items()):  # sorted: the same arrays every run
            node = 0
            for symbol in sequence:
                child = edges.get((node, symbol))
                if child is None:
                    child = edges[(node, symbol)] = len(columns)
                    columns.append(-1)
                node = child
            columns[node] = column
        base = n_symbols + 1
        keys = np.array([node * base + symbol for node, symbol in edges], dtype=np.int64)
        children = np.array(list(edges.values()), dtype=np.int64)
        size = 1 << max(4, int(2 * len(keys)).bit_length())  # load factor below one half
        slot_keys = np.full(size, -1, dtype=np.int64)
        slot_children = np.full(size, -1, dtype=np.int64)
        slots = _slot(keys, size)
        while len(keys):  # linear probing; among keys that want one free slot, the first wins
            free = np.flatnonzero(slot_keys[slots] == -1)
            _, first = np.unique(slots[free], return_index=True)
            won = free[first]
            slot_keys[slots[won]], slot_children[slots[won]] = keys[won], children[won]
            waiting = np.ones(len(keys), dtype=bool)
            waiting[won] = False
            keys, children = keys[waiting], children[waiting]
            slots = (slots[waiting] + 1) & (size - 1)
        return cls(base, slot_keys, slot_children, np.array(columns, dtype=np.int64))

    def children(self, keys: np.ndarray) -> np.ndarray:
        """The node each edge key leads to, or -1 for an edge not in the trie."""
        mask = len(self.slot_keys) - 1
        slots = _slot(keys, len(self.slot_keys))
        stored = self.slot_keys[slots]
        found = np.where(stored == keys, self.slot_children[slots], -1)
        pending = np.flatnonzero((stored != keys) & (stored != -1))
        while len(pending):  # the few keys displaced by collisions: probe the next slot
            at = slots[pending] = (slots[pending] + 1) & mask
            stored = self.slot_keys[at]
            match = stored == keys[pending]
            found[pending[match]] = self.slot_children[at[match]]
            pending = pending[~match & (stored != -1)]
        return found

    def find(self, symbols: np.ndarray, ends: np.ndarray, min_n: int, max_n: int,
             whole_below_min: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Every vocabulary n-gram in ``symbols``: its start positions and feature columns.

        ``ends[p]`` is where the segment holding position ``p`` ends; windows never cross
        it. Windows of ``min_n``..``max_n`` symbols count; with ``whole_below_min`` so does
        a whole segment shorter than ``min_n`` (scikit-learn's rule for short words).
        """
        starts = np.arange(len(symbols), dtype=np.int64)
        room = ends - starts  # symbols left in the segment from each start
        nodes = np.zeros(len(symbols), dtype=np.int64)
        if whole_below_min:
            whole = np.r_[True, ends[1:] != ends[:-1]] * room  # a segment's length at its start
        found_starts, found_columns = [], []
        for n in range(1, max_n + 1):
            fits = room >= n
            starts, nodes, room = starts[fits], nodes[fits], room[fits]
            if not len(starts):
                break
            nodes = self.children(nodes * self.base + symbols[starts + n - 1])
            known = nodes >= 0
            starts, nodes, room = starts[known], nodes[known], room[known]
            columns = self.columns[nodes]
            hit = columns >= 0
            if n < min_n:
                if not whole_below_min:
                    continue
                hit &= whole[starts] == n
            found_starts.append(starts[hit])
            found_columns.append(columns[hit])
        if not found_starts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(found_starts), np.concatenate(found_columns)


def _slot(keys: np.ndarray, size: int) -> np.ndarray:
    """Home slots of ``keys`` in a hash table of ``size`` (a power of two) slots."""
    shift = np.uint64(64 - (size.bit_length() - 1))
    return ((keys.astype(np.uint64) * _GOLDEN) >> shift).astype(np.int64)


def _matrix(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A canonical float32 CSR count matrix with one count per (row, column) pair."""
    data = np.ones(len(rows), dtype=np.float32)
    matrix = sp.coo_matrix((data, (rows, columns)), shape=shape).tocsr()
    matrix.sum_duplicates()
    return matrix


def _segments(lengths: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For segments of these lengths laid end to end: each position's segment and end."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    segment = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    return segment, ends[segment]


def _vocabulary(texts: list[str], **options: object) -> list[str]:
    """The n-grams ``CountVectorizer(**options)`` keeps from ``texts``, in column order."""
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(**options).fit(texts)
    return [str(term) for term in vectorizer.get_feature_names_out()]


@dataclass(frozen=True)
class WordNgrams:
    """Counts of word 1..``ngram_max``-grams (lowercased, stop words removed first)."""

    ngram_max: int
    names: list[str]
    symbols: dict[str, int]  # word -> symbol id; stop words -> _STOP
    trie: NgramTrie

    @classmethod
    def fit(cls, texts: list[str], ngram_max: int, min_df: int, max_features: int | None,
            stop_words: str | None) -> WordNgrams:
        """Learn the vocabulary from the training texts."""
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        names = _vocabulary(texts, ngram_range=(1, ngram_max), min_df=min_df,
                            max_features=max_features, stop_words=stop_words)
        words = sorted({word for term in names for word in term.split(" ")})
        symbols = {word: i for i, word in enumerate(words, start=1)}
        trie = NgramTrie.build(
            {tuple(symbols[w] for w in term.split(" ")): column
             for column, term in enumerate(names)},
            len(words),
        )
        # stop words are removed before n-grams are formed (never vocabulary words)
        stop = sorted(ENGLISH_STOP_WORDS) if stop_words == "english" else []
        return cls(ngram_max, names, {**symbols, **dict.fromkeys(stop, _STOP)}, trie)

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Count matrix of the texts' known word n-grams."""
        symbol, unknown = self.symbols.get, itertools.repeat(0)
        lengths, found = [], []
        for text in texts:
            before = len(found)
            found.extend(map(symbol, _TOKEN.findall(text.lower()), unknown))
            lengths.append(len(found) - before)
        symbols = np.array(found, dtype=np.int64)
        segment, _ = _segments(lengths)
        kept = symbols != _STOP
        segment, ends = _segments(np.bincount(segment[kept], minlength=len(lengths)))
        starts, columns = self.trie.find(symbols[kept], ends, 1, self.ngram_max)
        return _matrix(segment[starts], columns, (len(lengths), len(self.names)))


@dataclass(frozen=True)
class CharNgrams:
    """Counts of character ``ngram_min``..``ngram_max``-grams inside word boundaries."""

    ngram_min: int
    ngram_max: int
    names: list[str]
    char_symbols: np.ndarray  # code point -> symbol id; the last entry (0) for larger ones
    trie: NgramTrie

    @classmethod
    def fit(cls, texts: list[str], ngram_min: int, ngram_max: int, min_df: int,
            max_features: int | None) -> CharNgrams:
        """Learn the vocabulary from the training texts."""
        names = _vocabulary(texts, analyzer="char_wb", ngram_range=(ngram_min, ngram_max),
                            min_df=min_df, max_features=max_features)
        chars = sorted(set("".join(names)))
        char_symbols = np.zeros(max(map(ord, chars), default=0) + 2, dtype=np.int64)
        char_symbols[[ord(c) for c in chars]] = np.arange(1, len(chars) + 1)
        symbol = {c: i for i, c in enumerate(chars, start=1)}
        trie = NgramTrie.build(
            {tuple(map(symbol.__getitem__, term)): column for column, term in enumerate(names)},
            len(chars),
        )
        return cls(ngram_min, ngram_max, names, char_symbols, trie)

    def _symbols(self, text: str) -> np.ndarray:
        """Symbol ids of the characters of ``text`` (0 for characters in no feature)."""
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        return self.char_symbols[np.minimum(codes, len(self.char_symbols) - 1)]

    def word_counts(self, words: list[str]) -> sp.csr_matrix:
        """(words x features) counts of each word's n-grams, padded with a space each side."""
        segment, ends = _segments([len(w) + 2 for w in words])
        symbols = self._symbols("".join(f" {w} " for w in words))
        starts, columns = self.trie.find(symbols, ends, self.ngram_min, self.ngram_max,
                                         whole_below_min=True)
        return _matrix(segment[starts], columns, (len(words), len(self.names)))

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Count matrix of the texts' known character n-grams."""
        lengths, words = [], []
        for text in texts:
            tokens = text.lower().split()
            lengths.append(len(tokens))
            words.extend(tokens)
        distinct = {word: i for i, word in enumerate(dict.fromkeys(words))}
        occurrences = np.fromiter(map(distinct.__getitem__, words), dtype=np.int64,
                                  count=len(words))
        segment, _ = _segments(lengths)
        documents = _matrix(segment, occurrences, (len(lengths), len(distinct)))
        return (documents @ self.word_counts(list(distinct))).tocsr()


@dataclass(frozen=True)
class TfidfBlock:
    """One block of features: n-gram counts, (sublinear) tf times smoothed idf, L2-normalised."""

    name: str
    counter: WordNgrams | CharNgrams
    idf: np.ndarray
    sublinear_tf: bool

    @classmethod
    def fit(cls, name: str, counter: WordNgrams | CharNgrams, texts: list[str],
            sublinear_tf: bool) -> TfidfBlock:
        """Learn the idf weights from the training texts (scikit-learn's smoothed idf)."""
        counts = counter.counts(texts)
        document_frequency = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = settle(np.log((1 + counts.shape[0]) / (1 + document_frequency)) + 1)
        return cls(name, counter, idf, sublinear_tf)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The texts' TF-IDF rows (float64, each of unit length unless empty).

        What comes out of ``log`` and the norms is settled (see :mod:`numeric`), so the
        weights are the same on every CPU.
        """
        x = self.counter.counts(texts).astype(np.float64)
        if self.sublinear_tf:
            x.data = settle(np.log(x.data) + 1)
        x.data *= self.idf[x.indices]
        rows, _ = _segments(np.diff(x.indptr))
        norms = np.sqrt(np.bincount(rows, weights=x.data**2, minlength=x.shape[0]))
        x.data = settle(x.data / norms[rows])  # an empty row has no entries to divide
        return x


@dataclass(frozen=True)
class Vectorizer:
    """The fitted blocks, side by side: what a model text becomes before the linear model."""

    blocks: tuple[TfidfBlock, ...]

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Feature rows (float32 CSR; within a row, columns are not necessarily sorted)."""
        return sp.hstack([block.transform(texts) for block in self.blocks], format="csr",
                         dtype=np.float32)

    @property
    def feature_names(self) -> list[str]:
        """Every feature's n-gram, in column order."""
        return [name for block in self.blocks for name in block.counter.names]
