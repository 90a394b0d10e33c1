"""A reproducible synthetic TMDB catalogue of any size, built from real movies (cost figures only).

``generate(source, n, seed)`` yields ``n`` TMDB movie objects (the shape of a ``/discover/movie``
result, ids ascending) for the scale benchmark and the emulator's large pulls. It is used for
time, memory and size figures, never for quality claims. Each synthetic movie starts from a real
"template" movie of ``source`` and keeps what a classifier and a pipeline see in real data:

- the template's genre set (so genre shares and co-occurrences are real);
- its overview's sentences, reshuffled, one of them swapped for a sentence of another real movie
  sharing a genre (so lengths, sentence and word statistics stay real);
- its title; proper names (capitalised words never seen in lower case in the real corpus) in
  title and overview are replaced, consistently within the movie, by names drawn from a pool
  that grows with the movie's position (``pool_size``: the real names plus ``i ** 0.85``
  invented ones, drawn with a skew to the older ones), so the vocabulary keeps growing with the
  catalogue's size like a real one does (Heaps' law) instead of saturating at the real corpus;
- plausible metadata: the template's language, its release date shifted by up to two years,
  popularity and vote count scaled by a log-normal factor, vote average jittered.

Movie ``i`` depends only on ``(seed, i)`` and the real movies, never on ``n``: a smaller
catalogue is a prefix of a larger one (a weekly refresh "adds movies"), and any movie can be
made on its own (:func:`movie`). Randomness comes from ``random.Random(int)``'s ``random()``
only, which Python guarantees across versions and platforms, so the bytes are reproducible.
Memory is the real corpus (a few MB) whatever ``n``: movies are made one at a time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import TmdbGenresError
from ..io import atomic_path, jsonl_line, read_jsonl

HEAPS_EXPONENT = 0.85  # invented names available at movie i: i ** HEAPS_EXPONENT
NAME_SKEW = 2.0  # pool index = size * u ** NAME_SKEW: older (real) names are drawn more often
NAME_TRIES = 4  # draws to find a name not yet used in the movie
MAX_DATE_SHIFT_DAYS = 730
FIRST_ID = 1
SOURCE_LABEL = "synthetic"

_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*")
_CAPITALISED = re.compile(r"\b[A-Z][a-z]+\b")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
# syllables of invented names: onset + vowel + coda, 19 * 7 * 6 = 798 of them
_ONSETS = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w",
           "z", "th")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "l", "s", "x")
_SYLLABLES = tuple(o + v + c for o in _ONSETS for v in _VOWELS for c in _CODAS)


class SyntheticError(TmdbGenresError):
    """The real movies a synthetic catalogue is built from cannot be used."""


@dataclass(frozen=True)
class Piece:
    """A text with name slots: ``literals[0] + names[0] + literals[1] + ... + literals[-1]``."""

    literals: tuple[str, ...]
    names: tuple[str, ...]

    def fill(self, mapping: dict[str, str]) -> str:
        """The text with each name replaced by ``mapping[name]``."""
        parts = [self.literals[0]]
        for name, literal in zip(self.names, self.literals[1:], strict=True):
            parts.append(mapping[name])
            parts.append(literal)
        return "".join(parts)


@dataclass(frozen=True)
class Template:
    """One real movie, split into what the generator recombines."""

    title: Piece
    sentences: tuple[int, ...]  # indices into Corpus.sentences
    genre_ids: tuple[int, ...]
    release_date: str | None
    original_language: str | None
    popularity: float | None
    vote_average: float | None
    vote_count: int | None


@dataclass(frozen=True)
class Corpus:
    """The real movies as templates, their sentences, the sentences of each genre, real names."""

    templates: tuple[Template, ...]
    sentences: tuple[Piece, ...]
    genre_sentences: dict[int, tuple[int, ...]]
    names: tuple[str, ...]


def split_sentences(text: str) -> list[str]:
    """``text`` cut into sentences at ``.``, ``!`` or ``?`` followed by a capital or a quote."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def find_names(texts: list[str]) -> set[str]:
    """Proper names of a corpus: capitalised words seen capitalised inside a sentence at least
    once and never in lower case anywhere (so "Four" in "Four Rooms" is not a name)."""
    lower: set[str] = set()
    inner_capitalised: set[str] = set()
    for text in texts:
        for sentence in split_sentences(text):
            for position, match in enumerate(_TOKEN.finditer(sentence)):
                word = match.group()
                if word.islower():
                    lower.add(word)
                elif position > 0 and _CAPITALISED.fullmatch(word):
                    inner_capitalised.add(word)
    return {w for w in inner_capitalised if w.lower() not in lower and len(w) > 2}


