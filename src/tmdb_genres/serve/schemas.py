"""Request and response models of the HTTP API, with their caps."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_TITLE = 1_000  # characters
MAX_OVERVIEW = 10_000  # characters
MAX_BATCH = 1_000  # movies a request


class Movie(BaseModel):
    """One movie to classify: a title, an overview, or both (an id is passed back)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"title": "The Hollow House",
                      "overview": "A family moves into a house haunted by a demon."}]})

    id: int | str | None = Field(None, description="passed back unchanged")
    title: str = Field("", max_length=MAX_TITLE)
    overview: str = Field("", max_length=MAX_OVERVIEW)

    @field_validator("title", "overview", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return "" if value is None else value

    @model_validator(mode="after")
    def _has_text(self) -> Movie:
        if not self.title.strip() and not self.overview.strip():
            raise ValueError("empty title and overview: nothing to classify")
        return self


class Batch(BaseModel):
    """Several movies in one request (at most ``MAX_BATCH``)."""

    model_config = ConfigDict(extra="forbid")

    movies: list[Movie] = Field(min_length=1, max_length=MAX_BATCH)


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


class BatchPrediction(BaseModel):
    """The answers for a batch, in request order."""

    movies: list[Prediction]


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
