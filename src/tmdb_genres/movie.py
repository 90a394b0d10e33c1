"""What a movie is, and the one text every model scores.

:func:`validate_movie` is the one rule, shared by ``predict`` and the service, for what a movie
is: a mapping whose ``title`` and ``overview`` are text (or absent / null), not both empty,
with at least one word (a letter or a digit), no lone surrogates or control characters (tab,
newline and carriage return are white space), within :data:`MAX_TITLE` and
:data:`MAX_OVERVIEW` characters; an ``id`` is an integer, a string or null. A movie with a title
and no overview is valid, and predicted from its title alone (``Movie.warning`` says so).

:func:`movie_text` is the one function that builds the model text: the prepare stage (and so
featurize, train and evaluate), ``predict``, the service, ``from_pretrained`` and the accurate
model all call it, so that what is served is what was evaluated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from .errors import TmdbGenresError

METADATA_FIELDS = ("original_language", "release_date", "vote_count", "popularity",
                   "vote_average")
TEXT_FIELDS = ("title", "overview")
MOVIE_FIELDS = ("id", *TEXT_FIELDS, *METADATA_FIELDS)
MAX_TITLE = 1_000  # characters
MAX_OVERVIEW = 10_000  # characters
CAPS = {"title": MAX_TITLE, "overview": MAX_OVERVIEW}
TITLE_ONLY = "empty overview: predicted from the title alone"
SEPARATOR = " . "  # between the parts of the model text
# C0 controls but tab, newline and carriage return; DEL; C1 controls
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_UNFIT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")  # either
_WORD = re.compile(r"[^\W_]")  # a letter or a digit
_SCALARS = (str, int, float, bool)


class TextRecipe(Protocol):
    """How a model text is built: the fields in order, and how often the title repeats
    (``PrepareParams`` and the models carry these two attributes)."""

    @property
    def text_fields(self) -> tuple[str, ...] | list[str]: ...

    @property
    def title_repeat(self) -> int: ...


class InvalidMovie(TmdbGenresError, ValueError):
    """A record that is not a movie: one line naming the problem and the remedy.

    ``too_long`` marks a text over its cap (the service answers 413 for it, 422 otherwise).
    """

    def __init__(self, problem: str, remedy: str, too_long: bool = False) -> None:
        super().__init__(problem, remedy)
        self.too_long = too_long


@dataclass(frozen=True)
class Movie:
    """A validated movie: the only thing the models score."""

    title: str
    overview: str
    id: int | str | None = None
    # only METADATA_FIELDS present with a JSON scalar value, passed through unparsed
    metadata: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def warning(self) -> str | None:
        """Why the prediction deserves care (title only), or None."""
        return None if self.overview.strip() else TITLE_ONLY


def normalize_space(text: str) -> str:
    """Collapse runs of white space to one space and strip the ends.

    ``str.split`` and the regular expression ``\\s+`` agree on what white space is (every
    Unicode white-space character); splitting is several times faster.
    """
    return " ".join(text.split())


def movie_text(title: str, overview: str, recipe: TextRecipe) -> str:
    """THE model text of a movie: ``recipe.text_fields`` in order, white space collapsed, the
    title repeated ``recipe.title_repeat`` times, empty parts left out, joined by `` . ``."""
    parts: list[str] = []
    for name in recipe.text_fields:
        if name == "title":
            parts.extend([normalize_space(title)] * recipe.title_repeat)
        else:
            parts.append(normalize_space(overview))
    return SEPARATOR.join(p for p in parts if p)


def _name(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _describe(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", bool: "a boolean", int: "a number",
             float: "a number", str: "a string"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _check_text(value: Any, key: str, where: str) -> str:
    """``value`` as the text of field ``key`` (null / absent is empty), or InvalidMovie."""
    name = _name(where, key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidMovie(f"{name} is {_describe(value)}, not text",
                           f"give {key} as a string (or leave it out)")
    if len(value) > CAPS[key]:
        raise InvalidMovie(f"{name} has {len(value):,} characters, over the cap of "
                           f"{CAPS[key]:,}",
                           f"send a shorter text (title up to {MAX_TITLE:,}, overview up to "
                           f"{MAX_OVERVIEW:,} characters)", too_long=True)
    if not _UNFIT.search(value):
        return value
    bad = _SURROGATE.search(value)
    if bad:
        raise InvalidMovie(f"{name} has a lone surrogate U+{ord(bad.group()):04X} at character "
                           f"{bad.start()}: not valid Unicode",
                           "send valid UTF-8 text (a JSON \\ud800-\\udfff escape must be half "
                           "of a pair)")
    bad = _CONTROL.search(value)
    if bad:
        raise InvalidMovie(f"{name} has the control character U+{ord(bad.group()):04X} at "
                           f"character {bad.start()}",
                           "remove control characters (tab and newline are fine)")
    return value


def validate_movie(record: Any, *, where: str = "", strict: bool = False) -> Movie:
    """The :class:`Movie` of ``record`` (a parsed JSON object or a CSV row), or
    :class:`InvalidMovie` with one line; ``where`` names the record in that line.

    Unknown keys are ignored (a TMDB record carries many), unless ``strict`` (the service's
    request body) refuses them. Metadata is kept unparsed when it is a JSON scalar, else
    dropped: a movie is never refused for its metadata.
    """
    label = where or "the movie"
    if not isinstance(record, Mapping):
        raise InvalidMovie(f"{label} is {_describe(record)}, not a JSON object",
                           'give one movie as {"title": ..., "overview": ...}')
    if strict:
        unknown = [str(k) for k in record if k not in MOVIE_FIELDS]
        if unknown:
            raise InvalidMovie(f"unknown field {_name(where, unknown[0])!r}",
                               "a movie has title, overview, an optional id and optional "
                               f"metadata ({', '.join(METADATA_FIELDS)})")
    title = _check_text(record.get("title"), "title", where)
    overview = _check_text(record.get("overview"), "overview", where)
    movie_id = record.get("id")
    if movie_id is not None and (isinstance(movie_id, bool)
                                 or not isinstance(movie_id, int | str)):
        raise InvalidMovie(f"{_name(where, 'id')} is {_describe(movie_id)}",
                           "give the id as an integer or a string (or leave it out)")
    if isinstance(movie_id, str) and _UNFIT.search(movie_id):
        raise InvalidMovie(f"{_name(where, 'id')} is not valid text",
                           "give the id as plain text or an integer")
    if not title.strip() and not overview.strip():
        raise InvalidMovie(f"{label} has an empty title and overview: nothing to classify",
                           "give a title or an overview")
    if not _WORD.search(overview) and not _WORD.search(title):
        raise InvalidMovie(f"{label} has no words in its title or overview: nothing to "
                           "classify", "give a title or an overview with words in it")
    metadata = {key: record[key] for key in METADATA_FIELDS
                if isinstance(record.get(key), _SCALARS)}
    return Movie(title=title, overview=overview, id=movie_id,
                 metadata=MappingProxyType(metadata))


def echo_id(value: Any) -> int | str | None:
    """``value`` if it can be passed back as an id (an integer or valid text), else None: an
    answer never repeats what made a record invalid."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return echo_title(value)


def echo_title(value: Any) -> str | None:
    """``value`` if it can be passed back as a title (valid text), else None."""
    if isinstance(value, str) and not _SURROGATE.search(value):
        return value
    return None
