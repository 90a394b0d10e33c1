"""Publishing the trained model: the folder format, its model card, the Space and the upload."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..accurate.model import AccurateModel
    from ..model import GenreModel


def from_pretrained(repo_id_or_path: str | Path, revision: str | None = None,
                    encoder: Any = None) -> GenreModel | AccurateModel:
    """Load a published model folder: a local path, or a Hugging Face Hub repo id.

    A repo id is downloaded with ``huggingface_hub.snapshot_download`` (cached; the
    ``HF_ENDPOINT`` and ``HF_TOKEN`` environment variables apply). Needs neither joblib
    nor scikit-learn. The folder of the accurate model gives an AccurateModel, which needs
    the ``embeddings`` extra (the package and version its card names) unless an ``encoder``
    is given.
    """
    from .folder import load_model_folder
    from .remote import download_model_folder

    local = Path(repo_id_or_path)
    if revision is None and local.is_dir():
        return load_model_folder(local, encoder)[0]
    return load_model_folder(download_model_folder(str(repo_id_or_path), revision), encoder)[0]
