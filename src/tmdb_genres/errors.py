"""User-facing errors: one line naming the problem and the remedy."""

from __future__ import annotations


class TmdbGenresError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits with status 2."""

    def __init__(self, problem: str, remedy: str) -> None:
        super().__init__(f"{problem} — {remedy}")
        self.problem = problem
        self.remedy = remedy
