"""The reusable action (action.yml): what its file promises, and its `run:` steps run locally.

The steps are taken from action.yml and run with bash as the runner runs a composite action
(`workflow_files.run_action`): the inputs over their defaults, each step's `env:` and
`working-directory:` evaluated, `github.action_path` this repository. The fixture project
`apply_project` (tests/fixtures/README.md) is the project under test: one migration fails to
apply over pre-release data, one loses data, one is clean.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.workflows.workflow_files import (
    ACTION,
    EXPRESSION,
    REPO_ROOT,
    action_inputs,
    action_run_blocks,
    load,
    run_action,
)

INPUTS = {"database-url": "", "python": "python", "working-directory": ".", "args": ""}
APPLY_PROJECT = "tests/fixtures/apply_project"
# The fixture's manage.py computes its settings module, which the tool cannot read from it.
APPLY_SETTINGS = "--settings apply_project.settings"
FAILED_MIGRATION = "required_without_backfill/migrations/0002_member_nickname_required.py"
# The repository's package importable as a project that pins the tool has it (no install).
WITH_THE_PACKAGE = {"PYTHONPATH": str(REPO_ROOT)}


# ---------------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------------


def test_action_is_composite_with_four_documented_inputs():
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    assert action_inputs() == INPUTS
    for name, spec in action["inputs"].items():
        assert spec["required"] is False, name
        assert len(spec["description"]) > 40, name
    assert "shlex" in action["inputs"]["args"]["description"]  # how the args are split


def test_inputs_reach_the_shell_only_through_env():
    """No expression inside a script (it would be pasted into the text bash reads); every env
    expression is a declared input or the action's path; every input is used."""
    blocks = list(action_run_blocks())
    assert [block.step for block in blocks] == [
        "Install migration-check into the project's Python when it lacks it", "Run migration-check"]
    used = set()
    for block in blocks:
        assert "${{" not in block.script, block.where
        for value in block.env.values():
            (expression,) = EXPRESSION.findall(value)
            assert EXPRESSION.fullmatch(value), value
            if expression != "github.action_path":
                assert expression.startswith("inputs."), expression
                used.add(expression.removeprefix("inputs."))
    for step in load(ACTION)["runs"]["steps"]:
        assert step["shell"] == "bash"
        assert step["working-directory"] == "${{ inputs.working-directory }}"
        used.add("working-directory")
    assert used == set(INPUTS)


# ---------------------------------------------------------------------------------------------
# The steps, run (no server needed: each run stops before the tool starts one)
# ---------------------------------------------------------------------------------------------


def test_an_unbalanced_quote_in_args_is_one_error_line_and_exit_2(tmp_path):
    result = run_action(REPO_ROOT, {"args": "--app 'shop"}, env=WITH_THE_PACKAGE)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "::error title=migration-check::the args input cannot be split: No closing quotation" in (
        result.stdout.splitlines())
    assert "Traceback" not in result.stderr


def test_a_python_that_does_not_exist_is_one_error_line_and_exit_2():
    result = run_action(REPO_ROOT, {"python": "no-such-python3"})
    assert result.returncode == 2
    assert result.stdout.strip() == (
        "::error title=migration-check::the python input names no Python here: no-such-python3")


def test_a_quoted_argument_reaches_the_tool_as_one_word():
    """`--settings 'no such.settings'`: the tool is given the module name with its space, and
    refuses it before starting any server (exit 2, one line)."""
    result = run_action(REPO_ROOT, {"working-directory": APPLY_PROJECT,
                                    "args": "--settings 'no such.settings' --depth 1"}, env=WITH_THE_PACKAGE)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "migration-check is already importable in python" in result.stdout
    assert "settings module 'no such.settings' is not a Python module name" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_shell_syntax_in_the_inputs_is_never_run(tmp_path):
    """What a shell would execute reaches the tool as plain words (which it refuses)."""
    marker = tmp_path / "ran"
    result = run_action(REPO_ROOT, {
        "working-directory": APPLY_PROJECT,
        "database-url": f'"; touch {marker}; echo "',
        "args": f"$(touch {marker}) `touch {marker}` ; touch {marker}",
    }, env=WITH_THE_PACKAGE)
    assert result.returncode == 2, result.stdout + result.stderr
    assert not marker.exists()
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------------
# End to end on PostgreSQL 15
# ---------------------------------------------------------------------------------------------


def github_environment(tmp_path: Path) -> dict[str, str]:
    """What the runner gives every step: the tool writes the summary and the annotations then."""
    summary = tmp_path / "step-summary.md"
    summary.write_text("")
    return {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_WORKSPACE": str(REPO_ROOT)}


@pytest.mark.slow
def test_a_failing_project_exits_1_with_its_reports_summary_and_annotations(tmp_path, pg_server_url):
    reports = tmp_path / "reports"
    result = run_action(REPO_ROOT, {
        "database-url": pg_server_url,
        "working-directory": APPLY_PROJECT,
        "args": f"{APPLY_SETTINGS} --depth 2 --report-json '{reports}/migrations.json' "
                f"--junit-xml '{reports}/migrations-junit.xml'",
    }, env={**WITH_THE_PACKAGE, **github_environment(tmp_path)}, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-4000:]
    report = json.loads((reports / "migrations.json").read_text())
    assert report["ok"] is False
    assert report["database"]["ephemeral"] is False  # the server of the database-url input
    verdicts = {(app["app"], m["name"]): m["apply"] for app in report["apps"] for m in app["migrations"]}
    assert verdicts[("required_without_backfill", "0002_member_nickname_required")] == "failed"
    assert verdicts[("column_with_default", "0002_member_joined")] == "passed"
    assert (reports / "migrations-junit.xml").read_text().startswith("<?xml")
    # The annotation points at the migration file, from the repository root ($GITHUB_WORKSPACE).
    assert any(line.startswith("::error") and f"file={APPLY_PROJECT}/{FAILED_MIGRATION}" in line
               for line in result.stdout.splitlines()), result.stdout[-4000:]
    summary = (tmp_path / "step-summary.md").read_text()
    assert "required_without_backfill" in summary and "0002_member_nickname_required" in summary
    # The password of the URL never reaches the log.
    assert "@" in pg_server_url and pg_server_url.split("@")[0].rsplit(":", 1)[-1] not in output


def venv_without_the_tool(root: Path) -> Path:
    """A new virtualenv that sees this environment's Django and driver (a .pth file) but not
    migration_check: the action must install it from its own path."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "project_requirements.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


@pytest.mark.slow
def test_the_action_installs_itself_into_a_python_that_lacks_it(tmp_path, pg_server_url):
    python = venv_without_the_tool(tmp_path)
    probe = [str(python), "-c", "import migration_check"]
    assert subprocess.run(probe, cwd=tmp_path, capture_output=True).returncode == 1
    result = run_action(REPO_ROOT, {
        "database-url": pg_server_url,
        "python": str(python),
        "working-directory": APPLY_PROJECT,
        # Its 0002 breaks the previous release's inserts (a Python-side default): accepted here.
        "args": f"{APPLY_SETTINGS} --app column_with_default --allow-breaking column_with_default.0002_member_joined "
                f"--report-json '{tmp_path}/report.json'",
    }, env={"PIP_DISABLE_PIP_VERSION_CHECK": "1"}, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "already importable" not in result.stdout
    installed = subprocess.run([str(python), "-c", "import migration_check; print(migration_check.__file__)"],
                               cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(tmp_path / "venv") in installed
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["ok"] is True
    assert [app["app"] for app in report["apps"]] == ["column_with_default"]
    assert os.path.exists(tmp_path / "venv" / "bin" / "migration-check")
