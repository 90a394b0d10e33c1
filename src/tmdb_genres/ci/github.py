"""The one GitHub REST API client shared by every workflow command.

``GitHubClient`` sends authenticated requests to ``$GITHUB_API_URL`` with ``requests``, turns
every refusal into one ``GitHubError`` line with its remedy, follows pagination without ever
sending the token to another origin, and keeps one marked comment per pull request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import TmdbGenresError

API_VERSION = "2022-11-28"
DEFAULT_API = "https://api.github.com"
TIMEOUT_S = 30


class GitHubError(TmdbGenresError):
    """The GitHub API refused or could not be reached (``status`` is the HTTP status, if any)."""

    def __init__(self, problem: str, remedy: str, status: int | None = None,
                 details: str = "") -> None:
        super().__init__(problem, remedy)
        self.status = status
        self.details = details


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _error_messages(payload: Any) -> str:
    """The ``errors[].message`` texts of a 422 answer, joined (GitHub puts the reason there)."""
    errors = payload.get("errors") if isinstance(payload, dict) else None
    if not isinstance(errors, list):
        return ""
    texts = [str(e.get("message") or e.get("code") or "") if isinstance(e, dict) else str(e)
             for e in errors]
    return "; ".join(t for t in texts if t)


def _api_error(method: str, url: str, response: Any, remedy: str) -> GitHubError:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    message = str(payload.get("message", "")) if isinstance(payload, dict) \
        else response.text[:200]
    details = _error_messages(payload)
    if details:
        message = f"{message} ({details})"
    path = urlsplit(url).path
    if response.status_code == 422:
        remedy = "check the request (branch names, an existing pull request)"
    elif response.status_code not in (401, 403, 404):
        remedy = "retry the job; see https://www.githubstatus.com"
    return GitHubError(f"GitHub API answered {response.status_code} {response.reason} to "
                       f"{method} {path}: {' '.join(message.split()) or 'no message'}",
                       remedy, status=response.status_code, details=details)


class GitHubClient:
    """Authenticated calls to the GitHub REST API (``api`` is e.g. ``$GITHUB_API_URL``).

    ``permission_remedy`` is the advice given when GitHub answers 401, 403 or 404 (most often
    a missing ``permissions:`` entry in the workflow).
    """

    def __init__(self, api: str, token: str, session: Any = None,
                 permission_remedy: str = "give the job `permissions: pull-requests: write` "
                                          "and pass GITHUB_TOKEN",
                 user_agent: str = "tmdb-genres") -> None:
        import requests

        self.api = (api or DEFAULT_API).rstrip("/")
        self.permission_remedy = permission_remedy
        self.session = session or requests.Session()
        self.session.headers.update({
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": user_agent,
        })

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/repos/o/r/pulls``."""
        return path if path.startswith(("http://", "https://")) else f"{self.api}{path}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; a ``GitHubError`` for a refusal or an unreachable API."""
        import requests

        url = self.url(path)
        if not _same_origin(url, self.api):  # never send the token elsewhere
            raise GitHubError(f"refusing to send the token outside the API: {url}",
                              "check GITHUB_API_URL")
        try:
            response = self.session.request(method, url, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise GitHubError(f"cannot reach the GitHub API at {url}: {type(exc).__name__}",
                              "check GITHUB_API_URL and the network") from exc
        if response.status_code >= 400:
            raise _api_error(method, url, response, self.permission_remedy)
        return response

    def paginate(self, path: str) -> Iterator[Any]:
        """Every item of a list endpoint, following the ``Link: rel=next`` headers."""
        url: str | None = self.url(path)
        while url:
            response = self.request("GET", url)
            yield from response.json()
            url = response.links.get("next", {}).get("url")
            if url and not _same_origin(url, self.api):
                raise GitHubError(f"pagination link points outside the API: {url}",
                                  "check GITHUB_API_URL")

    def find_marked_comment(self, repo: str, number: int, marker: str) -> dict[str, Any] | None:
        """The first comment of issue or pull request ``number`` that contains ``marker``."""
        for comment in self.paginate(f"/repos/{repo}/issues/{number}/comments?per_page=100"):
            if marker in (comment.get("body") or ""):
                return comment
        return None

    def upsert_comment(self, repo: str, number: int, body: str,
                       marker: str) -> tuple[str, str]:
        """Update the marked comment, or create it; return (action, comment URL)."""
        existing = self.find_marked_comment(repo, number, marker)
        if existing is not None:
            path = f"/repos/{repo}/issues/comments/{existing['id']}"
            response = self.request("PATCH", path, json={"body": body})
            action = "updated"
        else:
            path = f"/repos/{repo}/issues/{number}/comments"
            response = self.request("POST", path, json={"body": body})
            action = "created"
        return action, str(response.json().get("html_url", self.url(path)))

    def find_open_pull(self, repo: str, head: str, base: str | None = None
                       ) -> dict[str, Any] | None:
        """The open pull request from ``head`` (``owner:branch``) into ``base``, or None.

        GitHub ignores a ``head`` filter without the ``owner:`` part and then lists every open
        pull request, so the head of each answer is checked here as well.
        """
        owner, _, branch = head.partition(":")
        if not branch:
            raise ValueError(f"head must be owner:branch, got {head!r}")
        query = f"state=open&head={quote(head, safe=':')}&per_page=100"
        if base:
            query += f"&base={quote(base, safe='')}"
        for pull in self.paginate(f"/repos/{repo}/pulls?{query}"):
            pr_head = pull.get("head") or {}
            pr_owner = ((pr_head.get("repo") or {}).get("owner") or {}).get("login") \
                or (pr_head.get("label") or "").partition(":")[0]
            if pr_head.get("ref") == branch and pr_owner == owner \
                    and (base is None or (pull.get("base") or {}).get("ref") == base):
                return pull
        return None

    def upsert_pull(self, repo: str, head: str, base: str, title: str,
                    body: str) -> tuple[str, dict[str, Any]]:
        """Open a pull request from ``head`` (``owner:branch``) into ``base``, or update the
        open one (title and body); return (``created`` or ``updated``, the pull request).

        A create that races another run (GitHub answers 422, "A pull request already
        exists") falls back to updating the one that exists.
        """
        existing = self.find_open_pull(repo, head, base)
        if existing is None:
            try:
                response = self.request("POST", f"/repos/{repo}/pulls",
                                        json={"title": title, "head": head.partition(":")[2],
                                              "base": base, "body": body,
                                              "maintainer_can_modify": True})
                return "created", response.json()
            except GitHubError as exc:
                if exc.status != 422 or "already exists" not in exc.details:
                    raise
                existing = self.find_open_pull(repo, head, base)
                if existing is None:
                    raise
        response = self.request("PATCH", f"/repos/{repo}/pulls/{existing['number']}",
                                json={"title": title, "body": body})
        return "updated", response.json()

    def open_pulls(self, repo: str, base: str | None = None) -> list[dict[str, Any]]:
        """Every open pull request of ``repo`` (into ``base`` when given)."""
        query = "state=open&per_page=100" + (f"&base={quote(base, safe='')}" if base else "")
        return list(self.paginate(f"/repos/{repo}/pulls?{query}"))

    def close_pull(self, repo: str, number: int, comment: str | None = None) -> None:
        """Close pull request ``number``, after posting ``comment`` on it when given."""
        if comment:
            self.request("POST", f"/repos/{repo}/issues/{number}/comments",
                         json={"body": comment})
        self.request("PATCH", f"/repos/{repo}/pulls/{number}", json={"state": "closed"})
