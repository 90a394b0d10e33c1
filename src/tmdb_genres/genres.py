"""TMDB's movie genre list (``/genre/movie/list``), the label space of the classifier."""

from __future__ import annotations

# TMDB movie genres, id -> name, as served by the API's /genre/movie/list.
TMDB_GENRES: dict[int, str] = {
    28: "Action",
    12: "Adventure",
    16: "Animation",
    35: "Comedy",
    80: "Crime",
    99: "Documentary",
    18: "Drama",
    10751: "Family",
    14: "Fantasy",
    36: "History",
    27: "Horror",
    10402: "Music",
    9648: "Mystery",
    10749: "Romance",
    878: "Science Fiction",
    10770: "TV Movie",
    53: "Thriller",
    10752: "War",
    37: "Western",
}

GENRE_IDS: dict[str, int] = {name: genre_id for genre_id, name in TMDB_GENRES.items()}


def genre_names() -> list[str]:
    """All genre names in a stable (alphabetical) order: the column order of every model."""
    return sorted(TMDB_GENRES.values())
