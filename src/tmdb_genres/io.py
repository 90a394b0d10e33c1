"""Deterministic, atomic file I/O shared by every stage.

Outputs are written to a temporary file beside their final path and renamed into place only
when complete, so a killed stage never leaves a half-written output behind. A SIGTERM or
SIGINT removes the temporaries being written at once (:func:`remove_temps_on_signals`); those
of a ``kill -9``'d writer are removed by the next writer of the same output. JSON is written
with sorted keys and a trailing newline so that equal content always hashes equally.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

_LIVE_TEMPS: set[Path] = set()  # this process's temporaries being written


class Interrupted(KeyboardInterrupt):
    """A SIGTERM or SIGINT, after this process's temporaries were removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_temps_on_signals() -> dict[int, Any]:
    """On SIGTERM or SIGINT, remove every temporary this process is writing, then raise
    :class:`Interrupted` (a ``KeyboardInterrupt``), so nothing half-written stays behind.

    Returns the handlers it replaced (to put back with ``signal.signal``). Python runs
    signal handlers in the main thread only: called from another thread, it changes nothing.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def handle(signum: int, frame: Any) -> None:
        for path in list(_LIVE_TEMPS):
            _remove(path)
        raise Interrupted(signum)

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}


def _chmod_default(path: Path, directory: bool = False) -> None:
    """Give a temporary file the permissions a plain ``open()`` would have (mkstemp uses 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, (0o777 if directory else 0o666) & ~umask)


def _temp_prefix(target: Path) -> str:
    """Prefix of a temporary sibling of ``target``; it names the writing process's id."""
    return f".{target.name}.{os.getpid()}."


def _process_is_alive(pid: int) -> bool:
    """Whether a process with this id exists (one owned by another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(target: Path) -> list[Path]:
    """Remove temporary siblings of ``target`` left by writers that died (e.g. ``kill -9``).

    A temporary file or directory is named ``.<name>.<pid>.<random>.tmp``; it is stale when
    no process ``<pid>`` exists any more. A live writer's temporary, including one of this
    process, is never touched. Returns what was removed.
    """
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.\w+\.tmp")
    removed = []
    try:
        siblings = list(target.parent.iterdir())
    except FileNotFoundError:
        return removed
    for sibling in sorted(siblings):
        match = pattern.fullmatch(sibling.name)
        if not match or int(match.group(1)) == os.getpid():
            continue
        if _process_is_alive(int(match.group(1))):
            continue
        _remove(sibling)
        removed.append(sibling)
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    _LIVE_TEMPS.add(tmp)
    try:
        yield tmp
        _chmod_default(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        _LIVE_TEMPS.discard(tmp)


@contextmanager
def scratch_dir(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary work directory beside ``target``, removed when the block ends or on
    SIGTERM/SIGINT (:func:`remove_temps_on_signals`); one left by a writer that died (e.g.
    ``kill -9``) is removed by the next writer of ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(target)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    _LIVE_TEMPS.add(tmp)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        _LIVE_TEMPS.discard(tmp)


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory; it replaces ``path`` as a whole only if the block succeeds."""
    target = Path(path)
    with scratch_dir(target) as tmp:
        yield tmp
        _chmod_default(tmp, directory=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)


@contextmanager
def atomic_text(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Open a text file for writing that appears at ``path`` only once fully written."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
        yield handle


def dumps_json(obj: Any) -> str:
    """Serialise ``obj`` canonically: sorted keys, two-space indent, trailing newline."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write ``obj`` as canonical JSON."""
    with atomic_text(path) as handle:
        handle.write(dumps_json(obj))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def jsonl_line(obj: Any) -> str:
    """One canonical JSONL line (sorted keys, compact, UTF-8) including its newline."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> int:
    """Atomically write ``rows`` as canonical JSONL; return how many were written."""
    count = 0
    with atomic_text(path) as handle:
        for row in rows:
            handle.write(jsonl_line(row))
            count += 1
    return count


def open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text file for reading, transparently decompressing ``.gz``."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The rows of a JSONL(.gz) file one at a time, blank lines skipped. The file is opened
    when the first row is asked for; a line that is not JSON raises ``json.JSONDecodeError``
    (a ``ValueError``), which a reader of a file not written by this project catches."""
    with open_text(path) as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file written by this project (every line is trusted to be valid)."""
    return list(iter_jsonl(path))


def dump_joblib(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically pickle ``obj`` with joblib (uncompressed, so the bytes are deterministic)."""
    import joblib

    with atomic_path(path) as tmp:
        joblib.dump(obj, tmp)


def load_joblib(path: str | os.PathLike[str]) -> Any:
    """Load an object written by :func:`dump_joblib`."""
    import joblib

    return joblib.load(path)
