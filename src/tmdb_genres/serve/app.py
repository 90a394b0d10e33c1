"""The FastAPI application: ``POST /predict``, ``GET /genres``, ``GET /health`` and the page.

One process holds one copy of the model, whatever the number of workers. The fast model
answers a short single movie on the event loop itself (about a millisecond of work, less than
a hand-off to a thread and back, which costs several on a busy machine); a batch, a long movie
(over ``INLINE_CHARS`` characters, or with ``explain=all``) and any request to the accurate
model (which embeds the text: tens of milliseconds) run on one of ``worker_threads`` threads
(a capacity limiter over the event loop's thread pool), answer encoded there too, so a long
request never blocks the event loop. Every ``GET`` route also answers ``HEAD``.
(No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations.)
"""

import json
import os
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from ..model import GenreModel
from ..movie import InvalidMovie, echo_id, echo_title, validate_movie
from ..movie import Movie as ValidMovie
from .schemas import (
    MAX_BATCH,
    Batch,
    BatchPrediction,
    Genres,
    Health,
    Movie,
    Prediction,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

TOP_WORDS = 5  # contributing words per genre
INLINE_CHARS = 2_000  # a single movie up to this long is answered on the event loop
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
WORDS_FROM = "svm"  # the contributing words are the SVM's, for either model
DESCRIPTIONS = {
    "fast": "TF-IDF + one-vs-rest linear SVM, Platt-calibrated; the page is at `/`.",
    "accurate": "The accurate model: the calibrated TF-IDF SVM ensembled with a per-genre head "
    "on sentence embeddings (weights per genre); the contributing words are the SVM part's. "
    "The page is at `/`.",
}
EXAMPLE = '{"title": "The Hollow House", "overview": "A family moves into a haunted house."}'


def _rounded(values: np.ndarray) -> list[float]:
    """Four decimals, rounded as ``tmdb-genres predict`` rounds them."""
    return np.round(values, 4).tolist()


def model_kind(model: Any) -> str:
    """``fast`` (a GenreModel) or ``accurate`` (an AccurateModel)."""
    return str(getattr(model, "kind", "fast"))


def answer(model: GenreModel, movie: ValidMovie, probabilities: np.ndarray,
           words: dict[str, list[tuple[str, float]]] | None, explain: str) -> dict[str, Any]:
    """The answer for one movie (see :class:`~.schemas.Prediction`)."""
    ranked = model.decide(probabilities[None, :])[0]
    shown = _rounded(probabilities)
    thresholds = _rounded(model.thresholds)
    column = {genre: j for j, genre in enumerate(model.genres)}

    def word_list(genre: str) -> list[dict[str, Any]]:
        return [{"word": w, "weight": round(weight, 4)} for w, weight in (words or {})
                .get(genre, [])]

    result: dict[str, Any] = {
        "id": movie.id,
        "title": movie.title,
        "model": model_kind(model),
        "words_from": WORDS_FROM,
        "genres": [{"genre": genre, "probability": shown[column[genre]],
                    "threshold": thresholds[column[genre]], "words": word_list(genre)}
                   for genre in ranked],
        "probabilities": dict(zip(model.genres, shown, strict=True)),
        "thresholds": dict(zip(model.genres, thresholds, strict=True)),
        "at_least_one": model.at_least_one,
    }
    if explain == "all":
        result["words"] = {genre: word_list(genre) for genre in model.genres}
    if movie.warning:
        result["warning"] = movie.warning
    return result


def refusal(record: Any, error: InvalidMovie) -> dict[str, Any]:
    """In a batch's answer, in place of ``record`` (not a movie): why."""
    fields = record if isinstance(record, dict) else {}
    return {"id": echo_id(fields.get("id")), "title": echo_title(fields.get("title")),
            "error": str(error)}


def predict_movies(model: GenreModel, movies: list[ValidMovie], explain: str
                   ) -> list[dict[str, Any]]:
    """The answers for ``movies``: with words from the single-text path, or without
    (``explain="none"``) from one batch product."""
    if explain == "none":
        probabilities = (model.score(movies) if len(movies) > 1
                         else [model.probabilities_one(model.text(m.title, m.overview),
                                                       m.metadata) for m in movies])
        return [answer(model, movie, p, None, explain)
                for movie, p in zip(movies, probabilities, strict=True)]
    results = []
    for movie in movies:
        probabilities, words = model.predict_one(model.text(movie.title, movie.overview),
                                                 TOP_WORDS, movie.metadata)
        results.append(answer(model, movie, probabilities, words, explain))
    return results


def predict_batch(model: GenreModel, records: list[Any], explain: str) -> list[dict[str, Any]]:
    """The answers for a batch's ``records``, in order: each is checked on its own, and one
    that is not a movie gets its ``error`` in its place."""
    checked: list[ValidMovie | InvalidMovie] = []
    for i, record in enumerate(records):
        try:
            checked.append(validate_movie(record, where=f"movies[{i}]", strict=True))
        except InvalidMovie as exc:
            checked.append(exc)
    valid = [m for m in checked if isinstance(m, ValidMovie)]
    answers = iter(predict_movies(model, valid, explain) if valid else [])
    return [next(answers) if isinstance(m, ValidMovie) else refusal(record, m)
            for m, record in zip(checked, records, strict=True)]


def _location(loc: tuple[Any, ...]) -> str:
    """``("movies", 3, "title")`` -> ``movies[3].title``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def validation_message(errors: list[dict[str, Any]], body: Any) -> tuple[int, str]:
    """One status and one line for FastAPI's validation errors of a /predict body."""
    for error in errors:
        if error["loc"] and error["loc"][0] == "query":
            return 422, (f"query parameter {_location(tuple(error['loc'][1:]))}: "
                         f"{error['msg']} — use explain=predicted, all or none")
        if error.get("type") == "json_invalid":
            reason = (error.get("ctx") or {}).get("error", "")
            return 400, (f"request body is not valid JSON ({reason}) — send a JSON object "
                         f"such as {EXAMPLE}")
    if isinstance(body, bytes | str) or body is None:
        return 415, ("request body must be JSON with Content-Type: application/json — e.g. "
                     f"curl -H 'Content-Type: application/json' -d '{EXAMPLE}'")
    if not isinstance(body, dict):
        return 422, ("request body is not a JSON object — send one movie {\"title\": ..., "
                     "\"overview\": ...} or a batch {\"movies\": [...]}")
    branch = "Batch" if "movies" in body else "Movie"
    relevant = [e for e in errors if len(e["loc"]) > 1 and branch in str(e["loc"][1])]
    error = (relevant or errors)[0]
    where = _location(tuple(error["loc"][2:])) if relevant else ""
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    if kind == "too_long":
        return 413, (f"batch of {len(body['movies']):,} movies is over the cap of "
                     f"{MAX_BATCH:,} — split it into requests of at most {MAX_BATCH:,}")
    if isinstance(ctx.get("error"), InvalidMovie):
        return (413 if ctx["error"].too_long else 422), str(ctx["error"])
    if kind == "extra_forbidden":
        return 422, (f"unknown field {where!r} — a movie has title, overview and an optional "
                     "id; a batch is {\"movies\": [...]}")
    return 422, f"{where or 'request body'}: {error['msg']} — see /docs for the request format"


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the package: name -> (bytes, media type)."""
    folder = resources.files(__package__) / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = os.path.splitext(entry.name)[1]
        if suffix in STATIC_TYPES:
            files[entry.name] = (entry.read_bytes(), STATIC_TYPES[suffix])
    return files


def create_app(model: GenreModel, info: dict[str, Any], worker_threads: int = 1) -> "FastAPI":
    """The application over ``model`` (with ``info`` as :func:`hub.folder.model_info` gives it).

    ``worker_threads`` predictions run at once, all on the one model of this process.
    """
    import anyio
    from fastapi import FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    limiter = anyio.CapacityLimiter(worker_threads)
    files = _static_files()
    per_genre = info.get("per_genre") or {}
    test = (info.get("metrics") or {}).get("test") or {}
    kind = model_kind(model)
    slow_single = kind != "fast"  # a single movie off the event loop too (it is embedded)
    embedding = info.get("embedding") or {}
    health = {
        "status": "ok",
        "model": kind,
        "embedding": (f"{embedding['package']}=={embedding['version']}" if embedding
                      else None),
        "model_format": info.get("model_format"),
        "snapshot": (info.get("snapshot") or {}).get("label"),
        "test_micro_f1": test.get("micro_f1"),
        "test_macro_f1": test.get("macro_f1"),
        "git_commit": info.get("git_commit"),
        "genres": len(model.genres),
        "worker_threads": worker_threads,
        "pid": os.getpid(),
    }
    genres = {
        "genres": [{"name": genre, "threshold": threshold,
                    "test_f1": (per_genre.get(genre) or {}).get("f1")}
                   for genre, threshold in zip(model.genres, _rounded(model.thresholds),
                                               strict=True)],
        "at_least_one": model.at_least_one,
        "model": kind,
    }

    app = FastAPI(
        title="tmdb-genres",
        summary="Genres of a movie from its title and overview.",
        description=DESCRIPTIONS.get(kind, DESCRIPTIONS["fast"]),
        version=str(info.get("model_format", "")),
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = validation_message(list(exc.errors()), exc.body)
        return JSONResponse({"detail": message}, status_code=status)

    def json_bytes(content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()

    def json_response(content: Any) -> Response:
        return Response(json_bytes(content), media_type="application/json")

    @app.post("/predict", responses={200: {"model": Prediction | BatchPrediction}},
              summary="Genres of one movie or of a batch")
    async def predict(payload: Movie | Batch,
                      explain: str = Query("predicted", pattern="^(predicted|all|none)$",
                                           description="the contributing words: of the "
                                           "`predicted` genres, of `all`, or `none` (faster "
                                           "batches)")
                      ) -> Response:
        if isinstance(payload, Movie):
            movie = payload.movie()
            if (not slow_single and explain != "all"
                    and len(movie.title) + len(movie.overview) <= INLINE_CHARS):
                # about a millisecond: less than handing it to a thread and back costs
                return json_response(predict_movies(model, [movie], explain)[0])

            def work() -> bytes:  # a long text, or the accurate model embedding it
                return json_bytes(predict_movies(model, [movie], explain)[0])
        else:
            def work() -> bytes:
                return json_bytes({"movies": predict_batch(model, payload.movies, explain)})

        body = await anyio.to_thread.run_sync(work, limiter=limiter)
        return Response(body, media_type="application/json")

    @app.get("/genres", response_model=Genres, summary="Genres, thresholds and test F1")
    async def get_genres() -> Response:
        return json_response(genres)

    @app.get("/health", response_model=Health, summary="The model being served")
    async def get_health() -> Response:
        return json_response(health)

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        content, media_type = files["index.html"]
        return Response(content, media_type=media_type)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in files:
            return JSONResponse({"detail": f"no file {name!r}"}, status_code=404)
        content, media_type = files[name]
        return Response(content, media_type=media_type,
                        headers={"Cache-Control": "no-cache"})

    for route in list(app.router.routes):  # HEAD wherever GET works (the server sends no body)
        methods = getattr(route, "methods", None) or set()
        if "GET" in methods and "HEAD" not in methods:
            app.add_api_route(route.path, route.endpoint, methods=["HEAD"],
                              include_in_schema=False)
    return app
