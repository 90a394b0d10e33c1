from __future__ import annotations

import csv
import gzip
import json
import os
import shlex
import shutil
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


# --- one rule for what a movie is (tmdb_genres.movie), and hostile inputs -------------------

NOT_MOVIES = [  # (record as a JSONL line, the start of its "error")
    ('{"title": null, "overview": {"a": 1}}', "overview is an object, not text"),
    ('{"overview": 42}', "overview is a number, not text"),
    ('{"title": 123, "overview": "A ghost."}', "title is a number, not text"),
    ('{"overview": "... !!! ???"}', "the movie has no words in its title or overview"),
    ('{"overview": "....."}', "the movie has no words in its title or overview"),
    ('{"overview": "\\u0000\\u0000"}', "overview has the control character U+0000"),
    ('{"title": "\\ud800", "overview": "a ghost \\udfff story"}',
     "title has a lone surrogate U+D800"),
    ('{"id": 5, "title": "", "overview": " "}', "the movie has an empty title and overview"),
    ('{"id": {"a": 1}, "overview": "A ghost."}', "id is an object"),
    (json.dumps({"overview": "ghost " * 2000}), "overview has 12,000 characters, over the cap"),
]


def test_records_that_are_not_movies_get_an_error_and_the_rest_are_predicted(toy_project: Path):
    lines = [line for line, _ in NOT_MOVIES]
    lines.insert(3, '{"id": 1, "title": "Boo", "overview": "A ghost and a demon scream."}')
    lines.append('{"title": "Ghost demon scream"}')
    (toy_project / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_bytes(["predict", "in.jsonl", "--models", "models"], toy_project)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    out = predictions(result.stdout)
    assert len(out) == len(lines)
    good, title_only = out.pop(3), out.pop()
    assert good["id"] == 1 and good["genres"][0] == "Horror" and "error" not in good
    assert title_only["genres"][0] == "Horror"
    assert title_only["warning"] == "empty overview: predicted from the title alone"
    for (_, fragment), answer in zip(NOT_MOVIES, out, strict=True):
        assert answer["error"].startswith(fragment) and " — " in answer["error"], answer
        assert answer["genres"] == [] and answer["scores"] == {}
        assert not answer["title"]  # never echoes what made it invalid (123, "\ud800")
    assert out[7]["id"] == 5 and out[8]["id"] is None
    stderr = result.stderr.decode()
    assert f"{len(NOT_MOVIES)} records were not movies" in stderr
    assert "1 movie had an empty overview" in stderr


def write_utf(path: Path, codec: str) -> None:
    path.write_bytes("title,overview\nLe Fantôme,A haunted château and a ghost.\n".encode(codec))


@pytest.mark.parametrize("codec", ["utf-16", "utf-32", "utf-16-be"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_recognised(toy_project: Path, codec: str):
    source = toy_project / "wide.csv"
    if codec == "utf-16-be":
        source.write_bytes(b"\xfe\xff" + "title,overview\nLe Fantôme,A haunted château and a "
                           "ghost.\n".encode(codec))
    else:
        write_utf(source, codec)  # Python writes a byte-order mark
    result = run_bytes(["predict", "wide.csv", "--models", "models"], toy_project)
    assert result.returncode == 0, result.stderr
    (record,) = predictions(result.stdout)
    assert record["title"] == "Le Fantôme" and record["genres"][0] == "Horror"
    assert b"cp1252" not in result.stderr


HOSTILE = {  # name: (file bytes, extra arguments, start of the one-line error)
    "not-utf16": (b"id,title,overview\n1,Boo,A ghost.\n", ["--encoding", "utf-16"],
                  "in.csv is not valid utf-16"),
    "mixed": ("title,overview\nAmélie,A prank.\n".encode() + b"Caf\xe9,A ghost.\n", [],
              "in.csv mixes encodings: line 2 is UTF-8, line 3, byte 0xe9"),
    "typo": (b"Title,Overveiw\nJaws,A shark.\n", [],
             "in.csv has no overview column (columns found: 'Title', 'Overveiw')"),
    "empty": (b"", [], "in.csv is empty"),
    "blank": (b"\n \n", [], "in.csv is empty"),
    "binary": (bytes(range(256)) * 8, [], "in.csv is not text (a NUL byte at offset 0)"),
    "binary-latin-1": (bytes(range(256)) * 8, ["--encoding", "latin-1"],
                       "in.csv is not text"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_files_get_one_line_and_exit_2(toy_project: Path, case: str):
    data, extra, message = HOSTILE[case]
    (toy_project / "in.csv").write_bytes(data)
    result = run_bytes(["predict", "in.csv", "-o", "out.jsonl", *extra, "--models", "models"],
                       toy_project)
    lines = result.stderr.decode().strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, lines
    assert message in lines[0] and " — " in lines[0]
    assert not (toy_project / "out.jsonl").exists() and result.stdout == b""


def test_deeply_nested_jsonl_and_empty_stdin_get_one_line(toy_project: Path):
    (toy_project / "deep.jsonl").write_text('{"title": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
                                            encoding="utf-8")
    deep = run(["predict", "deep.jsonl", "--models", "models"], toy_project)
    assert deep.returncode == 2 and deep.stderr.count("\n") == 1
    assert "deep.jsonl:1 is nested too deeply to read" in deep.stderr
    empty = run_bytes(["predict", "-", "--models", "models"], toy_project, stdin=b"")
    assert empty.returncode == 2 and b"standard input is empty" in empty.stderr


def test_output_that_cannot_be_written_gets_one_line(toy_project: Path):
    (toy_project / "in.jsonl").write_text('{"overview": "A ghost."}\n', encoding="utf-8")
    result = run(["predict", "in.jsonl", "-o", "in.jsonl/out.jsonl", "--models", "models"],
                 toy_project)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "cannot write 'in.jsonl/out.jsonl'" in result.stderr


def bound_by_permissions() -> list[str]:
    """A command prefix under which file permissions apply: none for a user; for root (as on
    CI), ``setpriv`` without the capabilities that let root read and write anything."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("root ignores file permissions and setpriv (util-linux) is not installed")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def test_permissions_get_one_line(toy_project: Path):
    source = toy_project / "secret.jsonl"
    source.write_text('{"overview": "A ghost."}\n', encoding="utf-8")
    source.chmod(0)
    prefix = bound_by_permissions()

    def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([*prefix, sys.executable, "-m", "tmdb_genres", *args], cwd=cwd,
                              capture_output=True, text=True)

    unreadable = run(["predict", "secret.jsonl", "--models", "models"], toy_project)
    assert unreadable.returncode == 2 and unreadable.stderr.count("\n") == 1
    assert "cannot read 'secret.jsonl': Permission denied" in unreadable.stderr
    source.chmod(0o644)
    (toy_project / "ro").mkdir(mode=0o555)
    blocked = run(["predict", "secret.jsonl", "-o", "ro/out.jsonl", "--models", "models"],
                  toy_project)
    assert blocked.returncode == 2 and blocked.stderr.count("\n") == 1
    assert "cannot write 'ro/out.jsonl': Permission denied" in blocked.stderr


def test_plain_text_is_one_overview_a_line(toy_project: Path):
    text = b"A ghost and a demon scream.\n\nAn alien robot lands on a planet.\n"
    piped = run_bytes(["predict", "-", "--models", "models"], toy_project, stdin=text)
    assert piped.returncode == 0, piped.stderr
    ghost, alien = predictions(piped.stdout)
    assert ghost["genres"][0] == "Horror" and alien["genres"][0] == "Science Fiction"
    assert ghost["title"] is None and "warning" not in ghost
    assert b"read as one overview a line" in piped.stderr
    (toy_project / "overviews.txt").write_bytes(text)
    from_file = run_bytes(["predict", "overviews.txt", "--models", "models"], toy_project)
    assert from_file.returncode == 0 and from_file.stdout == piped.stdout


def test_a_title_alone_is_predicted_with_a_warning(toy_project: Path, capsys):
    assert main(["predict", "--title", "Ghost demon scream", "--models",
                 str(toy_project / "models")]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["genres"][0] == "Horror" and answer["title"] == "Ghost demon scream"
    assert answer["warning"] == "empty overview: predicted from the title alone"


@pytest.mark.parametrize(("args", "message"), [
    (["--text", "... !!!"], "no words in its title or overview"),
    (["--text", "a \x01 ghost"], "control character U+0001"),
    (["--text", "x", "in.jsonl"], "give either an INPUT file or --text"),
    (["--text", "x", "-o", "out.jsonl"], "-o goes with an INPUT file"),
])
def test_text_errors_are_one_line(toy_project: Path, args, message):
    result = run(["predict", *args, "--models", "models"], toy_project)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_text_is_a_ranked_table_on_a_terminal_and_json_in_a_pipe(toy_project: Path):
    import pty

    args = [sys.executable, "-m", "tmdb_genres", "predict", "--title", "Nightmare", "--text",
            "A haunted house, a ghost, a demon and blood.", "--models", "models"]
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, cwd=toy_project, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process has exited
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    table = b"".join(chunks).decode().replace("\r\n", "\n").splitlines()
    piped = json.loads(subprocess.run(args, cwd=toy_project, capture_output=True, text=True,
                                      check=True).stdout)
    assert table[0] == f"Nightmare: {', '.join(piped['genres'])}"
    rows = [line for line in table if line[:1] in "* " and line[2:3].isalpha()
            and not line.startswith("  genre")]
    assert len(rows) == len(piped["scores"])
    probabilities = [float(row.split()[-2]) for row in rows]
    assert probabilities == sorted(probabilities, reverse=True)
    assert rows[0].startswith("* Horror")
    assert {row[2:].split("  ")[0] for row in rows if row.startswith("*")} == set(piped["genres"])
