"""The published model folder: what a Hugging Face Hub model repo of this project holds.

A folder is plain data, no pickle, so loading it needs neither joblib nor scikit-learn:

- ``model.safetensors``: every array: SVM weights and intercepts, Platt ``a``/``b``, and per
  TF-IDF block its idf and its n-gram trie (hash table and columns);
- ``vocabulary.json``: per block the n-grams in column order (and the word -> symbol table);
- ``genres.json``: the genre names, in column order;
- ``thresholds.json``: the per-genre thresholds in force and ``at_least_one``;
- ``config.json``: folder format, text settings (fields, title repeat), n-gram settings, and
  the metadata encoder's fitted levels and weight (when the model has metadata features);
- ``info.json``: :func:`model_info`: metrics, data snapshot, params, git commit;
- ``README.md``: the model card (see :mod:`tmdb_genres.hub.card`).

The accurate model's folder (``publish --model accurate``) holds all of the above for its SVM
part, and also ``head.safetensors`` (the embedding head's weights, intercepts and Platt
calibration), ``ensemble.json`` (the SVM's weight per genre) and ``accurate_thresholds.json``
(the ensemble's thresholds); ``config.json`` then says ``"model_kind": "accurate"`` and names
the embedding engine, package and version it needs (the ``embeddings`` extra).

The same inputs always give byte-identical files (sorted JSON keys, safetensors' fixed layout).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, paths
from ..errors import TmdbGenresError
from ..io import atomic_dir, dumps_json, read_json

FOLDER_FORMAT = 1  # version of the published folder layout

WEIGHTS = "model.safetensors"
VOCABULARY = "vocabulary.json"
GENRES = "genres.json"
THRESHOLDS = "thresholds.json"
CONFIG = "config.json"
INFO = "info.json"
CARD = "README.md"
FILES = (CARD, CONFIG, GENRES, INFO, WEIGHTS, THRESHOLDS, VOCABULARY)
HEAD_WEIGHTS = "head.safetensors"
ENSEMBLE = "ensemble.json"
ACCURATE_THRESHOLDS = "accurate_thresholds.json"
ACCURATE_FILES = (ACCURATE_THRESHOLDS, ENSEMBLE, HEAD_WEIGHTS)

_SUMMARY_KEYS = ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_precision",
                 "macro_recall", "samples_f1", "weighted_f1", "hamming_loss", "subset_accuracy",
                 "rows", "labels_per_movie", "predicted_per_movie")


# ----------------------------------------------------------------------------- model_info


ACCURATE = Path("accurate")  # the accurate model's DVC project, under the project root


def _read_metrics(root: Path, kind: str = "fast") -> dict[str, Any]:
    """The evaluate stage's metrics per split: summary figures and per-genre scores.

    The one place that knows where the metrics live, so a change of metric files is one edit.
    """
    if kind == "accurate":
        path = root / ACCURATE / paths.METRICS
        if not path.is_file():
            raise TmdbGenresError(f"metrics file {str(path)!r} not found",
                                  "run `make accurate` (or `dvc repro` in accurate/) first")
        return read_json(path)
    path = root / paths.METRICS
    if not path.is_file():
        raise TmdbGenresError(f"metrics file {str(path)!r} not found",
                              "run `dvc repro` (or `dvc pull`) in the project first")
    return read_json(path)


def _git_commit(root: Path) -> str | None:
    """The commit checked out at ``root``, or None outside a git work tree."""
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "--verify", "-q", "HEAD"],
                              capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def _release_dates(snapshot: Path) -> tuple[str | None, str | None]:
    """Earliest and latest ``release_date`` in the raw snapshot (None if it is absent)."""
    if not snapshot.is_file():
        return None, None
    low = high = None
    with open(snapshot, encoding="utf-8") as handle:
        for line in handle:
            date = json.loads(line).get("release_date") or None
            if date:
                low = date if low is None or date < low else low
                high = date if high is None or date > high else high
    return low, high


def _snapshot(root: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Label, movie count and release-date range of the data the model was trained on."""
    fetch_params = params.get("fetch") or {}
    manifest_path = root / paths.METRICS_DIR / "fetch_manifest.json"
    manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    prepare_path = root / paths.PREPARE_REPORT
    prepared = read_json(prepare_path) if prepare_path.is_file() else {}
    source = str(manifest.get("source") or fetch_params.get("source") or "")
    if manifest.get("source_kind") == "tmdb" or source == "tmdb":
        label = f"TMDB API snapshot {manifest.get('snapshot') or fetch_params.get('snapshot')}"
    elif manifest.get("sha256"):
        label = f"{Path(source).name} (sha256 {manifest['sha256'][:12]})"
    else:
        label = Path(source).name or "unknown"
    low, high = _release_dates(root / paths.RAW_SNAPSHOT)
    return {
        "label": label,
        "movies": int(prepared.get("rows_out") or manifest.get("movies") or 0),
        "movies_fetched": int(manifest.get("movies") or 0),
        "release_date_min": low or str(fetch_params.get("release_date_gte") or ""),
        "release_date_max": high or str(fetch_params.get("release_date_lte") or ""),
        "splits": dict(prepared.get("splits") or {}),
    }


