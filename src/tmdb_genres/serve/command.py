"""Serve the model over HTTP: a JSON API (``POST /predict``, ``GET /genres``, ``GET /health``,
OpenAPI docs at ``/docs``) and a page at ``/`` that classifies as you type.

The model is the one ``dvc repro`` wrote to ``models/`` (``--models``; ``--model accurate``
adds the accurate model's head and ensemble from ``accurate/models/``, which needs the
``embeddings`` extra) or a published model folder (``--model-dir``, the files of the Hugging
Face Hub repository; its files say which model it is). It is loaded once,
before the server listens: a missing or unreadable model is a one-line error at start-up.
One process holds it: a short single movie is answered on the event loop, long ones and
batches on ``--workers`` threads that share the model. What a client may cost the service is
bounded (body size, request head size, slow clients, open connections: see
:mod:`.limits`); every bound is an option below. Needs the ``serve`` extra:
``pip install -e '.[serve]'``.
"""

from __future__ import annotations

import argparse
import dataclasses
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import TmdbGenresError
from .limits import Limits, file_limit


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this command's options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--models", type=Path, default=paths.MODELS_DIR,
                        help="directory with the model `dvc repro` wrote (default models/); "
                        "metrics and params are read from its parent directory")
    source.add_argument("--model-dir", type=Path,
                        help="a published model folder (as on the Hub) instead of --models")
    parser.add_argument("--model", choices=("fast", "accurate"), default=None,
                        help="fast (default): the TF-IDF SVM; accurate: the SVM ensembled with "
                        "sentence embeddings (needs the embeddings extra and `make accurate`'s "
                        "outputs under accurate/models/ beside --models' parent). With "
                        "--model-dir the folder decides")
    parser.add_argument("--accurate-models", type=Path, default=None,
                        help="with --model accurate: the directory with head.json, "
                        "ensemble.json and thresholds.json (default accurate/models beside "
                        "--models)")
    parser.add_argument("--workers", type=int, default=2,
                        help="threads that run batch requests, sharing the one model in "
                        "this one process (default 2)")
    defaults = Limits()
    limits = parser.add_argument_group(
        "limits", "what one client may cost the service (each overload is logged at most once "
        "per --log-interval)")
    limits.add_argument("--max-body-bytes", type=int, default=defaults.max_body_bytes,
                        help="a POST body over this is refused with 413, having read at most "
                        f"this much (default {defaults.max_body_bytes:,}: a full batch fits)")
    limits.add_argument("--max-header-bytes", type=int, default=defaults.max_header_bytes,
                        help="a request head (request line and headers) over this is answered "
                        f"431 (default {defaults.max_header_bytes:,})")
    limits.add_argument("--max-url-bytes", type=int, default=defaults.max_url_bytes,
                        help="a request line over this is answered 414 "
                        f"(default {defaults.max_url_bytes:,})")
    limits.add_argument("--max-connections", type=int, default=defaults.max_connections,
                        help="open connections at most; one more is answered 503 and closed "
                        f"(default {defaults.max_connections:,}; lowered to what the open-files "
                        "limit allows)")
    limits.add_argument("--header-timeout", type=float, default=defaults.header_timeout,
                        help="seconds a client has to send a request's head, from the "
                        "connection (or the previous response) on; then 408 and close "
                        f"(default {defaults.header_timeout:g})")
    limits.add_argument("--body-timeout", type=float, default=defaults.body_timeout,
                        help="seconds a client has to send a request's body once its head "
                        f"arrived; then 408 and close (default {defaults.body_timeout:g})")
    limits.add_argument("--keep-alive-timeout", type=float,
                        default=defaults.keep_alive_timeout,
                        help="seconds an idle keep-alive connection stays open "
                        f"(default {defaults.keep_alive_timeout:g})")
    limits.add_argument("--log-interval", type=float, default=defaults.log_interval,
                        help="seconds between two log lines about the same kind of overload "
                        f"(default {defaults.log_interval:g})")
    return parser


def limits_from(args: argparse.Namespace) -> Limits:
    """The :class:`Limits` the options ask for (a one-line error for a value out of range)."""
    values = {name: getattr(args, name) for name in Limits.__dataclass_fields__}
    for name, value in values.items():
        if not value > 0:
            option = "--" + name.replace("_", "-")
            raise TmdbGenresError(f"{option} must be positive, got {value}",
                                  f"pass {option} above 0 (default {getattr(Limits(), name)})")
    return Limits(**values)


