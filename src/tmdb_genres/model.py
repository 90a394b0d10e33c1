"""The genre model: linear SVM margins, Platt-calibrated to probabilities, then thresholds.

The trained weights are stored as plain arrays (not pickled estimator objects) so that the
saved bytes are deterministic and prediction is one sparse matrix product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from . import paths
from .errors import TmdbGenresError
from .io import load_joblib, read_json
from .movie import Movie, movie_text
from .numeric import settle
from .vectorize import SingleText, Sources, Vectorizer

MODEL_FORMAT = 2  # of models/vectorizer.joblib and models/model.joblib


def fit_platt(scores: np.ndarray, labels: np.ndarray, max_iter: int = 100) -> tuple[float, float]:
    """Fit Platt's sigmoid ``P(y=1|s) = 1 / (1 + exp(a*s + b))`` by Newton's method.

    Uses Platt's smoothed targets, so a genre with no (or only) positives still gets a
    finite, sensible calibration instead of an error. ``a`` and ``b`` are settled (see
    :mod:`numeric`): the last bits of ``exp``, ``logaddexp`` and the sums differ between
    CPUs, the settled optimum does not.
    """
    s = settle(np.asarray(scores, dtype=np.float64))
    y = np.asarray(labels) > 0
    positives = float(np.sum(y))
    negatives = float(len(y) - positives)
    t = np.where(y, (positives + 1) / (positives + 2), 1 / (negatives + 2))
    a, b = 0.0, float(np.log((negatives + 1) / (positives + 1)))

    def loss(a_: float, b_: float) -> float:
        z = a_ * s + b_
        return float(np.sum(np.logaddexp(0.0, z) - (1 - t) * z))

    current = loss(a, b)
    for _ in range(max_iter):
        z = a * s + b
        p = 1.0 / (1.0 + np.exp(z))
        g = t - p  # dL/dz
        grad = np.array([np.dot(g, s), np.sum(g)])
        if np.max(np.abs(grad)) < 1e-9:
            break
        w = p * (1 - p)
        hess = np.array([[np.dot(w, s * s), np.dot(w, s)], [np.dot(w, s), np.sum(w)]])
        hess += 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        size = 1.0
        while size > 1e-10:
            new = loss(a - size * step[0], b - size * step[1])
            if new < current + 1e-4 * size * float(np.dot(grad, -step)):
                break
            size /= 2
        else:
            break
        a, b, current = a - size * step[0], b - size * step[1], new
    return settle(float(a)), settle(float(b))



def fit_calibration(margins_val: np.ndarray, y_val: np.ndarray,
                    removed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every genre's Platt ``a`` and ``b``, fitted on validation margins only.

    With ``removed`` (the same validation movies' margins with every metadata field
    removed), the sigmoid is fitted on both sets stacked, so that probabilities stay
    calibrated for callers that send text only (the threshold is then chosen on the
    validation movies with their metadata, as before).
    """
    if removed is not None:
        margins_val, y_val = np.vstack([margins_val, removed]), np.vstack([y_val, y_val])
    platt = [fit_platt(margins_val[:, j], y_val[:, j]) for j in range(y_val.shape[1])]
    return np.array([a for a, _ in platt]), np.array([b for _, b in platt])

def margins(x: Any, coef_t: Any, intercept: np.ndarray) -> np.ndarray:
    """Settled SVM margins ``x @ coef_t + intercept`` (rows x genres, float64), where
    ``coef_t`` is the weights transposed (features x genres; pass a C-contiguous copy to
    spare the sparse product a copy of it on every call)."""
    return settle(np.asarray(x @ coef_t, dtype=np.float64) + intercept)


