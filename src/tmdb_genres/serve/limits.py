"""The service's bounds on what clients may cost it: bytes, time and connections.

Production HTTP servers keep these in front of the application; here they are two pieces
around uvicorn and the FastAPI app:

- :func:`protocol_class`, uvicorn's h11 protocol with per-connection bounds: at most
  ``max_connections`` open connections (one more is answered ``503`` and closed, so the
  process never runs out of file descriptors), a request line over ``max_url_bytes`` is
  answered ``414`` and a request head over ``max_header_bytes`` ``431``, and a request head
  that has not fully arrived ``header_timeout`` seconds after the connection opened (or after
  the previous response) is answered ``408`` and closed;
- :class:`BodyLimit`, ASGI middleware that reads a request body before the application sees
  it: a declared ``Content-Length`` over ``max_body_bytes`` is refused with ``413`` before a
  byte of it is read, a body that grows past the cap while it is read (chunked) is refused as
  soon as it does, and a body that has not fully arrived within ``body_timeout`` seconds is
  answered ``408``.

Each kind of overload is logged once when it starts and then at most once per
``log_interval`` seconds with a count (:class:`OverloadLog`), never once per event.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RESERVED_FILES = 64  # descriptors kept for the process itself (model files, logs, threads)


@dataclass(frozen=True)
class Limits:
    """Every bound of the service (``tmdb-genres serve --help`` lists them with defaults)."""

    max_body_bytes: int = 12 * 1024 * 1024  # a full batch at the schema's caps fits
    max_header_bytes: int = 16 * 1024
    max_url_bytes: int = 8 * 1024
    max_connections: int = 1000
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    log_interval: float = 60.0


class OverloadLog:
    """One line per kind of overload per interval: the first event at once, then a count."""

    def __init__(self, interval: float, write: Callable[[str], None] | None = None) -> None:
        self.interval = interval
        self.write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._since: dict[str, float] = {}  # kind -> when its last line was written
        self._counts: dict[str, int] = {}  # kind -> events not yet reported
        self._lock = threading.Lock()

    def note(self, kind: str, what: str) -> None:
        """Record one event of ``kind`` (``what`` says what was done about it)."""
        now = time.monotonic()
        with self._lock:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            last = self._since.get(kind)
            if last is not None and now - last < self.interval:
                return
            count, self._counts[kind] = self._counts[kind], 0
            self._since[kind] = now
        window = "" if last is None else f" in the last {now - last:.0f} s"
        self.write(f"tmdb-genres serve: overload: {kind}: {count:,} event"
                   f"{'s' if count != 1 else ''}{window} ({what})")


def _canned(status: int, reason: str, detail: str) -> bytes:
    """A complete HTTP/1.1 response that closes the connection."""
    body = json.dumps({"detail": detail}).encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n"
            + ("retry-after: 1\r\n" if status == 503 else "") + "\r\n").encode() + body


def file_limit(wanted_connections: int) -> int:
    """Raise the soft open-files limit as far as allowed; the connections that fit in it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = wanted_connections + RESERVED_FILES
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted_connections
    return max(1, min(wanted_connections, soft - RESERVED_FILES))


