"""Talking to the Hugging Face Hub: downloads, and Hub errors as one-line messages."""

from __future__ import annotations

from pathlib import Path

from ..errors import RemoteError, TmdbGenresError


def download_model_folder(repo_id: str, revision: str | None = None) -> Path:
    """Download (or reuse from the cache) a published model repo; return its local folder."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision, repo_type="model"))
    except Exception as exc:
        raise hub_error(exc, repo_id, "download") from None


def hub_error(exc: BaseException, repo_id: str, action: str) -> TmdbGenresError:
    """A one-line error for a failed Hub call (never including the token)."""
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    headers = getattr(response, "headers", None) or {}
    server = getattr(exc, "server_message", None) or headers.get("X-Error-Message") or ""
    if isinstance(exc, HFValidationError):
        return TmdbGenresError(f"{repo_id!r} is not a valid Hub repo id",
                               "use OWNER/NAME, e.g. my-user/tmdb-genres")
    if status == 401 and ("credentials" in server.lower() or action.startswith("authenticate")):
        reason = (server or "Unauthorized").rstrip(".")
        return TmdbGenresError(f"the Hub rejected HF_TOKEN (401: {reason})",
                               "set HF_TOKEN to a valid token with write access "
                               "(https://huggingface.co/settings/tokens)")
    if isinstance(exc, GatedRepoError):
        return TmdbGenresError(f"{repo_id} is gated", "request access on its Hub page")
    if isinstance(exc, RepositoryNotFoundError):
        return TmdbGenresError(f"Hub repo {repo_id} not found (or not visible with this token)",
                               "check the repo id, and set HF_TOKEN for a private repo")
    if isinstance(exc, RevisionNotFoundError):
        return TmdbGenresError(f"revision not found in Hub repo {repo_id}",
                               "pass an existing branch, tag or commit")
    if status == 403:
        return TmdbGenresError(f"HF_TOKEN may not {action} {repo_id} (403 Forbidden)",
                               "use a token with write access to that namespace")
    if isinstance(exc, LocalEntryNotFoundError):
        return RemoteError(f"cannot reach the Hub to {action} {repo_id} and it is not "
                               "in the local cache", "check the network or HF_ENDPOINT")
    if isinstance(exc, HfHubHTTPError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return RemoteError(f"the Hub refused to {action} {repo_id}: {first}",
                               "retry later; check HF_ENDPOINT and the repo id")
    if isinstance(exc, OSError | ConnectionError) or "Connect" in type(exc).__name__:
        return RemoteError(f"cannot reach the Hub to {action} {repo_id} "
                               f"({type(exc).__name__})", "check the network or HF_ENDPOINT")
    return RemoteError(f"could not {action} {repo_id}: {type(exc).__name__}: {exc}",
                           "check HF_ENDPOINT and the repo id")


def main(argv: list[str] | None = None) -> int:
    """``python -m tmdb_genres.hub.remote REPO_OR_FOLDER``: print the model folder to serve.

    A local folder is printed as it is; a repo id is downloaded first (the Space's start-up).
    """
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tmdb_genres.hub.remote REPO_ID_OR_FOLDER", file=sys.stderr)
        return 2
    try:
        local = Path(args[0])
        print(local if local.is_dir() else download_model_folder(args[0]))
    except TmdbGenresError as exc:
        print(f"tmdb-genres: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
