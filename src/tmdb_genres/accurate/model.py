"""The accurate model used by ``predict --model accurate``: the SVM and the embedding head.

Same public interface as :class:`tmdb_genres.model.GenreModel` (``genres``, ``thresholds``,
``text(title, overview)``, ``probabilities(texts)``, ``decide(probabilities)``), so anything
that serves the fast model can serve this one. Its files are plain JSON: ``head.json`` (weights,
calibration and the embedding package + version it needs), ``ensemble.json`` (the SVM's weight
per genre) and ``thresholds.json`` (from the accurate evaluate stage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import paths
from ..errors import TmdbGenresError
from ..io import read_json
from ..model import GenreModel, ranked_genres
from ..movie import Movie
from . import embeddings
from .embeddings import EXTRA_REMEDY, load_encoder, round_vectors
from .head import head_probabilities, load_head

ACCURATE_DIR = Path("accurate/models")


@dataclass
class AccurateModel:
    """The fast model's calibrated SVM, an embedding head and the weights that mix them."""

    svm: GenreModel
    head: dict[str, Any]
    svm_weight: np.ndarray
    thresholds: np.ndarray
    at_least_one: bool
    encoder: Callable[[Sequence[str]], np.ndarray]

    kind: ClassVar[str] = "accurate"  # what the service and the published folder call it
    words_from: ClassVar[str] = "svm"  # the contributing words are the SVM part's

    @property
    def genres(self) -> list[str]:
        """Genre names, the column order of every probability matrix."""
        return self.svm.genres

    @classmethod
    def load(cls, models: Path = paths.MODELS_DIR, accurate: Path = ACCURATE_DIR,
             encoder: Callable[[Sequence[str]], np.ndarray] | None = None,
             check_engine: bool = True) -> AccurateModel:
        """Load the fast model from ``models`` and the head, weights and thresholds from
        ``accurate``; the embedding package must be the version the head was trained with
        (``check_engine=False`` skips that, for writing the files elsewhere without the
        extra: such a model cannot embed unless ``encoder`` is given)."""
        svm = GenreModel.load(models / paths.VECTORIZER.name, models / paths.MODEL.name,
                              models / paths.THRESHOLDS.name)
        head = load_head(accurate / "head.json")
        for name in ("ensemble.json", "thresholds.json"):
            if not (accurate / name).is_file():
                raise TmdbGenresError(f"model file {str(accurate / name)!r} not found",
                                      "run `dvc repro` in accurate/ (see docs/accurate.md)")
        mix = read_json(accurate / "ensemble.json")
        chosen = read_json(accurate / "thresholds.json")
        if check_engine:
            require_engine(head["embedding"])
        if head["genres"] != svm.genres:
            raise TmdbGenresError("the head and the SVM have different genres",
                                  "run `dvc repro` in the project root, then in accurate/")
        return cls(
            svm=svm, head=head,
            svm_weight=np.array([mix["svm_weight"][g] for g in svm.genres]),
            thresholds=np.array([chosen["thresholds"][g] for g in svm.genres]),
            at_least_one=bool(chosen["at_least_one"]),
            encoder=encoder or (load_encoder(head["embedding"]["engine"]) if check_engine
                                else _no_encoder),
        )

    def text(self, title: str, overview: str) -> str:
        """The model text for one movie, built exactly as the prepare stage builds it."""
        return self.svm.text(title, overview)

    def score(self, movies: Sequence[Movie]) -> np.ndarray:
        """Calibrated ensemble probability of every genre for each movie (rows x genres)."""
        return self.probabilities([self.text(m.title, m.overview) for m in movies],
                                  [m.metadata for m in movies])

    def probabilities(self, texts: list[str],
                      metadata: Sequence[Mapping[str, Any] | None] | None = None) -> np.ndarray:
        """Calibrated ensemble probability of every genre for each text (rows x genres);
        ``metadata`` (one mapping of raw fields per text) reaches the SVM part and the head."""
        from .ensemble import combine

        if not texts:
            return np.zeros((0, len(self.genres)))
        p_head = head_probabilities(self.head, round_vectors(self.encoder(texts)), metadata)
        return combine(self.svm.probabilities(texts, metadata), p_head, self.svm_weight)

    def probabilities_one(self, text: str, metadata: Mapping[str, Any] | None = None
                          ) -> np.ndarray:
        """``probabilities([text], [metadata])[0]`` (the service's single-text path)."""
        return self.probabilities([text], [metadata])[0]

    def predict_one(self, text: str, top: int = 5, metadata: Mapping[str, Any] | None = None
                    ) -> tuple[np.ndarray, dict[str, list[tuple[str, float]]]]:
        """The ensemble's probabilities of ``text`` and, per genre, the words that pushed
        the SVM part's margin up most (the embeddings have no words to show)."""
        return self.probabilities_one(text, metadata), self.svm.predict_one(text, top)[1]

    def decide(self, probabilities: np.ndarray) -> list[list[str]]:
        """Genre names at or above their thresholds, highest probability first."""
        return ranked_genres(probabilities, self.thresholds, self.at_least_one, self.genres)


def require_engine(needed: dict[str, Any]) -> None:
    """One-line error unless the embedding package and version ``needed`` are installed."""
    found = embeddings.package_version(needed["package"])
    if found != needed["version"]:
        raise TmdbGenresError(
            f"the head needs {needed['package']}=={needed['version']}, found {found}",
            EXTRA_REMEDY)


def _no_encoder(texts: Sequence[str]) -> np.ndarray:
    raise TmdbGenresError("this accurate model was loaded without its embedding engine",
                          "load it with check_engine=True (needs the embeddings extra)")


def load_model(kind: str, models: Path = paths.MODELS_DIR,
               accurate: Path = ACCURATE_DIR) -> GenreModel | AccurateModel:
    """The ``fast`` (default) or ``accurate`` model: one loader for predict and services."""
    if kind == "fast":
        return GenreModel.load(models / paths.VECTORIZER.name, models / paths.MODEL.name,
                               models / paths.THRESHOLDS.name)
    if kind == "accurate":
        return AccurateModel.load(models, accurate)
    raise TmdbGenresError(f"unknown model {kind!r}", "use --model fast or --model accurate")
