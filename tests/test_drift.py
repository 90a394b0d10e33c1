"""Drift between two snapshots: ids added and removed, genre counts and shares."""

from __future__ import annotations

from tmdb_genres import drift


def movie(movie_id: int, *genre_ids: int, title: str = "", date: str = "2020-01-01") -> dict:
    return {"id": movie_id, "genre_ids": list(genre_ids), "title": title or f"M{movie_id}",
            "release_date": date}


BEFORE = [movie(1, 18), movie(2, 18, 35), movie(3, 27), movie(4, 35, 99999)]
AFTER = [movie(2, 18, 35), movie(3, 27), movie(4, 35), movie(5, 27),
         movie(6, 27, 878, date="2022-05-01"), movie(7, 27, date="2022-06-01"),
         movie(8, 18)]


def test_compare_counts_added_and_removed() -> None:
    d = drift.compare(BEFORE, AFTER)
    assert (d.movies_before, d.movies_after) == (4, 7)
    assert d.added == (5, 6, 7, 8) and d.removed == (1,)
    assert not d.unchanged and drift.compare(BEFORE, list(reversed(BEFORE))).unchanged


def test_genre_shares_and_largest_shift_first() -> None:
    d = drift.compare(BEFORE, AFTER)
    by_genre = {g.genre: g for g in d.genres}
    horror = by_genre["Horror"]
    assert (horror.count_before, horror.count_after) == (1, 4)
    assert (horror.share_before, horror.share_after) == (0.25, 0.5714)
    assert horror.shift == 0.3214
    assert by_genre["Science Fiction"].count_before == 0
    assert "99999" not in by_genre  # unknown genre ids are ignored
    shifts = [abs(g.shift) for g in d.genres]
    assert shifts == sorted(shifts, reverse=True) and d.genres[0].genre == "Horror"


def test_newcomers_keep_the_new_snapshot_order() -> None:
    assert [m["id"] for m in drift.newcomers(BEFORE, AFTER)] == [5, 6, 7, 8]
    assert drift.newcomers(AFTER, BEFORE) == [BEFORE[0]]


def test_render_drift_has_counts_shares_and_titles() -> None:
    d = drift.compare(BEFORE, AFTER)
    text = drift.render_drift(d, drift.newcomers(BEFORE, AFTER)[::-1], limit=2)
    assert "- **movies**: 4 → 7 (+3)" in text
    assert "- **added**: 4" in text and "- **removed**: 1" in text
    assert "M8 (2020-01-01), M7 (2022-06-01), … 2 more" in text
    assert "| Horror | 1 | 4 | 25.0% | 57.1% | +32.14 pp |" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "pp |" in line]
    assert rows[0].startswith("| Horror")