def project_urls() -> dict[str, str]:
    """The ``[project.urls]`` of the installed tmdb-genres (label -> URL; empty if unknown)."""
    from importlib import metadata

    try:
        entries = metadata.metadata("tmdb-genres").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return {}
    pairs = (entry.split(",", 1) for entry in entries if "," in entry)
    return {label.strip(): url.strip() for label, url in sorted(pairs)}


def model_info(root: Path = Path("."), kind: str = "fast") -> dict[str, Any]:
    """What the card, the service's /health and /genres need about the model at ``root``.

    Read from the project's DVC outputs: ``metrics/*.json``, ``params.yaml``,
    ``models/thresholds.json``, the raw snapshot's release dates, and git. Holds no time or
    other process-specific value, so the same outputs always give the same info. For the
    ``accurate`` model the metrics and thresholds are the ensemble's (``accurate/metrics``,
    ``accurate/models``), with the side-by-side figures and the embedding package it needs.
    """
    import yaml

    from ..model import MODEL_FORMAT

    root = Path(root)
    params_path = root / paths.PARAMS
    if not params_path.is_file():
        raise TmdbGenresError(f"{str(params_path)!r} not found",
                              "run this from the project root (where params.yaml is)")
    with open(params_path, encoding="utf-8") as handle:
        params = yaml.safe_load(handle) or {}
    metrics = _read_metrics(root, kind)
    thresholds_path = (root / ACCURATE / paths.THRESHOLDS if kind == "accurate"
                       else root / paths.THRESHOLDS)
    chosen = read_json(thresholds_path)["thresholds"] if thresholds_path.is_file() else {}
    per_genre = {
        genre: {**scores, "threshold": chosen.get(genre)}
        for genre, scores in sorted(metrics["test"].get("per_genre", {}).items())
    }
    info: dict[str, Any] = {
        "model_format": MODEL_FORMAT,
        "folder_format": FOLDER_FORMAT,
        "tmdb_genres_version": __version__,
        "snapshot": _snapshot(root, params),
        "metrics": {
            split: {key: metrics[split][key] for key in _SUMMARY_KEYS if key in metrics[split]}
            for split in ("test", "validation") if split in metrics
        },
        "per_genre": per_genre,
        "params": params,
        "git_commit": _git_commit(root),
        "training_command": "dvc repro",
        "urls": project_urls(),
    }
    if kind == "accurate":
        info.update(_accurate_info(root))
    return info


def _accurate_info(root: Path) -> dict[str, Any]:
    """The accurate model's part of the info: kind, embedding package, params, side by side."""
    import yaml

    head_path = root / ACCURATE / "models" / "head.json"
    if not head_path.is_file():
        raise TmdbGenresError(f"head {str(head_path)!r} not found",
                              "run `make accurate` (or `dvc repro` in accurate/) first")
    embedding = read_json(head_path)["embedding"]
    compare_path = root / ACCURATE / paths.METRICS_DIR / "compare.json"
    compare = read_json(compare_path) if compare_path.is_file() else {}
    params_path = root / ACCURATE / paths.PARAMS
    accurate_params = {}
    if params_path.is_file():
        with open(params_path, encoding="utf-8") as handle:
            accurate_params = yaml.safe_load(handle) or {}
    return {
        "model_kind": "accurate",
        "embedding": embedding,
        "accurate_params": accurate_params,
        "compare": {name: {split: {k: v for k, v in figures.items() if k != "per_genre_f1"}
                           for split, figures in splits.items()}
                    for name, splits in sorted(compare.items())},
        "training_command": "make accurate",
    }


