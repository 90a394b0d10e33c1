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
    scratch_dir,
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


_SIGNALLED_DIR = """
import sys, time
from pathlib import Path
from tmdb_genres import io
io.remove_temps_on_signals()
with getattr(io, sys.argv[2])(Path(sys.argv[1])) as tmp:
    (tmp / "part").write_text("partial", encoding="utf-8")
    try:
        print(tmp.name, flush=True)
        time.sleep(60)
    except KeyboardInterrupt:  # what the signal handler itself did, before any finally
        print("kept" if tmp.exists() else "removed", flush=True)
        raise
"""


@pytest.mark.parametrize("kind", ["scratch_dir", "atomic_dir"])
def test_a_sigtermed_process_removes_its_temporary_directory(tmp_path: Path, kind: str):
    """The SIGTERM handler removes a scratch_dir's folder as it does an atomic_dir's (before:
    a scratch folder was not registered, so only unwinding the stack removed it; a process
    killed for good while it unwinds, or stuck, kept it)."""
    target = tmp_path / "model.joblib"
    proc = subprocess.Popen([sys.executable, "-c", _SIGNALLED_DIR, str(target), kind],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    name = proc.stdout.readline().strip()
    assert name.startswith(f".{target.name}.{proc.pid}.") and name.endswith(".tmp"), name
    assert (tmp_path / name / "part").is_file()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) != 0 and "Interrupted" in proc.stderr.read()
    assert proc.stdout.read().strip() == "removed"
    assert list(tmp_path.iterdir()) == []


def test_the_next_user_removes_the_scratch_dir_of_a_killed_one(tmp_path: Path):
    """What a `kill -9`'d train leaves beside the model goes at the next scratch_dir of it
    (a live process's stays)."""
    target = tmp_path / "model.joblib"
    script = _SIGNALLED_DIR.replace("io.remove_temps_on_signals()", "")
    killed, live = (subprocess.Popen([sys.executable, "-c", script, str(target), "scratch_dir"],
                                     stdout=subprocess.PIPE, text=True) for _ in range(2))
    try:
        stale, busy = (tmp_path / p.stdout.readline().strip() for p in (killed, live))
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert (stale / "part").is_file()  # what `kill -9` leaves behind
        with scratch_dir(target) as tmp:  # the next train
            assert tmp.parent == tmp_path and tmp.name.startswith(f".{target.name}.")
            assert not stale.exists(), "the killed process's scratch folder was left behind"
            assert sorted(tmp_path.iterdir()) == sorted([busy, tmp])
        assert list(tmp_path.iterdir()) == [busy]
    finally:
        live.kill()
        live.wait()


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
