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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # imported where used: loading a model and the single-text path need none
    import scipy.sparse as sp

from .metadata import MetadataEncoder
from .numeric import settle

# scikit-learn's default token_pattern
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_STOP = -1  # the symbol of a stop word: dropped before n-grams are formed
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier
FIT_CHUNK = 8192  # texts counted at a time while fitting idf weights
# A white-space token longer than this (the longest in the real data has 56 characters) is
# cut to this length before its character n-grams are counted, in every path alike: the work
# and memory per word stay bounded whatever a client sends.
MAX_WORD_CHARS = 100


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
    import scipy.sparse as sp

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


def _select(terms: list[str], df: np.ndarray, tf: np.ndarray, min_df: int,
            max_features: int | None) -> list[str]:
    """The terms ``CountVectorizer`` keeps, in its (alphabetical) column order: document
    frequency at least ``min_df``, then the ``max_features`` most frequent in total, ties
    broken exactly as scikit-learn breaks them (the same argsort on the same array)."""
    keep = np.flatnonzero(df >= min_df)
    if not len(keep):
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")
    order = sorted(keep.tolist(), key=terms.__getitem__)
    if max_features is not None and len(order) > max_features:
        chosen = np.sort((-tf[order]).argsort()[:max_features])
        order = [order[k] for k in chosen.tolist()]
    return [terms[k] for k in order]


