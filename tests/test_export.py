from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tmdb_genres.fetch import fetch
from tmdb_genres.io import read_json, read_jsonl
from tmdb_genres.params import FetchParams
from tmdb_genres.sources.export import (
    ExportError,
    RowReject,
    detect_delimiter,
    parse_date,
    parse_genres,
    parse_number,
)

from .conftest import SHARED_DATA

HEADER = "Release_Date;Title;Overview;Popularity;Vote_Count;Vote_Average;Original_Language;" \
         "Genre;Poster_Url;;;"
ROWS = [
    "15/12/2021;Spider-Man;Peter is unmasked.;5.083.954;8940;8.3;en;Action, Adventure;u;;;",
    "1/3/2022;The Batman;Batman year two.;3.827,5;1151;8.1;EN;Crime, Mystery;u;;;",
    "4/2/2022;Sex, Shame and Tears 2;Twenty years have passed;;;;;;;;;",
    ";;A shifted overview;x;y;z;en;Drama;u;;;",
    "31/02/2020;Bad Date;o;1.5;3;5.0;en;Drama;u;;;",
    "1/1/2020;Odd Genre;o;1.5;3;5.0;en;Drama, Telenovela;u;;;",
    " the rest of a broken overview;t;12.3;5;6.0;ja;Animation;u;;spill;;",
    "2/2/2020;Too Few;o;1.5",
    "15/12/2021;Spider-Man;Peter is unmasked.;5.083.954;8940;8.3;en;Action, Adventure;u;;;",
]


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("5.083.954", float, 5083.954), ("13.375", float, 13.375), ("1,234.5", float, 1234.5),
    ("1.234,5", float, 1234.5), ("8,3", float, 8.3), ("1,234", float, 1234.0),
    ("12 345", int, 12345), ("1.151", int, 1151), ("8940", int, 8940),
])
def test_numbers_with_thousands_separators(text, kind, value):
    assert parse_number(text, kind) == value


@pytest.mark.parametrize("text", ["", "x", "1.2.3a", "-"])
def test_bad_numbers(text):
    with pytest.raises(ValueError):
        parse_number(text, float)


def test_day_first_dates_and_genres():
    assert parse_date("1/3/2022") == "2022-03-01"
    assert parse_date("25.12.1999") == "1999-12-25"
    assert parse_date("2001-09-11") == "2001-09-11"
    with pytest.raises(ValueError):
        parse_date("31/02/2020")
    assert parse_genres("Science Fiction, Action") == [28, 878]
    assert parse_genres("[{'id': 18, 'name': 'Drama'}]") == [18]
    assert parse_genres("35|10770") == [35, 10770]
    with pytest.raises(RowReject):
        parse_genres("Telenovela")


def test_delimiter_detection():
    assert detect_delimiter(HEADER) == ";"
    assert detect_delimiter("id,title,overview") == ","
    assert detect_delimiter("id\ttitle\toverview") == "\t"
    with pytest.raises(ExportError):
        detect_delimiter("nothing here")


def import_csv(tmp_path: Path, source: Path):
    report = fetch(FetchParams(source=str(source)), tmp_path / "raw/movies.jsonl",
                   tmp_path / "metrics/fetch.json")
    return (report, read_jsonl(tmp_path / "raw/movies.jsonl"),
            read_jsonl(tmp_path / "raw/rejects.jsonl"))


def test_messy_export_imports_with_rejects_by_kind(tmp_path):
    source = tmp_path / "export.csv.gz"
    with gzip.open(source, "wt", encoding="utf-8") as handle:
        handle.write("\n".join([HEADER, *ROWS]) + "\n")
    report, movies, rejects = import_csv(tmp_path, source)
    assert report.rejected == {"truncated_row": 1, "missing_title": 1, "bad_release_date": 1,
                               "unknown_genre": 1, "shifted_fields": 1,
                               "wrong_field_count": 1}
    assert report.duplicates == 1 and report.movies == 2 and report.rows_read == 9
    spider = next(m for m in movies if m["title"] == "Spider-Man")
    assert spider["popularity"] == 5083.954 and spider["release_date"] == "2021-12-15"
    assert spider["genre_ids"] == [12, 28] and spider["vote_count"] == 8940
    batman = next(m for m in movies if m["title"] == "The Batman")
    assert batman["original_language"] == "en" and batman["release_date"] == "2022-03-01"
    assert sorted(r["reason"] for r in rejects) == sorted(report.rejected)
    assert {r["line"] for r in rejects if r["reason"] == "bad_release_date"} == {6}
    assert read_json(tmp_path / "metrics/fetch.json")["rejected_total"] == 6


def test_export_without_a_required_column_is_one_line(tmp_path):
    source = tmp_path / "export.csv"
    source.write_text("title,overview\nA,B\n", encoding="utf-8")
    with pytest.raises(ExportError) as error:
        import_csv(tmp_path, source)
    assert "no genres column" in str(error.value) and "\n" not in str(error.value)


def test_mymoviedb_export_imports_with_a_rejects_report(tmp_path):
    source = SHARED_DATA / "mymoviedb.csv.gz"
    if not source.is_file():
        pytest.skip(f"real TMDB export not found at {source} (../shared/data beside the "
                    "checkout); CI always has it")
    report, movies, rejects = import_csv(tmp_path, source)
    assert report.rejected == {"truncated_row": 193, "missing_title": 9,
                               "bad_release_date": 8, "shifted_fields": 3}
    assert len(rejects) == 213 and report.movies == len(movies) > 9500
    spider = next(m for m in movies if m["title"] == "Spider-Man: No Way Home")
    assert spider["popularity"] == 5083.954 and spider["genre_ids"] == [12, 28, 878]
    manifest = read_json(tmp_path / "metrics/fetch_manifest.json")
    assert manifest["delimiter"] == ";" and manifest["synthetic_ids"] is True
