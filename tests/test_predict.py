from __future__ import annotations

import csv
import gzip
import json
import shlex
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
        (["predict", "x.dat"], "cannot tell the format"),
    ],
)
def test_predict_errors_are_one_line(toy_project: Path, args, message):
    (toy_project / "bad.jsonl").write_text('{"title": "ok"}\n{oops\n', encoding="utf-8")
    (toy_project / "x.dat").write_text("hi", encoding="utf-8")
    result = run([*args, "--models", str(toy_project / "models")], toy_project)
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_predict_without_a_model_says_to_run_dvc_repro(tmp_path: Path):
    result = run(["predict", "--text", "hello", "--models", str(tmp_path)], tmp_path)
    assert result.returncode == 2
    assert "run `dvc repro`" in result.stderr


# --- real-world input files: encodings, byte-order marks, stdin/stdout, tsv, ids, warnings ---

def run_bytes(args: list[str], cwd: Path,
              stdin: bytes | None = None) -> subprocess.CompletedProcess:
    """Run the CLI with raw bytes on stdin; stdout and stderr come back as bytes."""
    return subprocess.run([sys.executable, "-m", "tmdb_genres", *args], cwd=cwd, input=stdin,
                          capture_output=True)


def predictions(stdout: bytes) -> list[dict]:
    """Every stdout line parsed as JSON (fails on anything that is not a JSONL result)."""
    return [json.loads(line) for line in stdout.decode("utf-8").splitlines()]


ACCENTED_CSV = ("id;title;overview\n"
                "1;Amélie à Montmartre;Hilarious prank, wacky jokes: laugh at the café.\n"
                "2;Le Fantôme;A haunted château, a ghost and a demon scream — blood.\n")


def test_cp1252_csv_is_read_with_a_one_line_notice(toy_project: Path):
    source = toy_project / "latin.csv"
    source.write_bytes(ACCENTED_CSV.encode("cp1252"))
    result = run_bytes(["predict", str(source), "--models", "models"], toy_project)
    assert result.returncode == 0, result.stderr
    first, second = predictions(result.stdout)
    assert first["title"] == "Amélie à Montmartre" and second["title"] == "Le Fantôme"
    assert first["genres"][0] == "Comedy" and second["genres"][0] == "Horror"
    notices = [line for line in result.stderr.decode().splitlines() if "cp1252" in line]
    assert len(notices) == 1 and "--encoding" in notices[0] and "line 2" in notices[0]


def test_explicit_encoding_reads_and_a_wrong_one_fails_in_one_line(toy_project: Path):
    source = toy_project / "latin.csv"
    source.write_bytes(ACCENTED_CSV.encode("cp1252"))
    ok = run_bytes(["predict", str(source), "--encoding", "cp1252", "--models", "models"],
                   toy_project)
    assert ok.returncode == 0 and "cp1252" not in ok.stderr.decode()
    assert predictions(ok.stdout)[0]["title"] == "Amélie à Montmartre"
    wrong = run_bytes(["predict", str(source), "--encoding", "utf-8", "--models", "models"],
                      toy_project)
    assert wrong.returncode == 2 and wrong.stdout == b""
    message = wrong.stderr.decode().strip()
    assert len(message.splitlines()) == 1 and "not valid utf-8" in message
    assert "--encoding" in message and "line 2" in message


@pytest.mark.parametrize(("args", "message"), [
    ([], "neither UTF-8 nor cp1252"),  # 0x81 is undefined in cp1252
    (["--encoding", "klingon"], "unknown encoding 'klingon'"),
])
def test_undecodable_input_fails_in_one_line_naming_the_option(toy_project: Path, args,
                                                               message):
    source = toy_project / "odd.jsonl"
    source.write_bytes(b'{"title": "Caf\x81", "overview": "A ghost."}\n')
    out = toy_project / "out.jsonl"
    result = run_bytes(["predict", str(source), "-o", str(out), *args, "--models", "models"],
                       toy_project)
    assert result.returncode == 2 and not out.exists()
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--encoding" in lines[0], lines
    latin = run_bytes(["predict", str(source), "--encoding", "latin-1", "--models", "models"],
                      toy_project)
    assert latin.returncode == 0 and predictions(latin.stdout)[0]["title"] == "Caf\x81"


@pytest.mark.parametrize(("name", "content"), [
    ("excel.csv", "id,title,overview\r\n5,Boo,A ghost and a demon scream.\r\n"
                  "6,Pew,Alien robot on a planet.\r\n"),
    ("excel.jsonl", '{"id": 5, "title": "Boo", "overview": "A ghost and a demon scream."}\n'),
])
def test_a_byte_order_mark_reads_like_the_same_file_without_it(toy_project: Path, name,
                                                              content):
    plain, marked = toy_project / name, toy_project / f"bom-{name}"
    plain.write_bytes(content.encode("utf-8"))
    marked.write_bytes(b"\xef\xbb\xbf" + content.encode("utf-8"))
    results = [run_bytes(["predict", str(p), "--models", "models"], toy_project)
               for p in (plain, marked)]
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert results[0].stdout == results[1].stdout
    assert predictions(results[1].stdout)[0]["id"] == 5


