"""MkDocs hook: fill docs/cli.md with every command's ``--help``, from the argparse parsers.

The reference is generated on every build, so it cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- cli-reference -->"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace the marker on the CLI page with the generated reference."""
    if MARKER not in markdown:
        return markdown
    from tmdb_genres.cli import cli_reference

    return markdown.replace(MARKER, cli_reference())
