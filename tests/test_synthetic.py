"""The synthetic catalogue: reproducible bytes, real shapes, a vocabulary that grows with N."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tmdb_genres.errors import TmdbGenresError
from tmdb_genres.fetch import check_movie
from tmdb_genres.io import write_jsonl
from tmdb_genres.sources import synthetic

REAL = [
    {"id": 5, "title": "Harold Goes North",
     "overview": "Harold leaves Boston with his dog. In the snow, Harold meets Greta and a bear. "
                 "They fight for the cabin! Greta wins.",
     "genre_ids": [35, 12], "release_date": "1995-12-09", "original_language": "en",
     "popularity": 12.5, "vote_average": 5.7, "vote_count": 2185},
    {"id": 6, "title": "The Night in Vienna",
     "overview": "A thief named Oskar robs the bank of Vienna. The police of Vienna chase him "
                 "through the night. Oskar hides with Marta.",
     "genre_ids": [80, 53], "release_date": "2001-03-01", "original_language": "de",
     "popularity": 3.25, "vote_average": 6.6, "vote_count": 247},
    {"id": 9, "title": "Stars over Kansas",
     "overview": "When the aliens land in Kansas, farmer Tobias hides his family. The army "
                 "of Kansas fails. Tobias and his son Eli find the ship.",
     "genre_ids": [878, 28, 12], "release_date": "2010-07-30", "original_language": "en",
     "popularity": 40.0, "vote_average": 7.1, "vote_count": 9000},
    {"id": 12, "title": "Quiet",
     "overview": "", "genre_ids": [18], "original_language": "fr"},
]
# sha256 of `synthetic.write(REAL, 300, seed=0)` (gzipped JSONL): the bytes must not change
# from one process, CPU or Python version to another (random.Random(int).random() only)
GOLDEN_SHA256 = "561e791ec9872afd0469040be27ebdfaaa3b1f2d258c8b099778f47947e24e90"


@pytest.fixture
def real(tmp_path: Path) -> Path:
    path = tmp_path / "real.jsonl"
    write_jsonl(path, REAL)
    return path


def words(movies: list[dict]) -> set[str]:
    return {w for m in movies for w in re.findall(r"[a-z]+", (m["title"] + " " + m["overview"])
                                                   .lower())}


def test_bytes_are_reproducible_across_processes(real: Path, tmp_path: Path) -> None:
    synthetic.write(real, 300, tmp_path / "a.jsonl.gz", seed=0)
    subprocess.run([sys.executable, "-m", "tmdb_genres", "synth", "--movies", "300",
                    "--source", str(real), "--out", str(tmp_path / "b.jsonl.gz")],
                   check=True, capture_output=True)
    a = (tmp_path / "a.jsonl.gz").read_bytes()
    assert a == (tmp_path / "b.jsonl.gz").read_bytes()
    assert hashlib.sha256(a).hexdigest() == GOLDEN_SHA256
    other = synthetic.write(real, 300, tmp_path / "c.jsonl.gz", seed=1)
    assert other == 300 and (tmp_path / "c.jsonl.gz").read_bytes() != a


def test_movies_are_valid_tmdb_objects_with_ascending_ids(real: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.jsonl.gz"
    synthetic.write(real, 500, out)
    with gzip.open(out, "rt", encoding="utf-8") as handle:
        movies = [json.loads(line) for line in handle]
    assert [m["id"] for m in movies] == list(range(1, 501))
    genre_sets = {tuple(r["genre_ids"]) for r in REAL}
    for movie in movies:
        assert check_movie(movie)[1] is None
        assert tuple(movie["genre_ids"]) in genre_sets
        assert 0 <= movie.get("vote_average", 0) <= 10
    # an empty overview stays empty; others keep their sentence count
    assert any(m["overview"] == "" for m in movies)
    assert {len(synthetic.split_sentences(m["overview"])) for m in movies} <= {0, 3, 4}
    # names are replaced consistently: the same name twice in a template gives one name twice
    assert "Harold" in {w for m in movies for w in m["overview"].split()}
    assert any(m["overview"].count(m["title"].split()[0]) >= 2 for m in movies
               if m["genre_ids"] == [35, 12])


def test_a_smaller_catalogue_is_a_prefix_of_a_larger_one(real: Path) -> None:
    small = list(synthetic.generate(real, 50))
    large = list(synthetic.generate(real, 400))
    assert large[:50] == small
    corpus = synthetic.load_corpus(real)
    assert synthetic.movie(corpus, 321) == large[321]


def test_vocabulary_keeps_growing_with_n(real: Path) -> None:
    movies = list(synthetic.generate(real, 8000))
    sizes = [len(words(movies[:n])) for n in (1000, 2000, 4000, 8000)]
    assert sizes[0] > len(words(REAL))
    # Heaps-like: every doubling adds words, fewer than it doubles them
    for smaller, larger in itertools.pairwise(sizes):
        assert smaller * 1.1 < larger < smaller * 2


def test_names_are_capitalised_words_never_seen_in_lower_case() -> None:
    names = synthetic.find_names([r["overview"] for r in REAL])
    assert {"Boston", "Greta", "Oskar", "Vienna", "Kansas", "Tobias", "Eli"} <= names
    assert "They" not in names and "When" not in names  # sentence starts only
    assert synthetic.invented_name(0) != synthetic.invented_name(1)
    assert len({synthetic.invented_name(k) for k in range(5000)}) == 5000


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TmdbGenresError, match="not found"):
        list(synthetic.generate(tmp_path / "missing.jsonl", 3))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(TmdbGenresError, match="cannot read"):
        list(synthetic.generate(tmp_path / "bad.jsonl", 3))
    with pytest.raises(TmdbGenresError, match="0 or more"):
        list(synthetic.generate(tmp_path / "bad.jsonl", -1))