def load(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The model and its info, from ``--model-dir`` or ``--models`` (one-line errors)."""
    from ..accurate.model import load_model

    kind = getattr(args, "model", None)
    if args.model_dir is not None:
        from ..hub.folder import folder_kind, load_model_folder

        found = folder_kind(args.model_dir)
        if kind is not None and kind != found and (args.model_dir / "config.json").is_file():
            raise TmdbGenresError(f"--model {kind}, but {str(args.model_dir)!r} holds the "
                                  f"{found} model",
                                  "leave out --model with --model-dir (the folder decides)")
        return load_model_folder(args.model_dir)
    kind = kind or "fast"
    root = args.models.parent
    accurate = getattr(args, "accurate_models", None) or root / "accurate" / "models"
    model = load_model(kind, args.models, accurate)
    from ..hub.folder import model_info

    try:
        info = model_info(root, kind)
    except TmdbGenresError as exc:  # a model without its metrics still serves
        print(f"tmdb-genres serve: warning: no metrics for /health and /genres: {exc}",
              file=sys.stderr)
        info = {}
    return model, info


def main(args: argparse.Namespace) -> None:
    """Run ``tmdb-genres serve`` until interrupted."""
    if args.workers < 1:
        raise TmdbGenresError(f"--workers must be at least 1, got {args.workers}",
                              "pass --workers 1 or more")
    if not 0 <= args.port <= 65535:
        raise TmdbGenresError(f"--port must be in 0..65535, got {args.port}",
                              "pass a free port, e.g. --port 8000")
    try:
        import uvicorn  # noqa: F401

        from .app import create_app
    except ImportError as exc:
        raise TmdbGenresError(f"the service needs the 'serve' extra ({exc})",
                              "pip install -e '.[serve]'") from None
    limits = limits_from(args)
    model, info = load(args)
    model.probabilities_one("warm up")  # build the single-text tables before listening
    app = create_app(model, info, worker_threads=args.workers)
    sock = listen_socket(args.host, args.port)
    fits = file_limit(limits.max_connections)
    if fits < limits.max_connections:
        print(f"tmdb-genres serve: warning: the open-files limit allows {fits:,} connections, "
              f"not --max-connections {limits.max_connections:,}: the cap is {fits:,}",
              file=sys.stderr)
        limits = dataclasses.replace(limits, max_connections=fits)
    port = sock.getsockname()[1]
    print(f"tmdb-genres serve: the {getattr(model, 'kind', 'fast')} model, "
          f"{len(model.genres)} genres, {args.workers} worker thread"
          f"{'s' if args.workers > 1 else ''}, ready {seconds_since_start():.2f} s after "
          f"start on http://{args.host}:{port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    server(app, limits).run(sockets=[sock])


def server(app: Any, limits: Limits) -> Any:
    """A uvicorn server for ``app`` within ``limits`` (see :mod:`.limits`)."""
    import uvicorn

    from .limits import BodyLimit, OverloadLog, protocol_class, throttled_exception_handler

    log = OverloadLog(limits.log_interval)
    config = uvicorn.Config(BodyLimit(app, limits, log), log_level="warning", access_log=False,
                            lifespan="off", http=protocol_class(limits, log),
                            timeout_keep_alive=limits.keep_alive_timeout,
                            h11_max_incomplete_event_size=limits.max_header_bytes + 1)

    class LimitedServer(uvicorn.Server):  # type: ignore[misc]
        async def serve(self, sockets: list[socket.socket] | None = None) -> None:
            import asyncio

            asyncio.get_running_loop().set_exception_handler(throttled_exception_handler(log))
            await super().serve(sockets)

    return LimitedServer(config)


def listen_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: any free port), or a one-line error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise TmdbGenresError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                              "pick another --host/--port or stop what is using it") from None
    sock.set_inheritable(True)
    return sock


def seconds_since_start() -> float:
    """Seconds since this process started (what a user waits for)."""
    import psutil

    return time.time() - psutil.Process().create_time()