def to_piece(text: str, names: set[str]) -> Piece:
    """Split ``text`` into literals and the names it contains."""
    literals, found, start = [], [], 0
    for match in _CAPITALISED.finditer(text):
        if match.group() in names:
            literals.append(text[start:match.start()])
            found.append(match.group())
            start = match.end()
    literals.append(text[start:])
    return Piece(tuple(literals), tuple(found))


def as_number(value: Any, kind: type = float) -> Any:
    """``value`` as a ``kind`` if it is a number (an int or a float, never a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return kind(value)


def load_corpus(source: Path) -> Corpus:
    """Read the real movies of ``source`` (TMDB movie objects, JSONL or JSONL.gz) as templates."""
    if not source.is_file():
        raise SyntheticError(f"real movies {str(source)!r} not found",
                             "pass --source a JSONL(.gz) file of TMDB movies, e.g. "
                             "../shared/data/movies.jsonl.gz")
    try:
        rows = read_jsonl(source)
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SyntheticError(f"cannot read real movies {str(source)!r}: {exc}",
                             "pass a complete UTF-8 JSONL(.gz) file of TMDB movie objects"
                             ) from None
    rows = [r for r in rows if isinstance(r, dict) and isinstance(r.get("title"), str)
            and isinstance(r.get("overview"), str) and isinstance(r.get("genre_ids"), list)
            and r["genre_ids"]]
    if not rows:
        raise SyntheticError(f"{str(source)!r} holds no movie with a title, overview and genres",
                             "pass a JSONL(.gz) file of TMDB movie objects")
    names = find_names([r["overview"] for r in rows])
    sentences: list[Piece] = []
    genre_sentences: dict[int, list[int]] = {}
    templates = []
    for row in rows:
        indices = []
        for sentence in split_sentences(row["overview"]):
            indices.append(len(sentences))
            sentences.append(to_piece(sentence, names))
        genre_ids = tuple(g for g in row["genre_ids"] if isinstance(g, int))
        for genre in genre_ids:
            genre_sentences.setdefault(genre, []).extend(indices)
        date = row.get("release_date")
        templates.append(Template(
            title=to_piece(row["title"], names), sentences=tuple(indices), genre_ids=genre_ids,
            release_date=date if isinstance(date, str) and re.fullmatch(
                r"\d{4}-\d{2}-\d{2}", date) else None,
            original_language=row.get("original_language")
            if isinstance(row.get("original_language"), str) else None,
            popularity=as_number(row.get("popularity"), float),
            vote_average=as_number(row.get("vote_average"), float),
            vote_count=as_number(row.get("vote_count"), int),
        ))
    return Corpus(tuple(templates), tuple(sentences),
                  {g: tuple(v) for g, v in sorted(genre_sentences.items())}, tuple(sorted(names)))


def invented_name(k: int) -> str:
    """The ``k``-th invented name (k >= 0): two or more syllables, scrambled so that
    neighbouring ``k`` do not share a prefix."""
    base = len(_SYLLABLES)
    syllables = 2
    while k >= base ** syllables:
        k -= base ** syllables
        syllables += 1
    space = base ** syllables
    k = (k * 7_919 + 104_729) % space  # a bijection of [0, space): 7919 is prime to 798
    parts = []
    for _ in range(syllables):
        k, digit = divmod(k, base)
        parts.append(_SYLLABLES[digit])
    return "".join(parts).capitalize()


def pool_size(corpus: Corpus, i: int) -> int:
    """How many names movie ``i`` can draw from: the real ones plus ``i ** HEAPS_EXPONENT``."""
    return len(corpus.names) + int((i + 1) ** HEAPS_EXPONENT)


def pool_name(corpus: Corpus, index: int) -> str:
    """Name ``index`` of the pool: the real names first, then invented ones."""
    if index < len(corpus.names):
        return corpus.names[index]
    return invented_name(index - len(corpus.names))


def _shift_date(date: str, days: int) -> str:
    """``date`` (YYYY-MM-DD) moved by ``days``; an invalid date is kept as it is."""
    import datetime as dt

    try:
        return (dt.date.fromisoformat(date) + dt.timedelta(days=days)).isoformat()
    except ValueError:
        return date


def movie(corpus: Corpus, i: int, seed: int = 0) -> dict[str, Any]:
    """Synthetic movie number ``i`` (0-based; its id is ``FIRST_ID + i``) for ``seed``."""
    rng = random.Random((seed << 40) | i)
    draw = rng.random

    def pick(count: int) -> int:
        return min(int(draw() * count), count - 1)

    template = corpus.templates[pick(len(corpus.templates))]
    order = list(template.sentences)
    for k in range(len(order) - 1, 0, -1):  # Fisher-Yates with random() only
        j = pick(k + 1)
        order[k], order[j] = order[j], order[k]
    if order:
        genre = template.genre_ids[pick(len(template.genre_ids))]
        pool = corpus.genre_sentences[genre]
        order[pick(len(order))] = pool[pick(len(pool))]
    pieces = [template.title] + [corpus.sentences[s] for s in order]
    size = pool_size(corpus, i)
    mapping: dict[str, str] = {}
    for piece in pieces:
        for name in piece.names:
            if name not in mapping:
                for _ in range(NAME_TRIES):  # distinct names stay distinct, mostly
                    chosen = pool_name(corpus, min(int(size * draw() ** NAME_SKEW), size - 1))
                    if chosen not in mapping.values():
                        break
                mapping[name] = chosen
    factor = math.exp(0.5 * (draw() + draw() + draw() - 1.5))  # log-normal-ish, median 1
    result: dict[str, Any] = {
        "id": FIRST_ID + i,
        "title": template.title.fill(mapping),
        "overview": " ".join(corpus.sentences[s].fill(mapping) for s in order)
        if order else "",
        "genre_ids": list(template.genre_ids),
        "source": SOURCE_LABEL,
    }
    shift = pick(2 * MAX_DATE_SHIFT_DAYS + 1) - MAX_DATE_SHIFT_DAYS
    if template.release_date is not None:
        result["release_date"] = _shift_date(template.release_date, shift)
    if template.original_language is not None:
        result["original_language"] = template.original_language
    if template.popularity is not None:
        result["popularity"] = round(template.popularity * factor, 3)
    if template.vote_count is not None:
        result["vote_count"] = int(template.vote_count * factor)
    if template.vote_average is not None:
        result["vote_average"] = round(min(10.0, max(0.0, template.vote_average
                                                    + draw() - 0.5)), 1)
    return result


def generate(source: Path, n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``n`` synthetic TMDB movie objects (ids ascending) built from the real movies of
    ``source``; bounded memory whatever ``n``; the same ``(source, n, seed)`` gives the same
    movies, and a smaller ``n`` gives a prefix of a larger one."""
    if n < 0 or seed < 0:
        raise SyntheticError(f"cannot make {n} movies with seed {seed}",
                             "ask for 0 or more movies and a seed >= 0")
    corpus = load_corpus(source)
    for i in range(n):
        yield movie(corpus, i, seed)


