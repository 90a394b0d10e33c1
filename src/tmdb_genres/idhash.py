"""The seeded id hash behind every "stable by id" choice: a movie's split (prepare), its fold
(crossval), whether training hides its metadata (metadata) and whether the emulator hides it.

The hash of a key such as ``"salt:id"`` is the first 8 bytes of its SHA-256, big-endian: an
integer uniform in [0, 2**64) that depends on the key alone (never on the row order, the
process or the platform).
"""

from __future__ import annotations

import hashlib


def id_hash(key: str) -> int:
    """The first 8 bytes of the SHA-256 of ``key`` (UTF-8), big-endian: uniform in [0, 2**64)."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")


def unit_hash(key: str) -> float:
    """:func:`id_hash` of ``key`` as a uniform number in [0, 1) (``id_hash / 2**64``,
    correctly rounded)."""
    return id_hash(key) / 2**64
