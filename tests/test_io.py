from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tmdb_genres.io import atomic_dir, atomic_path, dumps_json, open_text, read_jsonl, write_jsonl


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
