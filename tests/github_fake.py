"""A loopback fake of the GitHub REST endpoints the report command uses.

Serves, on 127.0.0.1 only:
- ``GET  /repos/{owner}/{repo}/issues/{number}/comments`` (paginated with Link headers),
- ``POST /repos/{owner}/{repo}/issues/{number}/comments``,
- ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``,
- ``GET  /repos/{owner}/{repo}/pulls`` (``state``, ``head``, ``base`` filters; paginated),
- ``POST /repos/{owner}/{repo}/pulls``, ``PATCH /repos/{owner}/{repo}/pulls/{number}``.

The pulls endpoints behave as GitHub's do: a ``head`` filter without the ``owner:`` part is
ignored (every open pull request is listed), creating a second open pull request for the same
head and base answers 422 "A pull request already exists", a head branch that does not exist
(``branch_exists``) answers 422, and pull requests share their numbers with issues.
Every request is recorded; ``fail_with`` makes every request answer that status;
``stale_listings`` makes that many pull listings answer as if no pull request were open yet
(a create racing another run).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

_LIST = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$")
_ONE = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")
_PULLS = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls$")
_PULL = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<number>\d+)$")


@dataclass
class FakeGitHub:
    """State of the fake API: comments per (repo, issue), requests seen, failure switch."""

    token: str = "test-token"
    comments: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_with: int | None = None
    next_id: int = 1000
    pulls: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    next_number: int = 0
    branch_exists: Callable[[str, str], bool] | None = None  # (repo, branch) -> exists?
    stale_listings: int = 0
    ignore_head_filter: bool = False  # answer as if the head filter had no owner part
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def add_comment(self, repo: str, number: int, body: str, login: str = "someone") -> int:
        """Seed an existing comment; return its id."""
        self.next_id += 1
        self.comments.setdefault((repo, number), []).append(
            {"id": self.next_id, "body": body, "user": {"login": login},
             "html_url": f"https://github.test/{repo}/pull/{number}#c{self.next_id}"})
        return self.next_id

    def start(self) -> FakeGitHub:
        """Serve on an ephemeral loopback port in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _guard(self) -> bool:
                fake.requests.append((self.command, self.path))
                if fake.fail_with is not None:
                    self._send(fake.fail_with, {"message": "Resource not accessible by "
                                                           "integration"})
                    return False
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._send(401, {"message": "Bad credentials"})
                    return False
                return True

            def do_GET(self) -> None:
                if not self._guard():
                    return
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                match = _LIST.match(parts.path)
                pulls = _PULLS.match(parts.path)
                if match:
                    items = fake.comments.get((match["repo"], int(match["number"])), [])
                elif pulls:
                    items = fake.list_pulls(pulls["repo"], query)
                else:
                    self._send(404, {"message": "Not Found"})
                    return
                per_page = int(query.get("per_page", ["30"])[0])
                page = int(query.get("page", ["1"])[0])
                chunk = items[(page - 1) * per_page: page * per_page]
                headers = {}
                if page * per_page < len(items):
                    rest = {k: v[-1] for k, v in query.items() if k != "page"}
                    nxt = f"{fake.url}{parts.path}?{urlencode({**rest, 'page': page + 1})}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                self._send(200, chunk, headers)

            def do_POST(self) -> None:
                if not self._guard():
                    return
                pulls = _PULLS.match(urlsplit(self.path).path)
                if pulls:
                    self._send(*fake.create_pull(pulls["repo"], self._body()))
                    return
                match = _LIST.match(urlsplit(self.path).path)
                if not match:
                    self._send(404, {"message": "Not Found"})
                    return
                cid = fake.add_comment(match["repo"], int(match["number"]), self._body()["body"],
                                       login="github-actions[bot]")
                self._send(201, fake.find(cid))

            def do_PATCH(self) -> None:
                if not self._guard():
                    return
                pull = _PULL.match(urlsplit(self.path).path)
                if pull:
                    self._send(*fake.update_pull(pull["repo"], int(pull["number"]),
                                                 self._body()))
                    return
                match = _ONE.match(urlsplit(self.path).path)
                comment = fake.find(int(match["id"])) if match else None
                if comment is None:
                    self._send(404, {"message": "Not Found"})
                    return
                comment["body"] = self._body()["body"]
                self._send(200, comment)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Shut the server down."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def find(self, comment_id: int) -> dict[str, Any] | None:
        """The comment with this id, in any issue."""
        for items in self.comments.values():
            for comment in items:
                if comment["id"] == comment_id:
                    return comment
        return None

    # -- pull requests ------------------------------------------------------------------------

    def open_pulls(self, repo: str) -> list[dict[str, Any]]:
        """The open pull requests of ``repo``, oldest first."""
        return [p for p in self.pulls.get(repo, []) if p["state"] == "open"]

    def list_pulls(self, repo: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        """What ``GET /pulls`` lists (before pagination), with GitHub's filter semantics."""
        if self.stale_listings > 0:
            self.stale_listings -= 1
            return []
        state = query.get("state", ["open"])[-1]
        items = [p for p in self.pulls.get(repo, []) if state == "all" or p["state"] == state]
        head = query.get("head", [""])[-1]
        if ":" in head and not self.ignore_head_filter:  # without "owner:" it is ignored
            items = [p for p in items if p["head"]["label"] == head]
        base = query.get("base", [""])[-1]
        if base:
            items = [p for p in items if p["base"]["ref"] == base]
        return sorted(items, key=lambda p: -p["number"])  # newest first, as GitHub sorts

    def create_pull(self, repo: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``POST /pulls``: (status, payload), refusing as GitHub does."""
        missing = [k for k in ("head", "base") if not body.get(k)]
        if not body.get("title") and not body.get("issue"):
            missing.append("title")
        if missing:
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "field": k, "code": "missing_field"}
                for k in missing]}
        owner = repo.split("/")[0]
        head_owner, _, branch = str(body["head"]).rpartition(":")
        head_owner = head_owner or owner
        if self.branch_exists is not None and not self.branch_exists(repo, branch):
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "field": "head", "code": "invalid"}]}
        label = f"{head_owner}:{branch}"
        if any(p["head"]["label"] == label and p["base"]["ref"] == body["base"]
               for p in self.open_pulls(repo)):
            return 422, {"message": "Validation Failed", "errors": [
                {"resource": "PullRequest", "code": "custom",
                 "message": f"A pull request already exists for {label}."}]}
        self.next_number += 1
        pull = {
            "number": self.next_number, "state": "open", "title": body["title"],
            "body": body.get("body") or "",
            "head": {"ref": branch, "label": label,
                     "repo": {"full_name": f"{head_owner}/{repo.split('/')[1]}",
                              "owner": {"login": head_owner}}},
            "base": {"ref": body["base"], "repo": {"full_name": repo}},
            "html_url": f"https://github.test/{repo}/pull/{self.next_number}",
            "user": {"login": "github-actions[bot]"},
        }
        self.pulls.setdefault(repo, []).append(pull)
        return 201, pull

    def update_pull(self, repo: str, number: int,
                    body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """``PATCH /pulls/{number}``: title, body and state."""
        for pull in self.pulls.get(repo, []):
            if pull["number"] == number:
                if body.get("state") not in (None, "open", "closed"):
                    return 422, {"message": "Validation Failed", "errors": [
                        {"resource": "PullRequest", "field": "state", "code": "invalid"}]}
                for key in ("title", "body", "state"):
                    if key in body:
                        pull[key] = body[key]
                return 200, pull
        return 404, {"message": "Not Found"}

    def methods(self) -> list[str]:
        """HTTP methods of the requests seen, in order."""
        return [method for method, _ in self.requests]


def pr_event(repo: str = "octo/tmdb-genres", number: int = 7,
             head_repo: str | None = None) -> dict[str, Any]:
    """A minimal ``pull_request`` event payload; ``head_repo`` differs for a fork."""
    return {
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"ref": "main", "repo": {"full_name": repo}},
            "head": {"ref": "feature", "repo": {"full_name": head_repo or repo}},
        },
        "repository": {"full_name": repo},
    }