def calibrated(margins: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Settled Platt probabilities from SVM margins (genres along the last axis)."""
    return settle(1.0 / (1.0 + np.exp(margins * a + b)))


def apply_thresholds(
    probabilities: np.ndarray, thresholds: np.ndarray, at_least_one: bool
) -> np.ndarray:
    """Boolean genre decisions; with ``at_least_one`` a row with none gets its top genre."""
    decisions = probabilities >= thresholds
    if at_least_one and len(decisions):
        empty = ~decisions.any(axis=1)
        decisions[empty, probabilities[empty].argmax(axis=1)] = True
    return decisions


def ranked_genres(probabilities: np.ndarray, thresholds: np.ndarray, at_least_one: bool,
                  genres: list[str]) -> list[list[str]]:
    """Per row, the genre names at or above their thresholds, highest probability first."""
    decisions = apply_thresholds(probabilities, thresholds, at_least_one)
    order = np.argsort(-probabilities, axis=1, kind="stable")
    return [
        [genres[j] for j in row_order if row_decisions[j]]
        for row_order, row_decisions in zip(order, decisions, strict=True)
    ]


@dataclass(frozen=True)
class GenreModel:
    """Everything prediction needs: text recipe, vectoriser, weights, calibration, thresholds."""

    text_fields: tuple[str, ...]
    title_repeat: int
    vectorizer: Vectorizer
    genres: list[str]
    coef: Any
    intercept: np.ndarray
    platt_a: np.ndarray
    platt_b: np.ndarray
    thresholds: np.ndarray
    at_least_one: bool

    @classmethod
    def load(
        cls,
        vectorizer: Path = paths.VECTORIZER,
        model: Path = paths.MODEL,
        thresholds: Path = paths.THRESHOLDS,
    ) -> GenreModel:
        """Load the artifacts ``dvc repro`` wrote (one clear error if any is missing)."""
        for path in (vectorizer, model, thresholds):
            if not Path(path).is_file():
                raise TmdbGenresError(
                    f"model file {str(path)!r} not found",
                    "run `dvc repro` (or `dvc pull`) in the project first",
                )
        artifacts = []
        rebuild = "rerun `dvc repro` with this version of tmdb-genres"
        for path in (vectorizer, model):
            try:
                loaded = load_joblib(path)
            except Exception as exc:  # truncated, corrupt or from another version: all alike
                raise TmdbGenresError(f"cannot read {path}: {type(exc).__name__}: {exc}",
                                      rebuild) from None
            found = loaded.get("format") if isinstance(loaded, dict) else None
            if found != MODEL_FORMAT:
                raise TmdbGenresError(
                    f"{path} has format {found!r}, expected {MODEL_FORMAT}", rebuild)
            artifacts.append(loaded)
        vec, weights = artifacts
        chosen = read_json(thresholds)
        genres = weights["genres"]
        return cls(
            text_fields=tuple(vec["text_fields"]),
            title_repeat=vec["title_repeat"],
            vectorizer=vec["vectorizer"],
            genres=genres,
            coef=weights["coef"],
            intercept=weights["intercept"],
            platt_a=weights["platt_a"],
            platt_b=weights["platt_b"],
            thresholds=np.array([chosen["thresholds"][g] for g in genres]),
            at_least_one=bool(chosen["at_least_one"]),
        )

    def text(self, title: str, overview: str) -> str:
        """The model text for one movie, built exactly as the prepare stage builds it."""
        return movie_text(title, overview, self)

    def score(self, movies: Sequence[Movie]) -> np.ndarray:
        """Calibrated probability of every genre for each movie (rows x genres): the one
        scoring entry point of predict, the service and the published folder."""
        return self.probabilities([self.text(m.title, m.overview) for m in movies],
                                  [m.metadata for m in movies])

    def probabilities(self, texts: list[str],
                      metadata: Sequence[Mapping[str, Any] | None] | None = None) -> np.ndarray:
        """Calibrated probability of every genre for each text (rows x genres).

        ``metadata`` holds one mapping of raw metadata fields per text (see
        :mod:`metadata`; missing or malformed fields count as unknown); without it every
        text's metadata is unknown.
        """
        if not texts:
            return np.zeros((0, len(self.genres)))
        x = self.vectorizer.transform(texts, metadata)
        return calibrated(margins(x, self._coef_t, self.intercept), self.platt_a, self.platt_b)

    def decide(self, probabilities: np.ndarray) -> list[list[str]]:
        """Genre names at or above their thresholds, highest probability first."""
        return ranked_genres(probabilities, self.thresholds, self.at_least_one, self.genres)

    # The single-text path (the HTTP service): same numbers as probabilities(), less overhead.

    @cached_property
    def _coef_t(self) -> np.ndarray:
        """Weights as (features x genres), C-contiguous: a sparse product with ``coef.T``
        would copy the whole matrix into this layout on every call."""
        return np.ascontiguousarray(np.asarray(self.coef).T)

    @cached_property
    def _single(self) -> SingleText:
        return SingleText(self.vectorizer)

    def _margins(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of one feature row, with the sparse product's
        arithmetic: float32 products summed in column order."""
        if len(columns):
            margins = np.add.reduce(values[:, None] * self._coef_t[columns], axis=0,
                                    dtype=np.float32)
        else:
            margins = np.zeros(len(self.genres), dtype=np.float32)
        return calibrated(settle(margins.astype(np.float64) + self.intercept), self.platt_a,
                          self.platt_b)

    def _row(self, text: str, metadata: Mapping[str, Any] | None, sources: bool
             ) -> tuple[np.ndarray, np.ndarray, Sources | None]:
        """One text's feature row (text columns, then the metadata block's)."""
        columns, values, found = self._single.row(text, sources=sources)
        encoder = self.vectorizer.metadata
        if encoder is not None:
            extra = np.array(encoder.columns(metadata), dtype=np.int64)
            columns = np.concatenate([columns, extra + self.vectorizer.n_text_features])
            values = np.concatenate([values, np.full(len(extra), encoder.weight,
                                                     dtype=np.float32)])
        return columns, values, found

    def probabilities_one(self, text: str, metadata: Mapping[str, Any] | None = None
                          ) -> np.ndarray:
        """``probabilities([text], [metadata])[0]``, bit for bit, in a fraction of the time."""
        columns, values, _ = self._row(text, metadata, sources=False)
        return self._margins(columns, values)

    def explain(self, text: str, top: int = 5) -> dict[str, list[tuple[str, float]]]:
        """For every genre, the words of ``text`` that pushed its margin up most.

        A feature adds (term weight x tf-idf value) to a genre's margin; that amount is
        shared among the words it came from (a word bigram's two words, the word holding a
        character n-gram) and summed per word. Returns up to ``top`` (word, amount) pairs
        per genre, largest first, positive amounts only; words are lowercased, and stop
        words (which reach the model through character n-grams only) are left out.
        """
        return self.predict_one(text, top)[1]

    def predict_one(self, text: str, top: int = 5, metadata: Mapping[str, Any] | None = None
                    ) -> tuple[np.ndarray, dict[str, list[tuple[str, float]]]]:
        """``probabilities_one(text, metadata)`` and ``explain(text, top)`` from one feature
        row (explanations name words of the text only)."""
        columns, values, sources = self._row(text, metadata, sources=True)
        assert sources is not None
        probabilities = self._margins(columns, values)
        if not len(sources.entry):
            return probabilities, {genre: [] for genre in self.genres}
        # each occurrence's share of its entry's contributions, summed per word
        order = np.argsort(sources.word, kind="stable")
        words = sources.word[order]
        firsts = np.flatnonzero(np.r_[True, words[1:] != words[:-1]])
        contributions = values[:, None].astype(np.float64) * self._coef_t[columns]
        amounts = np.add.reduceat(contributions[sources.entry[order]]
                                  * sources.share[order, None], firsts, axis=0)
        amounts = np.round(amounts, 6)  # free of summation-order noise
        names = [sources.words[i] for i in words[firsts].tolist()]
        stop = self._single.stop_words
        amounts[[i for i, word in enumerate(names) if word in stop], :] = 0.0
        # largest first; ties in order of first appearance in the text
        rank = np.lexsort((np.broadcast_to(words[firsts][:, None], amounts.shape), -amounts),
                          axis=0)[:top]
        best = np.take_along_axis(amounts, rank, axis=0).T.tolist()
        return probabilities, {
            genre: [(names[i], amount) for i, amount in zip(indices, best[j], strict=True)
                    if amount > 0]
            for j, (genre, indices) in enumerate(zip(self.genres, rank.T.tolist(), strict=True))
        }
