"""A loopback fake of the Hugging Face Hub endpoints that ``huggingface_hub`` calls.

Found by reading the installed ``huggingface_hub`` (hf_api.py, _commit_api.py, lfs.py,
file_download.py, _snapshot_download.py, utils/_http.py) and by logging its requests. Serves,
on 127.0.0.1 only (``HF_ENDPOINT=http://127.0.0.1:PORT``):

- ``GET  /api/whoami-v2``: the token's user; a bad token is a 401 with the Hub's
  ``X-Error-Message: Invalid credentials in Authorization header``;
- ``POST /api/repos/create``: a new repo with the Hub's initial ``.gitattributes`` commit
  (409 if it exists, 403 outside the token's namespaces or with a read token);
- ``GET  /api/{models,spaces}/{repo}[/revision/{rev}]``: repo info (``sha``, ``siblings``);
  a missing repo is a 404 with ``X-Error-Code: RepoNotFound`` (a 401 without a token, as the
  Hub does), an unknown revision ``X-Error-Code: RevisionNotFound``;
- ``GET  /api/{models,spaces}/{repo}/tree/{rev}[/{path}]``: the file list with LFS info;
- ``POST /api/validate-yaml``: the card's front matter (400 with ``errors`` if invalid);
- ``POST /api/{models,spaces}/{repo}/preupload/{rev}``: the upload mode of each file: ``lfs``
  for the Hub's default ``.gitattributes`` patterns (``*.safetensors``, ``*.whl`` is binary,
  ...), binary samples or files of 10 MB and more, else ``regular``, with the ``oid`` of the
  file already there;
- ``POST /[spaces/]{repo}.git/info/lfs/objects/batch``: LFS ``basic`` transfer actions
  (none for an object already stored), then ``PUT`` of the object (sha256 checked) and
  ``POST`` verify;
- ``POST /api/{models,spaces}/{repo}/commit/{rev}``: the NDJSON commit (header, ``file``
  base64, ``lfsFile`` that must have been uploaded, ``deletedFile``);
- ``HEAD``/``GET /[spaces/]{repo}/resolve/{rev}/{path}``: a regular file with ``ETag`` (git
  blob sha1) and ``X-Repo-Commit``; an LFS file as a 302 to the storage URL with
  ``X-Linked-Etag`` (sha256) and ``X-Linked-Size``; a missing file ``X-Error-Code:
  EntryNotFound``; with ``resolve_fault`` set, that status instead (a failing Hub).

Uploads of LFS files use the LFS protocol: ``huggingface_hub`` uses Xet storage instead when
``hf_xet`` is installed, whose chunk store this fake does not implement, so clients of the
fake set ``HF_HUB_DISABLE_XET=1`` (see :data:`CLIENT_ENV`). Every request is recorded (the
``Authorization`` header is kept apart, for the token checks).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

CLIENT_ENV = {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
              "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_ETAG_TIMEOUT": "5"}
# the Hub's default .gitattributes of a new repo (an excerpt: the LFS patterns)
LFS_PATTERNS = ("*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gz", "*.h5", "*.joblib",
                "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.parquet", "*.pickle",
                "*.pkl", "*.pt", "*.pth", "*.safetensors", "*.tar", "*.tgz", "*.xz", "*.zip",
                "*.zst")
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)
LFS_THRESHOLD = 10 * 1024 * 1024
BAD_CREDENTIALS = "Invalid credentials in Authorization header"

_REPO = r"(?P<kind>models|spaces|datasets)/(?P<repo>[^/]+/[^/]+?)"
_ROUTES = [
    ("GET", re.compile(r"^/api/whoami-v2$"), "whoami"),
    ("POST", re.compile(r"^/api/repos/create$"), "create"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("GET", re.compile(rf"^/api/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$"), "tree"),
    ("POST", re.compile(rf"^/api/{_REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/{_REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("GET", re.compile(rf"^/api/{_REPO}(?:/revision/(?P<rev>[^/]+))?$"), "info"),
    ("POST", re.compile(r"^/(?:(?P<prefix>spaces|datasets)/)?(?P<repo>[^/]+/[^/]+)\.git/info/"
                        r"lfs/objects/batch$"), "lfs_batch"),
    ("PUT", re.compile(r"^/fake-lfs/upload/(?P<oid>[0-9a-f]{64})$"), "lfs_put"),
    ("POST", re.compile(r"^/fake-lfs/verify/(?P<oid>[0-9a-f]{64})$"), "lfs_verify"),
    ("GET", re.compile(r"^/fake-lfs/objects/(?P<oid>[0-9a-f]{64})$"), "lfs_get"),
    ("HEAD", re.compile(r"^/fake-lfs/objects/(?P<oid>[0-9a-f]{64})$"), "lfs_get"),
    ("GET", re.compile(r"^/(?:(?P<prefix>spaces|datasets)/)?(?P<repo>[^/]+/[^/]+)/resolve/"
                       r"(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("HEAD", re.compile(r"^/(?:(?P<prefix>spaces|datasets)/)?(?P<repo>[^/]+/[^/]+)/resolve/"
                        r"(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub returns as a regular file's oid / ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git LFS pointer file that stands for an LFS object in the repo."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\n"
            f"size {size}\n").encode()


class HubError(Exception):
    """An error answer with the Hub's headers."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Repo:
    """One repo: files at the head of ``main`` (path -> bytes) and which are LFS."""

    kind: str
    repo_id: str
    files: dict[str, bytes] = field(default_factory=dict)
    lfs: set[str] = field(default_factory=set)
    commits: list[str] = field(default_factory=list)
    sdk: str | None = None

    @property
    def sha(self) -> str:
        return self.commits[-1]