def protocol_class(limits: Limits, log: OverloadLog) -> type:
    """uvicorn's h11 protocol with the connection, request-head and time bounds of ``limits``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    too_many = _canned(503, "Service Unavailable",
                       f"the server has {limits.max_connections:,} connections open, its "
                       "cap: retry in a moment")
    url_too_long = _canned(414, "URI Too Long",
                           f"the request line is over {limits.max_url_bytes:,} bytes: send "
                           "the movie in a POST /predict body, not in the URL")
    head_too_large = _canned(431, "Request Header Fields Too Large",
                             f"the request headers are over {limits.max_header_bytes:,} "
                             "bytes: send fewer or shorter headers")
    too_slow = _canned(408, "Request Timeout",
                       f"the request head did not arrive within {limits.header_timeout:g} s: "
                       "send the whole request at once")

    class LimitedH11Protocol(H11Protocol):  # type: ignore[misc]
        """One connection, within ``limits`` (see the module's docstring)."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            self._head = b""  # the request head received so far (None: the head is complete)
            self._head_timer: asyncio.TimerHandle | None = None
            self._shed = len(self.connections) >= limits.max_connections
            super().connection_made(transport)
            if self._shed:  # answered once its request arrives (or after a second)
                self.connections.discard(self)
                log.note("connections over the cap", f"answered 503; the cap is "
                         f"{limits.max_connections:,} (--max-connections)")
                self._head_timer = self.loop.call_later(1.0, self._refuse, too_many)
            else:
                self._await_head()

        def _await_head(self) -> None:
            self._head = b""
            self._cancel_head_timer()
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_late)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self._head:  # part of a request: say why it is closed
                log.note("slow clients", f"request head not complete within "
                         f"{limits.header_timeout:g} s: answered 408 (--header-timeout)")
                self._refuse(too_slow)
            elif not self.transport.is_closing():  # an idle connection: just close it
                self.transport.close()

        def _refuse(self, response: bytes) -> None:
            self._cancel_head_timer()
            self._unset_keepalive_if_required()
            if not self.transport.is_closing():
                self.transport.write(response)
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._shed:
                self._refuse(too_many)
                return
            if self._head is not None:
                head = self._head + data
                end = head.find(b"\r\n\r\n")
                size = len(head) if end < 0 else end + 4
                line = head.find(b"\r\n")
                if (line < 0 and size > limits.max_url_bytes) or line > limits.max_url_bytes:
                    log.note("oversized requests", "request line too long: answered 414 "
                             "(--max-url-bytes)")
                    self._refuse(url_too_long)
                    return
                if size > limits.max_header_bytes:
                    log.note("oversized requests", "request head too large: answered 431 "
                             "(--max-header-bytes)")
                    self._refuse(head_too_large)
                    return
                if end < 0:
                    self._head = head
                else:
                    self._head = None
                    self._cancel_head_timer()
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

    return LimitedH11Protocol


class BodyLimit:
    """ASGI middleware: read a request's body within ``max_body_bytes`` and ``body_timeout``
    before the application sees it (413 or 408 otherwise, and the connection is closed)."""

    def __init__(self, app: ASGIApp, limits: Limits, log: OverloadLog) -> None:
        self.app, self.limits, self.log = app, limits, log

    async def _refuse(self, send: Send, status: int, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    def _too_large(self, size: str) -> str:
        return (f"request body is {size} bytes, over the cap of "
                f"{self.limits.max_body_bytes:,} — split the batch into smaller requests")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() \
                and int(declared) > self.limits.max_body_bytes:
            self.log.note("oversized requests", "body over the cap: answered 413 "
                          "(--max-body-bytes)")
            await self._refuse(send, 413, self._too_large(f"{int(declared):,}"))
            return
        import asyncio  # here, not at import: every command's parser imports this module

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                self.log.note("slow clients", f"body not complete within "
                              f"{self.limits.body_timeout:g} s: answered 408 (--body-timeout)")
                await self._refuse(send, 408, f"the request body did not arrive within "
                                   f"{self.limits.body_timeout:g} s — send it at once")
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                chunks.clear()
                self.log.note("oversized requests", "body over the cap: answered 413 "
                              "(--max-body-bytes)")
                await self._refuse(send, 413, self._too_large(f"over {size:,}"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        chunks.clear()
        delivered = False

        async def replay() -> Message:
            nonlocal delivered, body
            if delivered:
                return await receive()
            delivered, message = True, {"type": "http.request", "body": body,
                                        "more_body": False}
            body = b""
            return message

        await self.app(scope, replay, send)


def throttled_exception_handler(log: OverloadLog) -> Callable[[Any, dict[str, Any]], None]:
    """An event-loop exception handler that logs each kind of failure once per interval
    (e.g. ``accept()`` out of file descriptors), instead of a traceback per event."""

    def handle(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        kind = context.get("message", "event loop error")
        log.note(kind, f"{type(exc).__name__}: {exc}" if exc else "see the server's limits")

    return handle
