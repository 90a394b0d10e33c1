"""tmdb-genres: multi-label movie genre classification on reproducible TMDB snapshots."""

__version__ = "0.1.0"