# ----------------------------------------------------------------------------- writing


def _block_arrays(model: Any) -> tuple[dict[str, np.ndarray], list[dict[str, Any]],
                                       dict[str, Any]]:
    """The vectoriser as named arrays, per-block settings and per-block vocabularies."""
    from ..vectorize import CharNgrams

    arrays: dict[str, np.ndarray] = {}
    settings: list[dict[str, Any]] = []
    vocabulary: dict[str, Any] = {}
    for block in model.vectorizer.blocks:
        counter, name = block.counter, block.name
        arrays[f"{name}.idf"] = np.asarray(block.idf, dtype=np.float64)
        arrays[f"{name}.trie.slot_keys"] = counter.trie.slot_keys
        arrays[f"{name}.trie.slot_children"] = counter.trie.slot_children
        arrays[f"{name}.trie.columns"] = counter.trie.columns
        entry: dict[str, Any] = {"name": name, "sublinear_tf": bool(block.sublinear_tf),
                                 "trie_base": int(counter.trie.base),
                                 "ngram_max": int(counter.ngram_max)}
        if isinstance(counter, CharNgrams):
            entry.update(kind="char", ngram_min=int(counter.ngram_min))
            arrays[f"{name}.char_symbols"] = counter.char_symbols
            vocabulary[name] = {"names": list(counter.names)}
        else:
            entry.update(kind="word")
            vocabulary[name] = {"names": list(counter.names), "symbols": dict(counter.symbols)}
        settings.append(entry)
    return arrays, settings, vocabulary


def _thresholds(model: Any) -> dict[str, Any]:
    """A model's thresholds in force, as written to JSON."""
    return {
        "at_least_one": bool(model.at_least_one),
        "thresholds": {g: float(t) for g, t in zip(model.genres, model.thresholds, strict=True)},
    }


def _accurate_files(model: Any) -> dict[str, bytes]:
    """The accurate model's own files: head weights (safetensors), ensemble and thresholds."""
    from safetensors.numpy import save

    from ..accurate.ensemble import ENSEMBLE_FORMAT
    from ..accurate.head import HEAD_FORMAT

    head = model.head
    arrays = {name: np.ascontiguousarray(np.asarray(head[name], dtype=np.float64))
              for name in ("coef", "intercept", "platt_a", "platt_b")}
    mix = {"format": ENSEMBLE_FORMAT,
           "svm_weight": {g: float(w) for g, w in zip(model.genres, model.svm_weight,
                                                      strict=True)}}
    return {
        ACCURATE_THRESHOLDS: dumps_json(_thresholds(model)).encode("utf-8"),
        ENSEMBLE: dumps_json(mix).encode("utf-8"),
        HEAD_WEIGHTS: save(dict(sorted(arrays.items())),
                           metadata={"format": f"tmdb-genres-head/{HEAD_FORMAT}"}),
    }


def folder_files(model: Any, info: dict[str, Any]) -> dict[str, bytes]:
    """Every file of the folder, by name, as bytes (nothing is written).

    ``model`` is a GenreModel, or an AccurateModel (its SVM part is written as the fast
    model's files, and its head, ensemble weights and thresholds beside them).
    """
    from safetensors.numpy import save

    from .card import model_card

    accurate = getattr(model, "kind", "fast") == "accurate"
    full, model = model, (model.svm if accurate else model)
    arrays, blocks, vocabulary = _block_arrays(model)
    arrays.update(
        coef=np.ascontiguousarray(model.coef, dtype=np.float32),
        intercept=np.asarray(model.intercept, dtype=np.float64),
        platt_a=np.asarray(model.platt_a, dtype=np.float64),
        platt_b=np.asarray(model.platt_b, dtype=np.float64),
    )
    arrays = {key: np.ascontiguousarray(value) for key, value in sorted(arrays.items())}
    config = {
        "library": "tmdb-genres",
        "folder_format": FOLDER_FORMAT,
        "model_format": info.get("model_format"),
        "text_fields": list(model.text_fields),
        "title_repeat": int(model.title_repeat),
        "blocks": blocks,
    }
    encoder = getattr(model.vectorizer, "metadata", None)
    if encoder is not None:  # the metadata block's fitted levels (after the TF-IDF columns)
        config["metadata"] = encoder.to_json()
    if accurate:
        config.update(model_kind="accurate", embedding=dict(full.head["embedding"]))
        if full.head.get("metadata"):  # the head's own metadata encoder (after the embedding)
            config["head_metadata"] = full.head["metadata"]
    thresholds = _thresholds(model)
    text = {
        CONFIG: dumps_json(config),
        GENRES: dumps_json(list(model.genres)),
        INFO: dumps_json(info),
        THRESHOLDS: dumps_json(thresholds),
        VOCABULARY: dumps_json(vocabulary),
        CARD: model_card(info, _thresholds(full)),
    }
    files = {name: content.encode("utf-8") for name, content in text.items()}
    if accurate:
        files.update(_accurate_files(full))
    # one metadata key: safetensors keeps metadata in a hash map whose order varies by process
    files[WEIGHTS] = save(arrays, metadata={"format": f"tmdb-genres/{FOLDER_FORMAT}"})
    return dict(sorted(files.items()))


