"""A loopback fake of the GitHub REST endpoints the report command uses.

Serves, on 127.0.0.1 only:
- ``GET  /repos/{owner}/{repo}/issues/{number}/comments`` (paginated with Link headers),
- ``POST /repos/{owner}/{repo}/issues/{number}/comments``,
- ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``.

Every request is recorded; ``fail_with`` makes every request answer that status.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_LIST = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<number>\d+)/comments$")
_ONE = re.compile(r"^/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)$")


@dataclass
class FakeGitHub:
    """State of the fake API: comments per (repo, issue), requests seen, failure switch."""

    token: str = "test-token"
    comments: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    fail_with: int | None = None
    next_id: int = 1000
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
                match = _LIST.match(parts.path)
                if not match:
                    self._send(404, {"message": "Not Found"})
                    return
                query = parse_qs(parts.query)
                per_page = int(query.get("per_page", ["30"])[0])
                page = int(query.get("page", ["1"])[0])
                items = fake.comments.get((match["repo"], int(match["number"])), [])
                chunk = items[(page - 1) * per_page: page * per_page]
                headers = {}
                if page * per_page < len(items):
                    nxt = f"{fake.url}{parts.path}?per_page={per_page}&page={page + 1}"
                    headers["Link"] = f'<{nxt}>; rel="next"'
                self._send(200, chunk, headers)

            def do_POST(self) -> None:
                if not self._guard():
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