@dataclass
class FakeHub:
    """The fake Hub's state: users by token, repos, LFS objects, the requests seen."""

    tokens: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "hf_writer": {"name": "alice", "orgs": [], "role": "write"},
        "hf_reader": {"name": "alice", "orgs": [], "role": "read"},
    })
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    authorizations: list[str] = field(default_factory=list)
    # a failing Hub: every resolve (file download) answers this status instead (500, 503, ...)
    resolve_fault: int | None = None
    url: str = ""
    storage_url: str = ""
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ state helpers

    def seed(self, repo_id: str, files: dict[str, bytes], kind: str = "models") -> Repo:
        """Create a repo holding ``files`` (as if uploaded with the Hub's LFS rules)."""
        repo = self._create(kind, repo_id)
        self._commit(repo, {path: data for path, data in files.items()}, set(), "seed")
        return repo

    def repo(self, repo_id: str, kind: str = "models") -> Repo | None:
        return self.repos.get((kind, repo_id))

    def _create(self, kind: str, repo_id: str, sdk: str | None = None) -> Repo:
        repo = Repo(kind, repo_id, sdk=sdk)
        self.repos[(kind, repo_id)] = repo
        self._commit(repo, {".gitattributes": GITATTRIBUTES.encode()}, set(), "initial commit")
        return repo

    def _is_lfs(self, path: str, size: int, sample: bytes) -> bool:
        name = path.rsplit("/", 1)[-1]
        return (any(fnmatch.fnmatch(name, p) for p in LFS_PATTERNS) or size >= LFS_THRESHOLD
                or b"\0" in sample)

    def _commit(self, repo: Repo, added: dict[str, bytes], deleted: set[str], summary: str
                ) -> str:
        for path, data in added.items():
            repo.files[path] = data
            if self._is_lfs(path, len(data), data[:512]):
                repo.lfs.add(path)
                self.objects[hashlib.sha256(data).hexdigest()] = data
            else:
                repo.lfs.discard(path)
        for path in deleted:
            repo.files.pop(path, None)
            repo.lfs.discard(path)
        state = json.dumps([summary, len(repo.commits),
                            sorted((p, hashlib.sha256(d).hexdigest())
                                   for p, d in repo.files.items())])
        repo.commits.append(hashlib.sha1(state.encode()).hexdigest())
        return repo.sha

    # ------------------------------------------------------------------ server

    def start(self) -> FakeHub:
        """Serve on an ephemeral loopback port in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _handle(self) -> None:
                split = urlsplit(self.path)
                path = unquote(split.path)
                fake.requests.append((self.command, path))
                fake.authorizations.append(self.headers.get("Authorization") or "")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                for method, pattern, name in _ROUTES:
                    match = pattern.match(path)
                    if method == self.command and match:
                        try:
                            with fake._lock:
                                status, payload, headers = getattr(fake, f"_ep_{name}")(
                                    self, match.groupdict(), parse_qs(split.query), body)
                        except HubError as exc:
                            headers = {"X-Error-Message": exc.message}
                            if exc.code:
                                headers["X-Error-Code"] = exc.code
                            status, payload = exc.status, {"error": exc.message}
                        self._send(status, payload, headers)
                        return
                self._send(404, {"error": "Not Found"}, {"X-Error-Message": "Not Found"})

            def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                if not isinstance(payload, bytes):
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("X-Request-Id", f"fake-{len(fake.requests)}")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            do_GET = do_POST = do_PUT = do_HEAD = _handle

        # the Hub itself, and its object storage on another origin (as the Hub's CDN and
        # S3 are): the client stops at a redirect off the Hub and reads the file's metadata
        # from the redirect itself
        self._servers = [ThreadingHTTPServer(("127.0.0.1", 0), Handler) for _ in range(2)]
        self.url, self.storage_url = (f"http://127.0.0.1:{server.server_address[1]}"
                                      for server in self._servers)
        for server in self._servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # ------------------------------------------------------------------ auth

    def _user(self, handler: BaseHTTPRequestHandler, required: bool = True
              ) -> dict[str, Any] | None:
        header = handler.headers.get("Authorization") or ""
        if not header:
            if required:
                raise HubError(401, "Invalid username or password.")
            return None
        token = header.removeprefix("Bearer ").strip()
        if token not in self.tokens:
            raise HubError(401, BAD_CREDENTIALS)
        return self.tokens[token]

    def _find(self, handler: BaseHTTPRequestHandler, kind: str, repo_id: str,
              rev: str | None = None) -> Repo:
        user = self._user(handler, required=False)
        repo = self.repos.get((kind, repo_id))
        if repo is None:  # the Hub answers 401 to anonymous requests for a missing repo
            raise HubError(404 if user else 401, "Repository not found", "RepoNotFound")
        if rev not in (None, "main", repo.sha):
            raise HubError(404, "Invalid rev id: " + str(rev), "RevisionNotFound")
        return repo

    def _writable(self, handler: BaseHTTPRequestHandler, kind: str, repo_id: str) -> Repo:
        user = self._user(handler)
        repo = self._find(handler, kind, repo_id)
        if user["role"] != "write" or repo_id.split("/")[0] not in [user["name"], *user["orgs"]]:
            raise HubError(403, "You don't have the rights to write to this repo")
        return repo

    # ------------------------------------------------------------------ endpoints

    def _ep_whoami(self, handler, groups, query, body):
        user = self._user(handler)
        return 200, {"type": "user", "name": user["name"],
                     "orgs": [{"name": org} for org in user["orgs"]],
                     "auth": {"type": "access_token",
                              "accessToken": {"displayName": "fake", "role": user["role"]}}}, {}

    def _ep_create(self, handler, groups, query, body):
        user = self._user(handler)
        data = json.loads(body or b"{}")
        kind = {"space": "spaces", "dataset": "datasets"}.get(data.get("type"), "models")
        namespace = data.get("organization") or user["name"]
        repo_id = f"{namespace}/{data['name']}"
        if user["role"] != "write" or namespace not in [user["name"], *user["orgs"]]:
            raise HubError(403, f"You don't have the rights to create a repo under "
                                f"the namespace \"{namespace}\"")
        if (kind, repo_id) in self.repos:
            prefix = "" if kind == "models" else f"{kind}/"
            return 409, {"error": "You already created this model repo",
                         "url": f"{self.url}/{prefix}{repo_id}"}, {
                "X-Error-Message": "You already created this model repo"}
        if kind == "spaces" and data.get("sdk") not in ("gradio", "docker", "static"):
            raise HubError(400, "sdk must be one of gradio, docker, static")
        self._create(kind, repo_id, data.get("sdk"))
        prefix = "" if kind == "models" else f"{kind}/"
        return 200, {"url": f"{self.url}/{prefix}{repo_id}", "name": repo_id}, {}

    def _ep_validate_yaml(self, handler, groups, query, body):
        content = json.loads(body)["content"]
        if content.startswith("---"):
            try:
                end = content.index("\n---", 3)
                data = yaml.safe_load(content[3:end])
            except (ValueError, yaml.YAMLError) as exc:
                return 400, {"errors": [{"message": f"invalid YAML: {exc}"}]}, {
                    "X-Error-Message": "Invalid metadata"}
            if data is not None and not isinstance(data, dict):
                return 400, {"errors": [{"message": "metadata must be a mapping"}]}, {
                    "X-Error-Message": "Invalid metadata"}
            return 200, {"errors": [], "warnings": []}, {}
        return 200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}, {}

    def _ep_info(self, handler, groups, query, body):
        repo = self._find(handler, groups["kind"], groups["repo"], groups.get("rev"))
        info = {"id": repo.repo_id, "_id": repo.repo_id, "sha": repo.sha, "private": False,
                "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                "siblings": [{"rfilename": path} for path in sorted(repo.files)]}
        if repo.kind == "spaces":
            info["sdk"] = repo.sdk
        return 200, info, {}

    def _ep_tree(self, handler, groups, query, body):
        repo = self._find(handler, groups["kind"], groups["repo"], groups["rev"])
        prefix = (groups.get("path") or "").strip("/")
        entries, folders = [], set()
        for path in sorted(repo.files):
            if prefix and not path.startswith(prefix + "/"):
                continue
            data = repo.files[path]
            entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data)}
            if path in repo.lfs:
                oid = hashlib.sha256(data).hexdigest()
                pointer = lfs_pointer(oid, len(data))
                entry.update(oid=git_blob_sha1(pointer),
                             lfs={"oid": oid, "size": len(data), "pointerSize": len(pointer)})
            else:
                entry["oid"] = git_blob_sha1(data)
            entries.append(entry)
            parts = path.split("/")[:-1]
            folders.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        entries += [{"type": "directory", "path": f, "oid": "0" * 40, "size": 0}
                    for f in sorted(folders)]
        return 200, entries, {}

    def _ep_preupload(self, handler, groups, query, body):
        repo = self._writable(handler, groups["kind"], groups["repo"])
        files = []
        for item in json.loads(body)["files"]:
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item["sample"])
            lfs = self._is_lfs(path, size, sample)
            existing = repo.files.get(path)
            oid = None
            if existing is not None:
                oid = (hashlib.sha256(existing).hexdigest() if path in repo.lfs
                       else git_blob_sha1(existing))
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular",
                          "shouldIgnore": False, "oid": oid})
        return 200, {"files": files, "commitOid": repo.sha}, {}

    def _ep_lfs_batch(self, handler, groups, query, body):
        kind = groups.get("prefix") or "models"
        self._writable(handler, kind, groups["repo"])
        request = json.loads(body)
        if request.get("operation") != "upload" or "basic" not in request.get("transfers", []):
            raise HubError(400, "only basic uploads are supported")
        objects = []
        for item in request["objects"]:
            entry = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if item["oid"] not in self.objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.storage_url}/fake-lfs/upload/{item['oid']}",
                               "header": {}, "expires_in": 86400},
                    "verify": {"href": f"{self.storage_url}/fake-lfs/verify/{item['oid']}",
                               "header": {}},
                }
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, {}

    def _ep_lfs_put(self, handler, groups, query, body):
        if hashlib.sha256(body).hexdigest() != groups["oid"]:
            raise HubError(400, "sha256 of the uploaded object does not match its oid")
        self.objects[groups["oid"]] = body
        return 200, b"", {}

    def _ep_lfs_verify(self, handler, groups, query, body):
        self._user(handler)
        data = json.loads(body)
        stored = self.objects.get(groups["oid"])
        if stored is None or len(stored) != int(data["size"]):
            raise HubError(404, "Object not found")
        return 200, {"success": True}, {}

    def _ep_lfs_get(self, handler, groups, query, body):
        stored = self.objects.get(groups["oid"])
        if stored is None:
            raise HubError(404, "Object not found")
        return 200, stored, {"Content-Type": "application/octet-stream"}

    def _ep_commit(self, handler, groups, query, body):
        repo = self._writable(handler, groups["kind"], groups["repo"])
        if groups["rev"] != "main":
            raise HubError(404, f"Invalid rev id: {groups['rev']}", "RevisionNotFound")
        if handler.headers.get("Content-Type", "").split(";")[0] != "application/x-ndjson":
            raise HubError(400, "expected application/x-ndjson")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "the first line must be the header")
        header = lines[0]["value"]
        if not header.get("summary"):
            raise HubError(400, "summary is required")
        if header.get("parentCommit") not in (None, repo.sha):
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        added: dict[str, bytes] = {}
        deleted: set[str] = set()
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                added[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                stored = self.objects.get(value["oid"])
                if stored is None or len(stored) != int(value["size"]):
                    raise HubError(422, f"LFS file {value['path']} was not uploaded")
                added[value["path"]] = stored
            elif key == "deletedFile":
                if value["path"] not in repo.files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                deleted.add(value["path"])
            else:
                raise HubError(400, f"unsupported commit operation {key!r}")
        sha = self._commit(repo, added, deleted, header["summary"])
        prefix = "" if repo.kind == "models" else f"{repo.kind}/"
        return 200, {"success": True, "commitOid": sha, "pullRequestUrl": None,
                     "commitUrl": f"{self.url}/{prefix}{repo.repo_id}/commit/{sha}"}, {}

    def _ep_resolve(self, handler, groups, query, body):
        if self.resolve_fault is not None:
            raise HubError(self.resolve_fault, {403: "Forbidden", 500: "Internal Error",
                                                503: "Service Unavailable"}.get(
                                                    self.resolve_fault, "Error"))
        kind = groups.get("prefix") or "models"
        repo = self._find(handler, kind, groups["repo"], groups["rev"])
        path = groups["path"]
        if path not in repo.files:
            raise HubError(404, "Entry not found", "EntryNotFound")
        data = repo.files[path]
        headers = {"X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        if path in repo.lfs:
            oid = hashlib.sha256(data).hexdigest()
            headers.update({
                "ETag": f'"{git_blob_sha1(lfs_pointer(oid, len(data)))}"',
                "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data)),
                "Location": f"{self.storage_url}/fake-lfs/objects/{oid}",
            })
            return 302, b"", headers
        headers["ETag"] = f'"{git_blob_sha1(data)}"'
        return 200, data, headers

