"""The one typed loader for ``params.yaml``.

Each pipeline stage reads its own section (``fetch``, ``prepare``, ``featurize``, ``train``,
``evaluate``, ``crossval``). Every value is checked for type and range when loaded, and a bad
value fails with one line naming the key, what was expected and what was found.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import TmdbGenresError
from .genres import GENRE_IDS

# The metadata features featurize can encode (see metadata.py for what each reads).
METADATA_FEATURES = ("language", "decade", "vote_count", "popularity", "vote_average")


class ParamsError(TmdbGenresError):
    """A missing, unreadable or invalid ``params.yaml`` value."""


@dataclass(frozen=True)
class FetchParams:
    """Where the raw snapshot comes from, and (for ``source: tmdb``) what the live pull asks.

    ``source`` is a JSONL/JSONL.gz/CSV/CSV.gz path or the word ``tmdb`` (the live TMDB API).
    The query keys (``snapshot`` and the release-date range, languages, minimum vote count,
    maximum movies) decide *what* is pulled; the client keys (requests per second, concurrency,
    timeout, retries) decide only *how*, so ``dvc.yaml`` does not rerun fetch when they change.
    ``allow_incomplete`` decides only whether a pull that stays short of TMDB's count fails
    (the default) or is kept with the shortfall recorded; it is not a dvc.yaml param either.
    """

    source: str
    watch: str = ""
    snapshot: str = "default"
    release_date_gte: str = "1874-01-01"
    release_date_lte: str = "2022-12-31"
    languages: tuple[str, ...] = ()
    min_vote_count: int = 0
    max_movies: int | None = None
    requests_per_second: float = 20.0
    concurrency: int = 4
    timeout_seconds: float = 10.0
    max_retries: int = 6
    allow_incomplete: bool = False

    def query(self) -> dict[str, Any]:
        """The live-API query: everything that decides which movies a pull returns."""
        return {
            "snapshot": self.snapshot,
            "release_date_gte": self.release_date_gte,
            "release_date_lte": self.release_date_lte,
            "languages": list(self.languages),
            "min_vote_count": self.min_vote_count,
            "max_movies": self.max_movies,
        }


@dataclass(frozen=True)
class PrepareParams:
    """Cleaning, text construction and the stable hash split."""

    text_fields: tuple[str, ...]
    title_repeat: int
    min_overview_chars: int
    languages: tuple[str, ...]
    validation_fraction: float
    test_fraction: float
    split_salt: str
    train_limit: int | None = None


@dataclass(frozen=True)
class MetadataParams:
    """The metadata feature block (see :mod:`metadata`): which features, their weight, the
    language frequency floor, and the seeded share of training movies (``drop_rate``) and
    of their fields (``field_drop_rate``) whose metadata is removed so the model copes
    without it. No features turns the block off."""

    features: tuple[str, ...]
    weight: float
    language_min_movies: int
    drop_rate: float
    field_drop_rate: float
    seed: int


@dataclass(frozen=True)
class FeaturizeParams:
    """TF-IDF settings for the word and (optional) character vectorisers, and the
    metadata block."""

    word_ngram_max: int
    word_min_df: int
    word_max_features: int | None
    stop_words: str | None
    sublinear_tf: bool
    char_ngram_min: int
    char_ngram_max: int
    char_min_df: int
    char_max_features: int | None
    metadata: MetadataParams

    @property
    def use_chars(self) -> bool:
        """Whether character n-grams are used at all (``char_ngram_max`` 0 turns them off)."""
        return self.char_ngram_max > 0


@dataclass(frozen=True)
class TrainParams:
    """One-vs-rest linear SVM settings."""

    C: float
    class_weight: str | None
    max_iter: int
    seed: int
    workers: int = 1  # processes fitting genres at once; changes no output byte


@dataclass(frozen=True)
class EvaluateParams:
    """Decision thresholds on calibrated probabilities."""

    mode: str
    threshold: float
    per_genre: dict[str, float]
    tuned_min_positives: int
    at_least_one: bool
    bootstrap_rounds: int
    bootstrap_seed: int


@dataclass(frozen=True)
class CrossvalParams:
    """k-fold cross-validation by hashed id; ``workers`` (processes) changes no figure."""

    folds: int
    salt: str
    workers: int


@dataclass(frozen=True)
class Params:
    """All of ``params.yaml``, validated."""

    fetch: FetchParams
    prepare: PrepareParams
    featurize: FeaturizeParams
    train: TrainParams
    evaluate: EvaluateParams
    crossval: CrossvalParams


class _Section:
    """Typed access to one mapping of ``params.yaml`` that reports errors by dotted key."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ParamsError(
                f"params.yaml: {where or 'the file'} must be a mapping, got {type(data).__name__}",
                "fix that section of params.yaml (see docs/pipeline.md for the schema)",
            )
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def _name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def _fail(self, key: str, expected: str, value: Any) -> ParamsError:
        return ParamsError(
            f"params.yaml: {self._name(key)} must be {expected}, got {value!r}",
            f"set {self._name(key)} in params.yaml",
        )

    def get(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.data:
            raise ParamsError(
                f"params.yaml: {self._name(key)} is missing",
                f"add {self._name(key)} to params.yaml (see docs/pipeline.md for the schema)",
            )
        return self.data[key]

    def section(self, key: str) -> _Section:
        return _Section(self.get(key), self._name(key))

    def string(self, key: str, choices: tuple[str, ...] | None = None) -> str:
        value = self.get(key)
        if not isinstance(value, str) or not value or (choices and value not in choices):
            expected = f"one of {', '.join(choices)}" if choices else "a non-empty string"
            raise self._fail(key, expected, value)
        return value

    def optional_string(self, key: str, choices: tuple[str, ...]) -> str | None:
        value = self.get(key)
        if value is None:
            return None
        if value not in choices:
            raise self._fail(key, f"null or one of {', '.join(choices)}", value)
        return value

    def integer(self, key: str, low: int, high: int | None = None) -> int:
        value = self.get(key)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < low
            or (high is not None and value > high)
        ):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise self._fail(key, f"an integer {bound}", value)
        return value

    def optional_integer(self, key: str, low: int) -> int | None:
        return None if self.get(key) is None else self.integer(key, low)

    def number(self, key: str, low: float, high: float, *, open_low: bool = False) -> float:
        value = self.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number", value)
        value = float(value)
        too_low = value <= low if open_low else value < low
        if math.isnan(value) or too_low or value > high:
            bracket = "(" if open_low else "["
            raise self._fail(key, f"a number in {bracket}{low}, {high}]", value)
        return value

    def boolean(self, key: str) -> bool:
        value = self.get(key)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def strings(self, key: str, choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
        value = self.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of strings", value)
        if choices and (not value or any(v not in choices for v in value)):
            raise self._fail(key, f"a non-empty list drawn from {', '.join(choices)}", value)
        return tuple(value)

    def check_no_extra_keys(self) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra:
            raise ParamsError(
                f"params.yaml: unknown key {self._name(extra[0])}",
                "remove it or fix its spelling (see docs/pipeline.md for the schema)",
            )


def _iso_date(s: _Section, key: str, default: str) -> str:
    """An ISO ``YYYY-MM-DD`` date (YAML may already have parsed it into a ``date``)."""
    import datetime as dt

    if key not in s.data:
        return default
    value = s.get(key)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(value).isoformat() if isinstance(value, str) else ""
    except ValueError:
        pass
    raise s._fail(key, "a date YYYY-MM-DD", value)


def _label(s: _Section, key: str) -> str:
    """A free-form label; a YAML date such as ``2024-11-28`` is taken as its ISO text."""
    import datetime as dt

    value = s.get(key)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return s.string(key)


def _fetch(s: _Section) -> FetchParams:
    """``fetch``: only ``source`` is required; the live-API keys have defaults."""
    defaults = FetchParams(source="")

    def optional(key: str, read: Any) -> Any:
        return read(key) if key in s.data else getattr(defaults, key)

    def lowered(key: str) -> tuple[str, ...]:
        codes = s.strings(key)
        if not all(len(c) == 2 and c.isascii() and c.isalpha() for c in codes):
            raise s._fail(key, "a list of two-letter ISO 639-1 codes such as [en, fr]", codes)
        return tuple(sorted({c.lower() for c in codes}))

    gte = _iso_date(s, "release_date_gte", defaults.release_date_gte)
    lte = _iso_date(s, "release_date_lte", defaults.release_date_lte)
    if gte > lte:
        raise s._fail("release_date_lte", f"on or after release_date_gte ({gte})", lte)
    source = s.string("source")
    if source.lower() == "tmdb":
        source = "tmdb"
    watch = s.string("watch")
    if source != "tmdb" and watch != source:
        raise ParamsError(
            f"params.yaml: fetch.watch must be the same path as fetch.source ({source!r}) "
            f"for a file source, got {watch!r}",
            "set fetch.watch to that path, so that `dvc repro` refetches when the file changes",
        )
    if source == "tmdb" and watch == "tmdb":
        raise ParamsError(
            "params.yaml: fetch.watch must name an existing file, got 'tmdb'",
            "for the live API set fetch.watch: src/tmdb_genres/sources/tmdb_api.py",
        )
    return FetchParams(
        source=source,
        watch=watch,
        snapshot=optional("snapshot", lambda k: _label(s, k)),
        release_date_gte=gte,
        release_date_lte=lte,
        languages=optional("languages", lowered),
        min_vote_count=optional("min_vote_count", lambda k: s.integer(k, 0)),
        max_movies=optional("max_movies", lambda k: s.optional_integer(k, 1)),
        requests_per_second=optional(
            "requests_per_second", lambda k: s.number(k, 0.0, 1000.0)
        ),
        concurrency=optional("concurrency", lambda k: s.integer(k, 1, 32)),
        timeout_seconds=optional(
            "timeout_seconds", lambda k: s.number(k, 0.0, 600.0, open_low=True)
        ),
        max_retries=optional("max_retries", lambda k: s.integer(k, 0, 50)),
        allow_incomplete=optional("allow_incomplete", s.boolean),
    )


def _prepare(s: _Section) -> PrepareParams:
    split = s.section("split")
    params = PrepareParams(
        text_fields=s.strings("text_fields", ("title", "overview")),
        title_repeat=s.integer("title_repeat", 1, 10),
        min_overview_chars=s.integer("min_overview_chars", 1),
        languages=s.strings("languages"),
        validation_fraction=split.number("validation", 0.0, 0.5, open_low=True),
        test_fraction=split.number("test", 0.0, 0.5, open_low=True),
        split_salt=split.string("salt"),
        train_limit=split.optional_integer("train_limit", 1),
    )
    split.check_no_extra_keys()
    if params.validation_fraction + params.test_fraction >= 1:
        raise ParamsError(
            "params.yaml: prepare.split.validation + prepare.split.test must be below 1 (the "
            f"rest is the train split), got {params.validation_fraction} + "
            f"{params.test_fraction}",
            "lower prepare.split.validation or prepare.split.test in params.yaml",
        )
    return params


def _featurize(s: _Section) -> FeaturizeParams:
    word, char = s.section("word"), s.section("char")
    params = FeaturizeParams(
        word_ngram_max=word.integer("ngram_max", 1, 5),
        word_min_df=word.integer("min_df", 1),
        word_max_features=word.optional_integer("max_features", 1),
        stop_words=word.optional_string("stop_words", ("english",)),
        sublinear_tf=s.boolean("sublinear_tf"),
        char_ngram_min=char.integer("ngram_min", 1, 10),
        char_ngram_max=char.integer("ngram_max", 0, 10),
        char_min_df=char.integer("min_df", 1),
        char_max_features=char.optional_integer("max_features", 1),
        metadata=_metadata(s.section("metadata")),
    )
    if params.use_chars and params.char_ngram_max < params.char_ngram_min:
        raise char._fail("ngram_max", f"0 (off) or >= ngram_min ({params.char_ngram_min})",
                         params.char_ngram_max)
    word.check_no_extra_keys()
    char.check_no_extra_keys()
    return params


def _metadata(s: _Section) -> MetadataParams:
    features = s.get("features")
    known = METADATA_FEATURES
    if (not isinstance(features, list) or not all(f in known for f in features)
            or len(set(features)) != len(features)):
        raise s._fail("features", f"a list of distinct names from {', '.join(known)}", features)
    params = MetadataParams(
        features=tuple(features),
        weight=s.number("weight", 0.0, 100.0, open_low=True),
        language_min_movies=s.integer("language_min_movies", 1),
        drop_rate=s.number("drop_rate", 0.0, 1.0),
        field_drop_rate=s.number("field_drop_rate", 0.0, 1.0),
        seed=s.integer("seed", 0),
    )
    s.check_no_extra_keys()
    return params


def _train(s: _Section) -> TrainParams:
    return TrainParams(
        C=s.number("C", 0.0, 1e6, open_low=True),
        class_weight=s.optional_string("class_weight", ("balanced",)),
        max_iter=s.integer("max_iter", 1),
        seed=s.integer("seed", 0),
        workers=s.integer("workers", 1, 64),
    )


def _evaluate(s: _Section) -> EvaluateParams:
    overrides = _Section(s.get("per_genre") or {}, "evaluate.per_genre")
    for name in overrides.data:
        if name not in GENRE_IDS:
            raise ParamsError(
                f"params.yaml: evaluate.per_genre names an unknown genre {name!r}",
                f"use one of: {', '.join(sorted(GENRE_IDS))}",
            )
    return EvaluateParams(
        mode=s.string("mode", ("fixed", "tuned")),
        threshold=s.number("threshold", 0.0, 1.0),
        per_genre={name: overrides.number(name, 0.0, 1.0) for name in sorted(overrides.data)},
        tuned_min_positives=s.integer("tuned_min_positives", 1),
        at_least_one=s.boolean("at_least_one"),
        bootstrap_rounds=s.integer("bootstrap_rounds", 0, 100_000),
        bootstrap_seed=s.integer("bootstrap_seed", 0),
    )


def _crossval(s: _Section) -> CrossvalParams:
    return CrossvalParams(
        folds=s.integer("folds", 3, 20),
        salt=s.string("salt"),
        workers=s.integer("workers", 1, 64),
    )


_SECTIONS = {
    "fetch": _fetch,
    "prepare": _prepare,
    "featurize": _featurize,
    "train": _train,
    "evaluate": _evaluate,
    "crossval": _crossval,
}


def parse_params(data: Any) -> Params:
    """Validate an already-parsed ``params.yaml`` mapping."""
    root = _Section(data, "")
    sections = {}
    for name, build in _SECTIONS.items():
        section = _Section(root.get(name), name)
        sections[name] = build(section)
        section.check_no_extra_keys()
    root.check_no_extra_keys()
    return Params(**sections)


def _read_yaml(path: str | Path) -> Any:
    """The parsed YAML of a params file; one-line errors for a missing or invalid file."""
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ParamsError(
            f"{path} not found", "run from the project root or pass --params PATH"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ParamsError(f"{path} is not valid YAML{where}", "fix the syntax") from None
    return data


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; raise :class:`ParamsError` with a one-line message."""
    return parse_params(_read_yaml(path))


@dataclass(frozen=True)
class EmbedParams:
    """The accurate model's embedding stage (``accurate/params.yaml``)."""

    engine: str
    batch_size: int
    train_limit: int | None


@dataclass(frozen=True)
class HeadParams:
    """The per-genre logistic-regression head on the embeddings, and the metadata block
    it reads beside them (fitted on the embedded training movies; no features turns it off)."""

    C: float
    class_weight: str | None
    max_iter: int
    metadata: MetadataParams


@dataclass(frozen=True)
class EnsembleParams:
    """How the SVM's and the head's calibrated probabilities are averaged."""

    weights: str
    step: float


@dataclass(frozen=True)
class AccurateParams:
    """All of ``accurate/params.yaml``, validated."""

    embed: EmbedParams
    head: HeadParams
    ensemble: EnsembleParams


def parse_accurate_params(data: Any, engines: Collection[str]) -> AccurateParams:
    """Validate an already-parsed ``accurate/params.yaml`` mapping; ``engines`` are the
    embedding engines' names (``accurate.embeddings.ENGINES``, passed in so that the stages
    of the main pipeline, which import this module, never depend on the accurate model)."""
    root = _Section(data, "")
    embed, head, ensemble = (_Section(root.get(k), k) for k in ("embed", "head", "ensemble"))
    params = AccurateParams(
        embed=EmbedParams(
            engine=embed.string("engine", tuple(sorted(engines))),
            batch_size=embed.integer("batch_size", 1, 4096),
            train_limit=embed.optional_integer("train_limit", 1),
        ),
        head=HeadParams(
            C=head.number("C", 0.0, 1e6, open_low=True),
            class_weight=head.optional_string("class_weight", ("balanced",)),
            max_iter=head.integer("max_iter", 1),
            metadata=_metadata(head.section("metadata")),
        ),
        ensemble=EnsembleParams(
            weights=ensemble.string("weights", ("global", "per_genre")),
            step=ensemble.number("step", 0.0, 1.0, open_low=True),
        ),
    )
    for section in (embed, head, ensemble, root):
        section.check_no_extra_keys()
    return params


def load_accurate_params(path: str | Path, engines: Collection[str]) -> AccurateParams:
    """Read and validate the accurate model's params file (``accurate/params.yaml``)."""
    return parse_accurate_params(_read_yaml(path), engines)
