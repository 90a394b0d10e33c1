"""Publish the trained model to the Hugging Face Hub, gated on improvement (and its Space).

Writes the model folder (safetensors + JSON + model card) from the DVC outputs, reads the card
already on the Hub (if the repo exists) and uploads only if this model's test micro-F1 is
higher, unless ``--force``. It fails closed: only the Hub's own 404 (no such repo, or no card
in it) counts as "no card"; any other failure to read the card (5xx, 403, no answer) stops
with a one-line error and uploads nothing. ``--dry-run --output DIR`` writes exactly the
folder it would upload and uploads nothing. ``--model accurate`` publishes the accurate
model (the SVM ensembled with sentence embeddings, from ``make accurate``'s outputs): its
folder and card, gated on its own test micro-F1 against the card on the Hub. ``--space
SPACE_ID`` also writes (and uploads) a Docker Space that serves the model with its web page.
``HF_TOKEN`` is read from the environment and never printed; ``HF_ENDPOINT`` points at
another Hub.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import RemoteError, TmdbGenresError


@dataclass(frozen=True)
class Decision:
    """Whether to upload, and the comparison that decided it (one line for the user)."""

    upload: bool
    message: str


def decide(new: float, current: float | None, repo_id: str, exists: bool, force: bool,
           kind: str = "fast", hub_kind: str = "fast") -> Decision:
    """Gate on improvement: upload only if ``new`` test micro-F1 beats the published one.

    Both figures are what the cards declare (this model's card, the Hub's card); ``kind``
    and ``hub_kind`` (``fast`` or ``accurate``) name the two models when either is accurate.
    """
    if not exists:
        return Decision(True, f"{repo_id} does not exist on the Hub yet: creating it with "
                              f"test micro-F1 {new:.4f}")
    if current is None:
        return Decision(True, f"{repo_id} has no card with a test micro-F1: publishing "
                              f"test micro-F1 {new:.4f}")
    if kind == hub_kind == "fast":
        compared = f"test micro-F1 {new:.4f} (this model) vs {current:.4f} ({repo_id} on the Hub)"
    else:
        compared = (f"test micro-F1 {new:.4f} (this {kind} model) vs {current:.4f} "
                    f"({repo_id} on the Hub, the {hub_kind} model)")
    if new > current:
        return Decision(True, f"{compared}: higher, publishing")
    if force:
        return Decision(True, f"{compared}: not higher, publishing anyway (--force)")
    return Decision(False, f"{compared}: not higher, nothing uploaded (--force publishes it)")


def published_score(api: Any, repo_id: str) -> tuple[bool, float | None]:
    """(repo exists, the test micro-F1 its current card declares, or None)."""
    exists, score, _ = published_card(api, repo_id)
    return exists, score


def published_card(api: Any, repo_id: str) -> tuple[bool, float | None, str]:
    """(repo exists, the test micro-F1 its current card declares or None, its model kind).

    Fails closed: only the Hub's answer that the repo or its card does not exist means "no
    card". Any other failure (a 5xx after the client's retries, a 403, no connection: what
    ``huggingface_hub`` reports as a ``LocalEntryNotFoundError``, itself an
    ``EntryNotFoundError``) is a one-line error: a Hub outage must never let a worse model
    overwrite a better one.
    """
    from huggingface_hub.errors import (
        LocalEntryNotFoundError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
    )

    from .card import card_micro_f1, card_model_kind
    from .remote import hub_error

    with tempfile.TemporaryDirectory(prefix="tmdb-genres-card-") as cache:
        try:
            card = api.hf_hub_download(repo_id, "README.md", repo_type="model", cache_dir=cache)
            text = Path(card).read_text(encoding="utf-8")
        except RepositoryNotFoundError as exc:
            if getattr(exc.response, "status_code", None) == 401 and "credentials" in (
                    exc.server_message or "").lower():
                raise hub_error(exc, repo_id, "read") from None
            return False, None, "fast"
        except RemoteEntryNotFoundError as exc:
            if getattr(exc.response, "status_code", None) == 404:
                return True, None, "fast"
            raise _unreadable_card(exc, repo_id) from None
        except Exception as exc:
            cause = exc.__cause__ if isinstance(exc, LocalEntryNotFoundError) else None
            raise _unreadable_card(cause or exc, repo_id) from None
    return True, card_micro_f1(text), card_model_kind(text)


def _unreadable_card(exc: BaseException, repo_id: str) -> RemoteError:
    """The one-line error for a card that could not be read: publishing fails closed (exit 1,
    nothing uploaded), whatever the Hub answered short of a real 404."""
    from .remote import hub_error

    error = hub_error(exc, repo_id, "read the card of")
    return RemoteError(f"{error.problem}; nothing uploaded (the published test micro-F1 "
                           "is unknown)", f"{error.remedy}; --force publishes without the "
                           "comparison")


def _token() -> str:
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise TmdbGenresError("HF_TOKEN is not set",
                              "export HF_TOKEN with a write token "
                              "(https://huggingface.co/settings/tokens), or use --dry-run")
    return token


def _upload(api: Any, folder: Path, repo_id: str, repo_type: str, message: str) -> str:
    """Create the repo if needed and upload ``folder`` as one commit; return the commit URL."""
    from .remote import hub_error

    try:
        api.create_repo(repo_id, repo_type=repo_type, exist_ok=True,
                        **({"space_sdk": "docker"} if repo_type == "space" else {}))
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type=repo_type,
                                 commit_message=message)
    except Exception as exc:
        raise hub_error(exc, repo_id, "upload to") from None
    return str(getattr(info, "commit_url", info))


def folder_extras(model: Any, root: Path, kind: str, wheel: Path | None,
                  build_dir: Path) -> tuple[dict[str, bytes], dict[str, Any], Path]:
    """What a published folder carries besides the model, and what its card says about it.

    The wheel of this tmdb-genres version (``wheel``, or built into ``build_dir``), which the
    card's install commands fetch from the repository; the pictures of ``make pictures`` when
    they were drawn from this model's metrics (the fast model's); and the example output of the
    card's load snippet (the fast model: the accurate one's needs its embedding engine).
    Returns (files, card info, the wheel).
    """
    from .. import paths
    from ..pictures import current_pictures
    from .card import EXAMPLE, PICTURE_CAPTIONS
    from .space import WHEEL, build_wheel

    wheel = wheel if wheel is not None else build_wheel(root, build_dir)
    files = {WHEEL: wheel.read_bytes()}
    card: dict[str, Any] = {"wheel": WHEEL}
    if kind == "fast":
        pictures = [p for p in current_pictures(root / "docs" / "img", root / paths.METRICS)
                    if p.name in PICTURE_CAPTIONS]
        files.update({f"images/{p.name}": p.read_bytes() for p in pictures})
        card["pictures"] = [p.name for p in pictures]
        card["example"] = model.decide(model.probabilities([model.text(*EXAMPLE)]))
    return files, card, wheel


def publish(repo_id: str, *, models: Path = paths.MODELS_DIR, root: Path = Path("."),
            force: bool = False, dry_run: bool = False, output: Path | None = None,
            space_id: str | None = None, space_output: Path | None = None,
            wheel: Path | None = None, say: Any = print, kind: str = "fast") -> bool:
    """Run the command; return whether anything was uploaded (or written, with ``dry_run``)."""
    from ..accurate.model import AccurateModel
    from ..model import GenreModel
    from .folder import ACCURATE, model_info, write_model_folder
    from .space import write_space_folder

    if "/" not in repo_id or repo_id.count("/") != 1:
        raise TmdbGenresError(f"{repo_id!r} is not a Hub repo id", "use OWNER/NAME")
    if kind == "accurate":  # its files only: publishing needs no embedding engine
        model: Any = AccurateModel.load(models, root / ACCURATE / "models", check_engine=False)
    elif kind == "fast":
        model = GenreModel.load(models / paths.VECTORIZER.name, models / paths.MODEL.name,
                                models / paths.THRESHOLDS.name)
    else:
        raise TmdbGenresError(f"unknown model {kind!r}", "use --model fast or --model accurate")
    info = {**model_info(root, kind), "repo_id": repo_id}
    new = float(info["metrics"]["test"]["micro_f1"])
    if dry_run:
        if output is None:
            raise TmdbGenresError("--dry-run needs --output DIR", "add --output DIR")
        with tempfile.TemporaryDirectory(prefix="tmdb-genres-publish-") as tmp:
            extra, card, wheel = folder_extras(model, root, kind, wheel, Path(tmp))
            written = write_model_folder(model, {**info, **card}, output, extra)
            say(f"publish: dry run, nothing uploaded; wrote {len(written)} files of the {kind} "
                f"model to {output} (test micro-F1 {new:.4f})")
            if space_id:
                target = space_output or output.with_name(output.name + "-space")
                files = write_space_folder(target, repo_id, space_id, root, wheel=wheel,
                                           kind=kind)
                say(f"publish: wrote the Space folder for {space_id} to {target} "
                    f"({len(files)} files)")
        return True

    import logging

    from huggingface_hub import HfApi

    from .remote import hub_error

    # the client's own warnings (one per retry of a failing request) stay out of the output:
    # a failure ends in one line of ours
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=_token())
    try:
        user = api.whoami()
    except Exception as exc:
        raise hub_error(exc, repo_id, "authenticate for") from None
    exists, current, hub_kind = published_card(api, repo_id)
    decision = decide(new, current, repo_id, exists, force, kind, hub_kind)
    say(f"publish: {decision.message}")
    if not decision.upload:
        return False
    commit = info.get("git_commit")
    message = (f"tmdb-genres {info['tmdb_genres_version']}"
               + (" (accurate model)" if kind == "accurate" else "")
               + f": test micro-F1 {new:.4f}"
               + (f" (project commit {commit[:12]})" if commit else ""))
    with tempfile.TemporaryDirectory(prefix="tmdb-genres-publish-") as tmp:
        folder = Path(tmp) / "model"
        extra, card, wheel = folder_extras(model, root, kind, wheel, Path(tmp) / "wheel")
        write_model_folder(model, {**info, **card}, folder, extra)
        url = _upload(api, folder, repo_id, "model", message)
        say(f"publish: uploaded {repo_id} as {user.get('name', 'this token')}: {url}")
        if space_id:
            space = write_space_folder(Path(tmp) / "space", repo_id, space_id, root,
                                       wheel=wheel, kind=kind)[0].parent
            url = _upload(api, space, space_id, "space", message)
            say(f"publish: uploaded the Space {space_id}: {url}")
    return True


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add this command's options to ``parser``."""
    parser.add_argument("repo_id", metavar="REPO_ID", help="Hub model repo, OWNER/NAME")
    parser.add_argument("--model", choices=("fast", "accurate"), default="fast",
                        help="fast (default): the TF-IDF SVM; accurate: the SVM ensembled with "
                        "sentence embeddings (from `make accurate`'s outputs under accurate/; "
                        "the card names the embedding package it needs)")
    parser.add_argument("--force", action="store_true",
                        help="publish even if the test micro-F1 is not higher than the Hub's")
    parser.add_argument("--dry-run", action="store_true",
                        help="write the folder it would upload (--output) and upload nothing")
    parser.add_argument("--output", type=Path, help="with --dry-run: the model folder to write")
    parser.add_argument("--space", metavar="SPACE_ID",
                        help="also write and upload a Docker Space (OWNER/NAME) serving the model")
    parser.add_argument("--space-output", type=Path,
                        help="with --dry-run --space: the Space folder (default OUTPUT-space)")
    parser.add_argument("--models", type=Path, default=paths.MODELS_DIR,
                        help="directory of the DVC outputs vectorizer.joblib, model.joblib "
                        "and thresholds.json (default models/)")
    parser.add_argument("--wheel", type=Path, help=argparse.SUPPRESS)  # tests: a built wheel
    return parser


def main(args: argparse.Namespace) -> None:
    """Run the publish command."""
    publish(args.repo_id, models=args.models, force=args.force, dry_run=args.dry_run,
            output=args.output, space_id=args.space, space_output=args.space_output,
            wheel=args.wheel, say=lambda line: print(line, file=sys.stdout, flush=True),
            kind=args.model)
