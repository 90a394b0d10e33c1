from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tmdb_genres.cli import main


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tmdb_genres", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_predict_jsonl_passes_ids_and_ranks(toy_project: Path):
    source = toy_project / "in.jsonl"
    source.write_text(
        json.dumps({"id": 7, "title": "Boo", "overview": "A ghost and a demon scream."}) + "\n"
        + json.dumps({"title": "Pew", "overview": "Alien robot on a planet."}) + "\n",
        encoding="utf-8",
    )
    out = toy_project / "out.jsonl"
    assert main(["predict", str(source), "-o", str(out), "--models",
                 str(toy_project / "models")]) == 0
    first, second = (json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
    assert first["id"] == 7 and first["title"] == "Boo" and "id" not in second
    assert first["genres"][0] == "Horror" and second["genres"][0] == "Science Fiction"
    assert len(first["scores"]) == 19
    assert all(first["scores"][g] >= first["scores"][h]
               for g, h in zip(first["genres"], first["genres"][1:], strict=False))


@pytest.mark.parametrize("delimiter", [",", ";"])
def test_predict_csv_with_sniffed_delimiter(toy_project: Path, delimiter: str):
    source = toy_project / "in.csv.gz"
    with gzip.open(source, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["id", "Title", "Overview"])
        writer.writerow(["a1", "Laughs", "A wacky prank, hilarious jokes; laugh out loud"])
    result = run(["predict", str(source), "--models", str(toy_project / "models")], toy_project)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["id"] == "a1" and record["genres"][0] == "Comedy"


def test_rows_without_text_are_flagged_not_guessed(toy_project: Path):
    source = toy_project / "in.jsonl"
    source.write_text('{"id": 1, "title": "", "overview": "  "}\n'
                      '{"id": 2, "title": "Boo", "overview": "A ghost."}\n', encoding="utf-8")
    out = toy_project / "out.jsonl"
    assert main(["predict", str(source), "-o", str(out), "--models",
                 str(toy_project / "models")]) == 0
    empty, ok = (json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
    assert empty["genres"] == [] and empty["scores"] == {} and "empty" in empty["error"]
    assert ok["genres"] and "error" not in ok


def test_predict_text(toy_project: Path, capsys):
    assert main(["predict", "--text", "An alien spaceship", "--models",
                 str(toy_project / "models")]) == 0
    assert json.loads(capsys.readouterr().out)["genres"][0] == "Science Fiction"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict"], "give either an INPUT file or --text"),
        (["predict", "--text", "  "], "--text is empty"),
        (["predict", "missing.jsonl"], "input 'missing.jsonl' not found"),
        (["predict", "bad.jsonl"], "bad.jsonl:2 is not valid JSON"),
        (["predict", "x.txt"], "cannot tell the format"),
    ],
)
def test_predict_errors_are_one_line(toy_project: Path, args, message):
    (toy_project / "bad.jsonl").write_text('{"title": "ok"}\n{oops\n', encoding="utf-8")
    (toy_project / "x.txt").write_text("hi", encoding="utf-8")
    result = run([*args, "--models", str(toy_project / "models")], toy_project)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_predict_without_a_model_says_to_run_dvc_repro(tmp_path: Path):
    result = run(["predict", "--text", "hello", "--models", str(tmp_path)], tmp_path)
    assert result.returncode == 2
    assert "run `dvc repro`" in result.stderr