def write_model_folder(model: Any, info: dict[str, Any], out_dir: Path,
                       extra: dict[str, bytes] | None = None) -> list[Path]:
    """Atomically write the Hub folder for ``model`` (a GenreModel or AccurateModel) and
    ``info``.

    Arrays go to ``model.safetensors``; vocabularies, genres, thresholds, text settings and
    info to JSON; the model card to ``README.md``; ``extra`` files (relative path -> bytes:
    the wheel the card installs, the pictures it shows) beside them. ``out_dir`` is replaced as
    a whole, only once every file is written. Returns the written paths, sorted.
    """
    files = dict(sorted({**folder_files(model, info), **(extra or {})}.items()))
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for name, content in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(content)
    return [out_dir / name for name in files]


# ----------------------------------------------------------------------------- loading


def _unreadable(path: Path, what: str) -> TmdbGenresError:
    return TmdbGenresError(f"model folder {str(path)!r}: {what}",
                           "write it again with `tmdb-genres publish --dry-run --output DIR` "
                           "or download it again")


def folder_kind(path: str | Path) -> str:
    """``fast`` or ``accurate``: the model a folder holds (``fast`` if it cannot tell)."""
    try:
        config = read_json(Path(path) / CONFIG)
    except Exception:  # loading the folder reports what is wrong with it
        return "fast"
    return str(config.get("model_kind", "fast")) if isinstance(config, dict) else "fast"


