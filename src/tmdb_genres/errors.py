"""User-facing errors: one line naming the problem and the remedy.

Exit statuses of the CLI: 0 done; 1 a remote service (e.g. the Hugging Face Hub) failed or its
state could not be read, so nothing was changed: retry later (:class:`RemoteError`); 2 bad
input or usage, which the user fixes (:class:`TmdbGenresError`); 128 + N stopped by signal N.
"""

from __future__ import annotations


class TmdbGenresError(Exception):
    """An error the user can fix; the CLI prints it as one line and exits with status 2."""

    exit_code = 2

    def __init__(self, problem: str, remedy: str) -> None:
        super().__init__(f"{problem} — {remedy}")
        self.problem = problem
        self.remedy = remedy


class RemoteError(TmdbGenresError):
    """A remote service failed, or its state could not be read: the command stopped (failing
    closed) and changed nothing. The CLI prints one line and exits with status 1."""

    exit_code = 1