def write(source: Path, n: int, out: Path, seed: int = 0) -> int:
    """Write ``generate(source, n, seed)`` to ``out`` as canonical JSONL (gzipped, with a fixed
    header, when ``out`` ends in ``.gz``), atomically; return the number of movies."""
    count = 0
    with atomic_path(out) as tmp, open(tmp, "wb") as raw:
        if out.name.endswith(".gz"):
            handle: Any = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                        compresslevel=6)
        else:
            handle = raw
        try:
            for obj in generate(source, n, seed):
                handle.write(jsonl_line(obj).encode("utf-8"))
                count += 1
        finally:
            if handle is not raw:
                handle.close()
    return count


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``tmdb-genres synth``."""
    parser.add_argument("--movies", type=int, required=True, help="how many movies to make")
    parser.add_argument("--out", type=Path, required=True,
                        help="JSONL file to write (gzipped when it ends in .gz)")
    parser.add_argument("--source", type=Path, default=Path("../shared/data/movies.jsonl.gz"),
                        help="real TMDB movies (JSONL/JSONL.gz) to build from "
                        "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    return parser


def main(args: argparse.Namespace) -> None:
    """Run ``tmdb-genres synth``."""
    count = write(args.source, args.movies, args.out, args.seed)
    print(f"wrote {count} synthetic movies to {args.out}", file=sys.stderr)
