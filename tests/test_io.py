from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tmdb_genres.io import (
    atomic_dir,
    atomic_path,
    dumps_json,
    open_text,
    read_jsonl,
    remove_stale_temps,
    write_jsonl,
)


def test_failed_write_leaves_previous_file_and_no_temp(tmp_path: Path):
    target = tmp_path / "out.json"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half", encoding="utf-8")
        raise RuntimeError("boom")
    assert target.read_text(encoding="utf-8") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_dir_replaces_whole_directory(tmp_path: Path):
    target = tmp_path / "splits"
    target.mkdir()
    (target / "stale.jsonl").write_text("x", encoding="utf-8")
    with atomic_dir(target) as tmp:
        (tmp / "train.jsonl").write_text("y", encoding="utf-8")
    assert sorted(p.name for p in target.iterdir()) == ["train.jsonl"]
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)


def test_atomic_dir_keeps_the_old_directory_until_the_new_one_is_complete(tmp_path: Path):
    target = tmp_path / "features"
    target.mkdir()
    (target / "train.joblib").write_text("old", encoding="utf-8")
    with atomic_dir(target) as tmp:
        (tmp / "train.joblib").write_text("new", encoding="utf-8")
        # mid-write: readers still see the complete old directory
        assert sorted(p.name for p in target.iterdir()) == ["train.joblib"]
        assert (target / "train.joblib").read_text(encoding="utf-8") == "old"
    assert (target / "train.joblib").read_text(encoding="utf-8") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features"]


def test_failed_atomic_dir_leaves_the_old_directory_and_no_temp(tmp_path: Path):
    target = tmp_path / "features"
    target.mkdir()
    (target / "train.joblib").write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "train.joblib").write_text("half", encoding="utf-8")
        (tmp / "nested").mkdir()
        (tmp / "nested" / "x.json").write_text("{}", encoding="utf-8")
        raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features"]
    assert sorted(p.name for p in target.iterdir()) == ["train.joblib"]
    assert (target / "train.joblib").read_text(encoding="utf-8") == "old"
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "fresh") as tmp:
        raise RuntimeError("boom")  # no previous directory: nothing appears at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features"]


_HANGING_WRITER = """
import sys, time
from pathlib import Path
from tmdb_genres.io import atomic_dir, atomic_path
target = Path(sys.argv[1])
with (atomic_dir if sys.argv[2] == "dir" else atomic_path)(target) as tmp:
    if sys.argv[2] == "dir":
        (tmp / "train.joblib").write_text("partial", encoding="utf-8")
    else:
        tmp.write_text("partial", encoding="utf-8")
    print(tmp.name, flush=True)
    time.sleep(120)
"""


def _start_writer(target: Path, kind: str) -> tuple[subprocess.Popen, Path]:
    """A real process stopped in the middle of an atomic write of ``target``."""
    proc = subprocess.Popen([sys.executable, "-c", _HANGING_WRITER, str(target), kind],
                            stdout=subprocess.PIPE, text=True)
    name = proc.stdout.readline().strip()
    assert name.startswith(f".{target.name}.") and name.endswith(".tmp"), name
    return proc, target.parent / name


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_next_write_removes_temps_of_killed_writers_but_not_live_ones(tmp_path: Path, kind):
    target = tmp_path / ("features" if kind == "dir" else "model.joblib")
    killed, stale = _start_writer(target, kind)
    live, busy = _start_writer(target, kind)
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert stale.exists() and not target.exists()  # what `kill -9` leaves behind
        writer = atomic_dir if kind == "dir" else atomic_path
        with writer(target) as tmp:  # the next run of the stage
            if kind == "dir":
                (tmp / "train.joblib").write_text("done", encoding="utf-8")
            else:
                tmp.write_text("done", encoding="utf-8")
        assert not stale.exists(), "the killed writer's temporary was left behind"
        assert busy.exists(), "a live writer's temporary was removed"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, busy.name])
    finally:
        live.kill()
        live.wait()
    assert remove_stale_temps(target) == [busy]  # dead now: the next write removes it too
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_killed_writer_never_leaves_a_partial_output(tmp_path: Path):
    target = tmp_path / "big.jsonl"
    script = textwrap.dedent(
        f"""
        import time
        from tmdb_genres.io import atomic_text
        with atomic_text({str(target)!r}) as handle:
            handle.write("partial\\n")
            handle.flush()
            print("ready", flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists()


def test_canonical_json_and_jsonl_round_trip(tmp_path: Path):
    assert dumps_json({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}\n'
    rows = [{"z": 1, "a": [1, 2]}, {"title": "Amélie"}]
    path = tmp_path / "rows.jsonl"
    assert write_jsonl(path, rows) == 2
    assert path.read_text(encoding="utf-8").splitlines()[0] == '{"a":[1,2],"z":1}'
    assert read_jsonl(path) == rows


def test_open_text_reads_gzip(tmp_path: Path):
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write('{"id": 1}\n')
    with open_text(path) as handle:
        assert handle.read() == '{"id": 1}\n'
