"""The ``tmdb-genres`` command line: one subcommand per pipeline stage, plus model use."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .errors import TmdbGenresError

# subcommand -> (module, one-line help). Each module has build_parser(parser) and main(args);
# modules import their heavy libraries inside functions, so building the parser stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "fetch": ("fetch", "stage 1: write the canonical raw snapshot from fetch.source"),
    "prepare": ("prepare", "stage 2: clean, build texts and split by hashed TMDB id"),
    "featurize": ("featurize", "stage 3: fit TF-IDF on train, transform every split"),
    "train": ("train", "stage 4: one-vs-rest linear SVM, calibrated on validation"),
    "evaluate": ("evaluate", "stage 5: apply thresholds, write metrics, plots, thresholds"),
    "embed": ("accurate.embed", "accurate model: embed every split's texts (text-hash cache)"),
    "head": ("accurate.head", "accurate model: per-genre head on embeddings, calibrated"),
    "ensemble": ("accurate.ensemble",
                 "accurate model: mix SVM and head probabilities (weights on validation)"),
    "predict": ("predict", "predict genres for a JSONL/CSV file or one --text"),
    "serve": ("serve.command", "HTTP service and web page over the model (needs the serve extra)"),
    "synth": ("sources.synthetic",
              "make a reproducible synthetic catalogue from real movies (scale benchmarks)"),
    "emulator": ("sources.emulator",
                 "serve a snapshot as a loopback TMDB API (with optional faults)"),
    "report": ("ci.report", "CI: metrics/params diff vs a base ref as markdown; one PR comment"),
    "publish": ("hub.publish",
                "publish the model (and a Space) to the Hugging Face Hub, gated on test micro-F1"),
    "refresh": ("ci.refresh",
                "CI: pull a newer TMDB snapshot, retrain, open one PR with the metric and drift "
                "report"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand's options."""
    parser = argparse.ArgumentParser(
        prog="tmdb-genres",
        description="Learn which genres a movie belongs to from its title and overview. "
        "The stage commands are what `dvc repro` runs (see dvc.yaml); run them from the "
        "project root.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f".{module_name}", __package__)
        command = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.build_parser(command)
        command.set_defaults(run=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tmdb-genres`` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except TmdbGenresError as exc:
        print(f"tmdb-genres {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tmdb-genres {args.command}: interrupted; no output was replaced", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