@pytest.mark.parametrize("kind", ["jsonl", "csv", "jsonl.gz"])
def test_dash_reads_stdin_and_only_results_go_to_stdout(toy_project: Path, kind: str):
    rows = [{"id": i, "title": f"Boo {i}", "overview": "A ghost and a demon scream."}
            for i in range(1, 4)]
    if kind == "csv":
        data = ("id,title,overview\n"
                + "".join(f"{r['id']},{r['title']},{r['overview']}\n" for r in rows)).encode()
    else:
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        if kind.endswith(".gz"):
            data = gzip.compress(data)
    result = run_bytes(["predict", "-", "--models", "models"], toy_project, stdin=data)
    assert result.returncode == 0, result.stderr
    out = predictions(result.stdout)
    assert [r["id"] for r in out] == [1, 2, 3] and out[0]["genres"][0] == "Horror"
    assert "predict: 3 movies -> standard output" in result.stderr.decode()


def test_shell_pipe_from_cat_to_a_file(toy_project: Path):
    (toy_project / "in.jsonl").write_text(
        '{"id": 1, "title": "Pew", "overview": "Alien robot on a planet."}\n', encoding="utf-8")
    command = (f"cat in.jsonl | {shlex.quote(sys.executable)} -m tmdb_genres predict - "
               "--models models > out.jsonl")
    result = subprocess.run(command, shell=True, cwd=toy_project, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr
    (record,) = predictions((toy_project / "out.jsonl").read_bytes())
    assert record["id"] == 1 and record["genres"][0] == "Science Fiction"


def test_a_directory_gets_its_own_error(toy_project: Path):
    (toy_project / "inputs.csv").mkdir()
    result = run(["predict", "inputs.csv", "--models", "models"], toy_project)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is a directory" in lines[0] and "not found" not in lines[0]


@pytest.mark.parametrize("name", ["in.tsv", "in.tsv.gz"])
def test_tsv_is_read_as_in_fetch(toy_project: Path, name: str):
    text = "id\ttitle\toverview\n9\tBoo, again\tA ghost, a demon; a scream.\n"
    source = toy_project / name
    source.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    result = run(["predict", name, "--models", "models"], toy_project)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["id"] == 9 and record["title"] == "Boo, again"
    assert record["genres"][0] == "Horror"


@pytest.mark.parametrize(("ids", "expected"), [
    (["1", "22", "-3"], [1, 22, -3]),
    (["1", "", "3"], [1, None, 3]),
    (["1", "a2", "3"], ["1", "a2", "3"]),
    (["1", "007", "3"], ["1", "007", "3"]),  # leading zeros: an integer would lose them
    (["1", "2.0", "3"], ["1", "2.0", "3"]),
])
def test_csv_ids_keep_their_type_when_unambiguous(toy_project: Path, ids, expected):
    source = toy_project / "ids.csv"
    source.write_text("id,title,overview\n"
                      + "".join(f"{i},Pew,Alien robot on a planet.\n" for i in ids),
                      encoding="utf-8")
    result = run(["predict", "ids.csv", "--models", "models"], toy_project)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == expected


def test_empty_overview_is_predicted_from_the_title_and_marked(toy_project: Path):
    source = toy_project / "in.jsonl"
    source.write_text('{"id": 1, "title": "Ghost demon scream", "overview": ""}\n'
                      '{"id": 2, "title": "Pew", "overview": "Alien robot on a planet."}\n'
                      '{"id": 3, "title": "Haunted blood", "overview": "   "}\n',
                      encoding="utf-8")
    result = run(["predict", "in.jsonl", "--models", "models"], toy_project)
    assert result.returncode == 0, result.stderr
    first, second, third = (json.loads(line) for line in result.stdout.splitlines())
    for marked in (first, third):
        assert marked["genres"][0] == "Horror" and len(marked["scores"]) == 19
        assert marked["warning"] == "empty overview: predicted from the title alone"
    assert "warning" not in second
    assert "2 movies had an empty overview" in result.stderr


def test_a_reader_that_stops_early_is_not_an_error(toy_project: Path):
    rows = "".join(json.dumps({"id": i, "title": f"Pew {i}", "overview": "Alien robot."}) + "\n"
                   for i in range(3000))  # far more output than a pipe buffer holds
    (toy_project / "in.jsonl").write_text(rows, encoding="utf-8")
    command = (f"set -o pipefail; {shlex.quote(sys.executable)} -m tmdb_genres predict "
               "in.jsonl --models models | head -1")
    result = subprocess.run(["bash", "-c", command], cwd=toy_project, capture_output=True,
                            text=True)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert json.loads(result.stdout)["id"] == 0
