"""The documentation: the site builds with --strict, its CLI page is the parsers' own help, the
README's links and pictures exist, and the pictures show the committed model."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tmdb_genres import cli, pictures
from tmdb_genres.genres import TMDB_GENRES

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="needs the docs extra (pip install -e '.[docs]'; make setup has it)")
def test_the_site_builds_strict_with_the_generated_cli_reference(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=300, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""})
    assert done.returncode == 0, done.stderr[-3000:]  # no broken link, anchor or orphan page
    page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    for name in cli.COMMANDS:
        assert f"usage: tmdb-genres {name}" in page, name
    assert (site / "img" / "per_genre_f1.svg").is_file()


def test_the_cli_reference_is_every_commands_help_users_commands_first() -> None:
    reference = cli.cli_reference()
    order = [line[3:] for line in reference.splitlines() if line.startswith("## ")]
    assert order[0] == "tmdb-genres" and order[1:4] == ["predict", "serve", "publish"]
    assert set(order[1:]) == set(cli.COMMANDS)
    parser = cli.build_parser()
    assert parser.format_help().rstrip() in reference
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():  # no reST double backticks or roles in --help
        assert "``" not in command.format_help() and ":func:" not in command.format_help(), name
    assert reference.count("example:") == len(cli.COMMANDS)
    assert max(len(line) for line in reference.splitlines()) <= 100  # fits a terminal


def test_help_names_the_defaults() -> None:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        cli.main(["evaluate", "--help"])
    assert "(default: metrics/metrics.json)" in out.getvalue()


def test_every_genre_has_a_precision_recall_plot_titled_by_its_name() -> None:
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    titled = {}
    for entry in plots:
        (plot_id, props), = entry.items()
        if plot_id.startswith(pictures.PR_PREFIX):
            (source, field), = props["y"].items()
            assert field == "precision" and props["x"] == "recall"
            titled[Path(source).stem] = props["title"]
    assert titled == {g: f"Precision-recall on test: {g}" for g in TMDB_GENRES.values()}


def test_dvc_plots_html_template_draws_offline() -> None:
    config = (ROOT / ".dvc" / "config").read_text(encoding="utf-8")
    template = re.search(r"html_template\s*=\s*(\S+)", config)
    assert template, ".dvc/config sets no plots.html_template"
    html = (ROOT / ".dvc" / template.group(1)).read_text(encoding="utf-8")
    assert "{plot_divs}" in html and "<script src" not in html and "cdn." not in html
    for library in ("vega 5.20.2", "vega-lite 5.2.0", "vega-embed 6.18.2"):
        assert f"/* {library} */" in html


def test_readme_links_and_pictures_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert any(t.endswith(".svg") for t in local) and any(t.endswith(".png") for t in local)
    missing = [t for t in local if not (ROOT / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"
    assert len(readme.splitlines()) <= 320  # a guide, not the design log


def test_committed_pictures_show_the_committed_model() -> None:
    found = pictures.current_pictures(ROOT / "docs" / "img", ROOT / "metrics" / "metrics.json")
    assert sorted(p.name for p in found) == sorted([*pictures.PICTURES.values(),
                                                    pictures.PR_PICTURE]), (
        "docs/img was drawn from other metrics: run `make pictures` after `dvc repro`")


def test_pictures_of_other_metrics_are_not_current(tmp_path: Path) -> None:
    img = tmp_path / "img"
    img.mkdir()
    (img / "a.svg").write_text("<svg/>")
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"test": {}}')
    (img / pictures.RECORD).write_text(json.dumps({
        "metrics_sha256": pictures.metrics_digest(metrics), "pictures": ["a.svg"]}))
    assert pictures.current_pictures(img, metrics) == [img / "a.svg"]
    metrics.write_text('{"test": {"micro_f1": 0.7}}')  # a retrained model
    assert pictures.current_pictures(img, metrics) == []


def test_precision_recall_grid_keeps_each_genres_spec_and_title() -> None:
    spec = {"$schema": "s", "title": "Precision-recall on test: War", "mark": "line",
            "data": {"values": [{"recall": 0.1, "precision": 0.9}]}}
    grid = pictures.precision_recall_grid({"precision_recall_war": spec, "confusion": {}})
    (panel,) = grid["concat"]
    assert panel["title"] == spec["title"] and panel["data"] == spec["data"]
    assert "$schema" not in panel


def test_a_command_missing_its_extra_says_which_extra_in_one_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def needs_joblib(args) -> None:
        raise ModuleNotFoundError("No module named 'joblib'", name="joblib")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices["predict"].set_defaults(run=needs_joblib)
    assert cli.main(["predict", "--text", "x"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'joblib' is not installed" in err
    assert "pip install 'tmdb-genres[pipeline]'" in err