def load_model_folder(path: str | Path, encoder: Any = None) -> tuple[Any, dict[str, Any]]:
    """The GenreModel (or AccurateModel) and info of a folder from :func:`write_model_folder`.

    Needs numpy, scipy and safetensors only; an accurate model's folder also needs the
    embedding package and version its ``config.json`` names (the ``embeddings`` extra), or
    an ``encoder`` (a callable embedding a list of texts) given here. A missing or unreadable
    folder, or one of another ``FOLDER_FORMAT``, is a one-line :class:`TmdbGenresError`.
    """
    from ..metadata import MetadataEncoder
    from ..model import GenreModel
    from ..vectorize import CharNgrams, NgramTrie, TfidfBlock, Vectorizer, WordNgrams

    folder = Path(path)
    if not folder.is_dir():
        raise TmdbGenresError(f"model folder {str(folder)!r} not found",
                              "pass a folder written by `tmdb-genres publish --dry-run "
                              "--output DIR` or downloaded from the Hub")
    missing = [name for name in FILES if name != CARD and not (folder / name).is_file()]
    if missing:
        raise _unreadable(folder, f"missing {', '.join(missing)}")
    try:
        config = read_json(folder / CONFIG)
        found = config.get("folder_format") if isinstance(config, dict) else None
        if found != FOLDER_FORMAT:
            raise TmdbGenresError(
                f"model folder {str(folder)!r} has folder format {found!r}, this tmdb-genres "
                f"({__version__}) reads format {FOLDER_FORMAT}",
                "install the tmdb-genres version that wrote it, or publish the model again")
        from safetensors.numpy import load_file

        arrays = load_file(str(folder / WEIGHTS))
        vocabulary = read_json(folder / VOCABULARY)
        genres = [str(g) for g in read_json(folder / GENRES)]
        chosen = read_json(folder / THRESHOLDS)
        info = read_json(folder / INFO)
        blocks = []
        for entry in config["blocks"]:
            name = entry["name"]
            trie = NgramTrie(int(entry["trie_base"]), arrays[f"{name}.trie.slot_keys"],
                             arrays[f"{name}.trie.slot_children"],
                             arrays[f"{name}.trie.columns"])
            names = list(vocabulary[name]["names"])
            if entry["kind"] == "char":
                counter: Any = CharNgrams(int(entry["ngram_min"]), int(entry["ngram_max"]),
                                          names, arrays[f"{name}.char_symbols"], trie)
            else:
                counter = WordNgrams(int(entry["ngram_max"]), names,
                                     dict(vocabulary[name]["symbols"]), trie)
            blocks.append(TfidfBlock(name, counter, arrays[f"{name}.idf"],
                                     bool(entry["sublinear_tf"])))
        model = GenreModel(
            text_fields=tuple(config["text_fields"]),
            title_repeat=int(config["title_repeat"]),
            vectorizer=Vectorizer(tuple(blocks), None if config.get("metadata") is None
                                  else MetadataEncoder.from_json(config["metadata"])),
            genres=genres,
            coef=arrays["coef"],
            intercept=arrays["intercept"],
            platt_a=arrays["platt_a"],
            platt_b=arrays["platt_b"],
            thresholds=np.array([float(chosen["thresholds"][g]) for g in genres]),
            at_least_one=bool(chosen["at_least_one"]),
        )
    except TmdbGenresError:
        raise
    except Exception as exc:  # truncated, hand-edited or foreign files: all alike
        raise _unreadable(folder, f"{type(exc).__name__}: {exc}") from None
    if model.coef.shape != (len(genres), len(model.vectorizer.feature_names)):
        raise _unreadable(folder, f"weights of shape {model.coef.shape} do not match "
                                  f"{len(genres)} genres and the vocabulary")
    if config.get("model_kind", "fast") == "accurate":
        return _load_accurate(folder, config, model, encoder), info
    return model, info


def _load_accurate(folder: Path, config: dict[str, Any], svm: Any, encoder: Any) -> Any:
    """The AccurateModel of a folder whose SVM part is ``svm`` (one-line errors)."""
    from ..accurate.embeddings import load_encoder
    from ..accurate.head import HEAD_FORMAT
    from ..accurate.model import AccurateModel, require_engine
    from ..metadata import MetadataEncoder

    missing = [name for name in ACCURATE_FILES if not (folder / name).is_file()]
    if missing:
        raise _unreadable(folder, f"missing {', '.join(missing)} of the accurate model")
    try:
        from safetensors.numpy import load_file

        embedding = dict(config["embedding"])
        arrays = load_file(str(folder / HEAD_WEIGHTS))
        head = {"format": HEAD_FORMAT, "genres": list(svm.genres), "embedding": embedding,
                "metadata": config.get("head_metadata"),
                **{name: arrays[name] for name in ("coef", "intercept", "platt_a", "platt_b")}}
        if head["metadata"]:
            MetadataEncoder.from_json(head["metadata"])  # one that cannot be read fails here
        mix = read_json(folder / ENSEMBLE)
        chosen = read_json(folder / ACCURATE_THRESHOLDS)
        svm_weight = np.array([float(mix["svm_weight"][g]) for g in svm.genres])
        thresholds = np.array([float(chosen["thresholds"][g]) for g in svm.genres])
        at_least_one = bool(chosen["at_least_one"])
    except Exception as exc:  # truncated, hand-edited or foreign files: all alike
        raise _unreadable(folder, f"{type(exc).__name__}: {exc}") from None
    if head["coef"].ndim != 2 or len(head["coef"]) != len(svm.genres):
        raise _unreadable(folder, f"head weights of shape {head['coef'].shape} do not match "
                                  f"{len(svm.genres)} genres")
    if encoder is None:
        require_engine(embedding)
        encoder = load_encoder(embedding["engine"])
    return AccurateModel(svm=svm, head=head, svm_weight=svm_weight, thresholds=thresholds,
                         at_least_one=at_least_one, encoder=encoder)
