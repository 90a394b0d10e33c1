"""Request and response models of the HTTP API, with their caps."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from ..movie import MAX_OVERVIEW, MAX_TITLE, validate_movie
from ..movie import Movie as ValidMovie

MAX_BATCH = 1_000  # movies a request



class Movie(BaseModel):
    """One movie to classify: a title, an overview, or both (an id is passed back), and
    optional metadata. Checked by the one rule of :func:`tmdb_genres.movie.validate_movie`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"title": "The Hollow House",
                      "overview": "A family moves into a house haunted by a demon."}]})

    id: int | str | None = Field(None, description="passed back unchanged")
    title: str = Field("", max_length=MAX_TITLE)
    overview: str = Field("", max_length=MAX_OVERVIEW)
    original_language: Any = Field(None, description="metadata, passed through unparsed")
    release_date: Any = Field(None, description="metadata, passed through unparsed")
    vote_count: Any = Field(None, description="metadata, passed through unparsed")
    popularity: Any = Field(None, description="metadata, passed through unparsed")
    vote_average: Any = Field(None, description="metadata, passed through unparsed")

    _valid: ValidMovie = PrivateAttr()

    @model_validator(mode="wrap")
    @classmethod
    def _is_a_movie(cls, data: Any, handler: Any) -> Movie:
        # the one rule; InvalidMovie is a ValueError: pydantic reports it, and
        # app.validation_message words it. Over-long texts are refused here too, so the
        # fields' max_length only documents the caps in the OpenAPI schema.
        movie = validate_movie(data, strict=True)
        model = handler({"id": movie.id, "title": movie.title, "overview": movie.overview,
                         **movie.metadata})
        model._valid = movie
        return model

    def movie(self) -> ValidMovie:
        """The validated movie this request holds (checked by the rule on the way in)."""
        return self._valid


class Batch(BaseModel):
    """Several movies in one request (at most ``MAX_BATCH``); each is checked on its own, and
    one that is not a movie gets an ``error`` in its place of the answer."""

    model_config = ConfigDict(extra="forbid")

    movies: list[Any] = Field(min_length=1, max_length=MAX_BATCH,
                              description="movies as in the single-movie request")


class Word(BaseModel):
    """A word of the text and how much it added to a genre's margin."""

    word: str
    weight: float


class GenreAnswer(BaseModel):
    """A predicted genre: its probability, threshold and the words that pushed it up most."""

    genre: str
    probability: float
    threshold: float
    words: list[Word]


class Prediction(BaseModel):
    """The answer for one movie."""

    id: int | str | None = None
    title: str
    model: str = Field(description="the model that answered: `fast` or `accurate`")
    words_from: str = Field(
        description="the model part the contributing words come from (`svm`: the accurate "
        "model's embeddings have no words to show)")
    genres: list[GenreAnswer] = Field(
        description="genres at or above their thresholds, most probable first")
    probabilities: dict[str, float] = Field(description="every genre's calibrated probability")
    thresholds: dict[str, float] = Field(description="the thresholds in force")
    at_least_one: bool = Field(
        description="a movie with no genre over its threshold gets its most probable genre")
    words: dict[str, list[Word]] | None = Field(
        None, description="with ?explain=all: the top words of every genre, not only the "
        "predicted ones")
    warning: str | None = Field(
        None, description="why the answer deserves care: a movie with a title and no "
        "overview is predicted from its title alone")


class MovieError(BaseModel):
    """In a batch's answer, in place of a movie that is not one: why."""

    id: int | str | None = None
    title: str | None = None
    error: str = Field(description="one line: the problem, then the remedy")


class BatchPrediction(BaseModel):
    """The answers for a batch, in request order."""

    movies: list[Prediction | MovieError]


class GenreInfo(BaseModel):
    """A genre the model knows."""

    name: str
    threshold: float
    test_f1: float | None


class Genres(BaseModel):
    """Every genre, with its threshold and test F1."""

    genres: list[GenreInfo]
    at_least_one: bool
    model: str


class Health(BaseModel):
    """What model is being served."""

    status: str
    model: str = Field(description="`fast` or `accurate`")
    embedding: str | None = Field(
        description="the embedding package==version the accurate model needs (else null)")
    model_format: int | None
    snapshot: str | None
    test_micro_f1: float | None
    test_macro_f1: float | None
    git_commit: str | None
    genres: int
    worker_threads: int
    pid: int