def _frequencies(doc: np.ndarray, term: np.ndarray, n_terms: int, n_docs: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Document and total frequency of every term from its occurrences (doc, term)."""
    tf = np.bincount(term, minlength=n_terms)
    pairs = np.unique(term * np.int64(n_docs) + doc)
    return np.bincount(pairs // n_docs, minlength=n_terms), tf


def word_vocabulary(texts: Sequence[str], ngram_max: int, min_df: int,
                    max_features: int | None, stop: frozenset[str]) -> list[str]:
    """The word 1..``ngram_max``-grams ``CountVectorizer(ngram_range=(1, ngram_max), min_df,
    max_features, stop_words)`` learns from ``texts``, in its column order.

    Counted with arrays of word ids instead of a dictionary of every n-gram string, so memory
    is a few bytes per word of the texts: an n-gram can reach ``min_df`` documents only if its
    first n-1 words do, so each length extends only the kept shorter n-grams.
    """
    ids: dict[str, int] = {}
    found: list[int] = []
    lengths = []
    for text in texts:
        before = len(found)
        found.extend(ids.setdefault(w, len(ids)) for w in _TOKEN.findall(text.lower())
                     if w not in stop)
        lengths.append(len(found) - before)
    if not ids:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    words = list(ids)
    tokens = np.array(found, dtype=np.int64)
    doc, ends = _segments(lengths)
    n_docs, base = len(lengths), np.int64(len(words))
    terms: list[str] = []
    df_parts, tf_parts = [], []
    kept = tokens.copy()  # id among the kept (n-1)-grams of the n-gram starting here, or -1
    level_terms = words
    for n in range(1, ngram_max + 1):
        if n > 1:
            at = np.flatnonzero((ends - np.arange(len(tokens)) >= n) & (kept >= 0))
            codes = kept[at] * base + tokens[at + n - 1]
        else:
            at, codes = np.arange(len(tokens)), tokens
        if not len(at):
            break
        unique, term = np.unique(codes, return_inverse=True)
        df, tf = _frequencies(doc[at], term.reshape(-1), len(unique), n_docs)
        if n > 1:
            level_terms = [f"{level_terms[c // base]} {words[c % base]}"
                           for c in unique.tolist()]
        terms.extend(level_terms)
        df_parts.append(df)
        tf_parts.append(tf)
        survivors = np.flatnonzero(df >= min_df)
        new_id = np.full(len(unique), -1, dtype=np.int64)
        new_id[survivors] = np.arange(len(survivors))
        kept = np.full(len(tokens), -1, dtype=np.int64)
        kept[at] = new_id[term.reshape(-1)]
        level_terms = [level_terms[k] for k in survivors.tolist()]
    return _select(terms, np.concatenate(df_parts), np.concatenate(tf_parts), min_df,
                   max_features)


def char_wb_grams(word: str, ngram_min: int, ngram_max: int) -> list[str]:
    """The character n-grams of one word as ``analyzer="char_wb"`` makes them: the word padded
    with a space each side, windows of ngram_min..ngram_max, a shorter word once, whole."""
    padded = f" {word} "
    grams = []
    for n in range(ngram_min, ngram_max + 1):
        if len(padded) <= n:
            grams.append(padded)
            break
        grams.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return grams


def char_vocabulary(texts: Sequence[str], ngram_min: int, ngram_max: int, min_df: int,
                    max_features: int | None, chunk: int = 4096) -> list[str]:
    """The character n-grams ``CountVectorizer(analyzer="char_wb", ngram_range, min_df,
    max_features)`` learns from ``texts``, in its column order.

    A word's n-grams depend only on the word, so they are made once per distinct word; a
    document's are then a sparse product (documents x words) @ (words x n-grams), taken a
    chunk of documents at a time, so memory stays bounded.
    """
    import scipy.sparse as sp

    ids: dict[str, int] = {}
    doc_words: list[int] = []
    lengths = []
    for text in texts:
        tokens = text.lower().split()
        doc_words.extend(ids.setdefault(w, len(ids)) for w in tokens)
        lengths.append(len(tokens))
    gram_ids: dict[str, int] = {}
    rows, columns = [], []
    for word_id, word in enumerate(ids):
        for gram in char_wb_grams(word, ngram_min, ngram_max):
            rows.append(word_id)
            columns.append(gram_ids.setdefault(gram, len(gram_ids)))
    if not gram_ids:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    shape = (len(ids), len(gram_ids))
    word_grams = sp.coo_matrix((np.ones(len(rows), dtype=np.int64), (rows, columns)),
                               shape=shape).tocsr()
    doc, _ = _segments(lengths)
    documents = sp.coo_matrix((np.ones(len(doc), dtype=np.int64), (doc, doc_words)),
                              shape=(len(lengths), len(ids))).tocsr()
    tf = np.asarray(word_grams.T @ np.asarray(documents.sum(axis=0)).ravel()).ravel()
    has_gram = word_grams.astype(bool).astype(np.int64)
    df = np.zeros(len(gram_ids), dtype=np.int64)
    for start in range(0, len(lengths), chunk):
        present = (documents[start:start + chunk] @ has_gram).tocsr()
        present.eliminate_zeros()
        df += np.bincount(present.indices, minlength=len(gram_ids))
    return _select(list(gram_ids), df, tf, min_df, max_features)


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

        stop_list = sorted(ENGLISH_STOP_WORDS) if stop_words == "english" else []
        names = word_vocabulary(texts, ngram_max, min_df, max_features, frozenset(stop_list))
        words = sorted({word for term in names for word in term.split(" ")})
        symbols = {word: i for i, word in enumerate(words, start=1)}
        trie = NgramTrie.build(
            {tuple(symbols[w] for w in term.split(" ")): column
             for column, term in enumerate(names)},
            len(words),
        )
        # stop words are removed before n-grams are formed (never vocabulary words)
        return cls(ngram_max, names, {**symbols, **dict.fromkeys(stop_list, _STOP)}, trie)

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
        names = char_vocabulary(texts, ngram_min, ngram_max, min_df, max_features)
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
            tokens = _tokens(text)
            lengths.append(len(tokens))
            words.extend(tokens)
        distinct = {word: i for i, word in enumerate(dict.fromkeys(words))}
        occurrences = np.fromiter(map(distinct.__getitem__, words), dtype=np.int64,
                                  count=len(words))
        segment, _ = _segments(lengths)
        documents = _matrix(segment, occurrences, (len(lengths), len(distinct)))
        return (documents @ self.word_counts(list(distinct))).tocsr()


def _tokens(text: str) -> list[str]:
    """The lowercased white-space tokens of ``text``, each cut to ``MAX_WORD_CHARS``."""
    return [token[:MAX_WORD_CHARS] for token in text.lower().split()]


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
        document_frequency = np.zeros(len(counter.names), dtype=np.int64)
        for start in range(0, len(texts), FIT_CHUNK):  # bounded memory
            counts = counter.counts(texts[start:start + FIT_CHUNK])
            document_frequency += np.bincount(counts.indices, minlength=counts.shape[1])
        idf = settle(np.log((1 + len(texts)) / (1 + document_frequency)) + 1)
        return cls(name, counter, idf, sublinear_tf)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The texts' TF-IDF rows (float64, sorted columns, each of unit length unless empty).

        Columns are sorted before the norms are summed, so a row's values do not depend on
        the order its n-grams were found in (the single-text path relies on it). What comes
        out of ``log`` and the norms is settled (see :mod:`numeric`), so the weights are the
        same on every CPU.
        """
        x = self.counter.counts(texts).astype(np.float64)
        x.sort_indices()
        if self.sublinear_tf:
            x.data = settle(np.log(x.data) + 1)
        x.data *= self.idf[x.indices]
        rows, _ = _segments(np.diff(x.indptr))
        norms = np.sqrt(np.bincount(rows, weights=x.data**2, minlength=x.shape[0]))
        x.data = settle(x.data / norms[rows])  # an empty row has no entries to divide
        return x


@dataclass(frozen=True)
class Vectorizer:
    """The fitted blocks, side by side: what a model text becomes before the linear model;
    with a metadata encoder, its one-hot block comes last."""

    blocks: tuple[TfidfBlock, ...]
    metadata: MetadataEncoder | None = None

    def transform(self, texts: Sequence[str],
                  metadata: Sequence[Mapping[str, Any] | None] | None = None
                  ) -> sp.csr_matrix:
        """Feature rows (float32 CSR, columns sorted within each row).

        ``metadata`` is one mapping of raw fields per text (or None for a text without);
        no ``metadata`` at all encodes every text's metadata as unknown. The same as
        :meth:`append_metadata` of :meth:`transform_text`.
        """
        return self.append_metadata(self.transform_text(texts), metadata)

    def transform_text(self, texts: Sequence[str]) -> sp.csr_matrix:
        """The TF-IDF blocks' part of the feature rows (float32 CSR, columns sorted within
        each row): the costly part, the same whatever metadata goes with the texts."""
        import scipy.sparse as sp

        return sp.hstack([block.transform(texts) for block in self.blocks], format="csr",
                         dtype=np.float32)

    def append_metadata(self, text: sp.csr_matrix,
                        metadata: Sequence[Mapping[str, Any] | None] | None = None
                        ) -> sp.csr_matrix:
        """Feature rows from the texts' :meth:`transform_text` rows ``text`` (not modified)
        and their ``metadata`` (as for :meth:`transform`); ``text`` itself when there is no
        metadata block."""
        import scipy.sparse as sp

        if self.metadata is None:
            return text
        return sp.hstack([text, self.metadata.transform(text.shape[0], metadata)],
                         format="csr", dtype=np.float32)

    @property
    def n_text_features(self) -> int:
        """How many columns the TF-IDF blocks have (the metadata block follows them)."""
        return sum(len(block.counter.names) for block in self.blocks)

    @property
    def feature_names(self) -> list[str]:
        """Every feature's n-gram (then ``feature=level`` of metadata), in column order."""
        names = [name for block in self.blocks for name in block.counter.names]
        return names + (self.metadata.names if self.metadata is not None else [])


_WORD_RUN = re.compile(r"\w+")
_ENTRY_BYTES = 250  # a cache entry's overhead: the dict slot, the str and the array objects


@dataclass
class Sources:
    """Where each entry of a single-text row came from: entry ``entry[k]`` owes the share
    ``share[k]`` of its value to ``words[word[k]]`` (a lowercased run of word characters of
    the text); the shares of an entry add up to one."""

    words: list[str]
    entry: np.ndarray
    word: np.ndarray
    share: np.ndarray


class SingleText:
    """One text's feature row without the batch machinery: same values, bit for bit.

    :meth:`Vectorizer.transform` is built for thousands of texts; for one text its NumPy
    trie walk and sparse-matrix assembly cost milliseconds of fixed overhead. Here the
    n-grams of one text are looked up in dictionaries (term -> column), each distinct
    word's character n-gram columns are cached (at most ``cache_bytes`` of them: the cache
    is emptied when it would grow past that), and the TF-IDF arithmetic is the batch
    path's, in the same order (sorted columns), so the row is identical to
    ``transform([text])``. With ``sources=True`` it also says which words of the text each
    feature came from (for explanations).
    """

    def __init__(self, vectorizer: Vectorizer, cache_bytes: int = 16 << 20) -> None:
        self.blocks = vectorizer.blocks
        self.offsets = np.cumsum([0] + [len(b.counter.names) for b in self.blocks])
        self.terms = [dict(zip(b.counter.names, range(len(b.counter.names)), strict=True))
                      for b in self.blocks]
        self._char_cache: list[dict[str, np.ndarray]] = [{} for _ in self.blocks]
        self._cache_bytes = cache_bytes
        self._cached_bytes = 0  # what the cached words and their columns take, about
        self.stop_words = frozenset(
            word for b in self.blocks if isinstance(b.counter, WordNgrams)
            for word, symbol in b.counter.symbols.items() if symbol == _STOP)

    def _word_occurrences(self, block: int, text: str, ids: dict[str, int] | None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Columns of the word n-grams of ``text``, one per occurrence; with ``ids`` also
        (occurrence, word id) pairs (an n-gram's words, each with an equal share)."""
        counter = self.blocks[block].counter
        assert isinstance(counter, WordNgrams)
        terms, symbols = self.terms[block], counter.symbols
        words = [w for w in _TOKEN.findall(text.lower()) if symbols.get(w, 0) != _STOP]
        columns: list[int] = []
        pairs: list[tuple[int, int]] = []
        for start in range(len(words)):
            for n in range(1, min(counter.ngram_max, len(words) - start) + 1):
                gram = words[start:start + n]
                column = terms.get(" ".join(gram))
                if column is not None:
                    if ids is not None:
                        pairs.extend((len(columns), ids.setdefault(w, len(ids))) for w in gram)
                    columns.append(column)
        found = np.array(pairs, dtype=np.int64).reshape(-1, 2)
        return np.array(columns, dtype=np.int64), found[:, 0], found[:, 1]

    def _char_columns(self, block: int, word: str) -> np.ndarray:
        """Columns of the character n-grams of one word (padded with a space each side)."""
        cache = self._char_cache[block]
        found = cache.get(word)
        if found is not None:
            return found
        counter = self.blocks[block].counter
        assert isinstance(counter, CharNgrams)
        terms = self.terms[block]
        grams = char_wb_grams(word, counter.ngram_min, counter.ngram_max)
        found = np.array([terms[g] for g in grams if g in terms], dtype=np.int64)
        size = _ENTRY_BYTES + len(word) * 4 + found.nbytes
        if self._cached_bytes + size > self._cache_bytes:
            for block_cache in self._char_cache:
                block_cache.clear()
            self._cached_bytes = 0
        cache[word] = found
        self._cached_bytes += size
        return found

    def _char_occurrences(self, block: int, text: str, ids: dict[str, int] | None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Like :meth:`_word_occurrences` for character n-grams: an n-gram belongs to the
        word runs of the white-space token it was found in."""
        tokens = _tokens(text)
        parts = [self._char_columns(block, token) for token in tokens]
        columns = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if ids is None:
            return columns, columns[:0], columns[:0]
        # each (token, word run) pair owns all of the token's n-gram occurrences
        pairs = [(t, ids.setdefault(run, len(ids)))
                 for t, token in enumerate(tokens) for run in _WORD_RUN.findall(token)]
        if not pairs or not len(columns):
            return columns, columns[:0], columns[:0]
        lengths = np.array([len(part) for part in parts], dtype=np.int64)
        firsts = np.cumsum(lengths) - lengths
        token, word = np.array(pairs, dtype=np.int64).T
        spans = lengths[token]
        starts = np.repeat(firsts[token] - (np.cumsum(spans) - spans), spans)
        occurrence = starts + np.arange(int(spans.sum()), dtype=np.int64)
        return columns, occurrence, np.repeat(word, spans)

    def _block_row(self, block: int, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray, np.ndarray]:
        """Sorted columns, TF-IDF values (float64), each occurrence's entry, entry counts."""
        tfidf = self.blocks[block]
        unique, inverse, counts = np.unique(columns, return_inverse=True, return_counts=True)
        data = counts.astype(np.float32).astype(np.float64)  # the batch path's casts
        if tfidf.sublinear_tf:
            data = settle(np.log(data) + 1)
        data *= tfidf.idf[unique]
        norm = np.sqrt(np.bincount(np.zeros(len(data), dtype=np.int64), weights=data**2,
                                   minlength=1))
        if len(data):
            data = settle(data / norm[0])
        return unique, data, inverse.reshape(-1), counts

    def row(self, text: str, sources: bool = False
            ) -> tuple[np.ndarray, np.ndarray, Sources | None]:
        """Sorted feature columns and float32 values of ``text`` (``transform([text])``'s
        row), and with ``sources`` where each entry came from."""
        ids: dict[str, int] | None = {} if sources else None
        all_columns, all_values, entries, words, shares = [], [], [], [], []
        first = 0
        for block, tfidf in enumerate(self.blocks):
            occurrences = (self._word_occurrences if isinstance(tfidf.counter, WordNgrams)
                           else self._char_occurrences)
            columns, occurrence, word = occurrences(block, text, ids)
            unique, data, inverse, counts = self._block_row(block, columns)
            if sources and len(occurrence):
                # an entry's value is shared equally by its occurrences, and an occurrence's
                # equally by its words
                per_occurrence = np.bincount(occurrence, minlength=len(columns))
                entry = inverse[occurrence]
                entries.append(first + entry)
                words.append(word)
                shares.append(1.0 / counts[entry] / per_occurrence[occurrence])
            all_columns.append(unique + self.offsets[block])
            all_values.append(data)
            first += len(unique)
        columns = np.concatenate(all_columns)
        values = np.concatenate(all_values).astype(np.float32)
        if not sources:
            return columns, values, None
        empty = np.zeros(0, dtype=np.int64)
        return columns, values, Sources(
            list(ids or {}),
            np.concatenate(entries) if entries else empty,
            np.concatenate(words) if words else empty,
            np.concatenate(shares) if shares else np.zeros(0),
        )
