"""The shell the workflows run, run here with bash against the test PostgreSQL 15 server.

Each block is taken from the workflow file itself (not copied into the test), so a typo in a
command fails here before it fails on GitHub. Blocks run as the runner runs them
(`bash --noprofile --norc -eo pipefail`), in a temporary folder, never in the checkout: the
`.env` they write must not land in other people's working tree. Only the URLs of the GitHub
service containers are swapped for the test server's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from xml.etree import ElementTree

import pytest

from migration_check.postgres.address import read_dotenv_value
from tests.migration_check.project.test_selection import index_migration
from tests.pg_plugin import existing_databases
from tests.workflows.workflow_files import CI, MIGRATION_TESTS, REPO_ROOT, find_step, run_action, run_bash

SERVICE_URL = "postgres://postgres:postgres@localhost:5432/migration_test_db"
BACKUP_SERVICE_URL = "postgres://postgres:postgres@localhost:5432/postgres"
PULL_REQUEST_EXPRESSION = (
    "${{ github.event_name == 'pull_request' && format('--since=origin/{0}', github.base_ref) || '' }}")
PROJECT_FILES = ("manage.py", "hello_world", "upstream", "scripts", "migration_check", ".env.example")


def env_block() -> str:
    return find_step(MIGRATION_TESTS, "migration-tests", "Create .env from .env.example")["run"]


def dotenv_lines(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        match = re.match(r"(?:export\s+)?([A-Z_]+)=(.*)", line)
        if match:
            values.setdefault(match.group(1), []).append(match.group(2))
    return values




# ---------------------------------------------------------------------------------------------
# migration-tests.yml: the .env set-up
# ---------------------------------------------------------------------------------------------


def test_env_block_writes_the_service_url_a_random_key_and_debug(tmp_path):
    shutil.copy(REPO_ROOT / ".env.example", tmp_path / ".env.example")
    result = run_bash(env_block(), tmp_path)
    assert result.returncode == 0, result.stderr
    values = dotenv_lines(tmp_path / ".env")
    # The example's lines stay; the block's come last, and the last assignment is what is read.
    assert values["DATABASE_URL"][-1] == SERVICE_URL
    assert values["DEBUG"][-1] == "True"
    secret_key = values["SECRET_KEY"][-1]
    assert re.fullmatch(r"[0-9a-f]{64}", secret_key)
    assert read_dotenv_value(tmp_path / ".env", "SECRET_KEY") == secret_key
    # The key is masked in the job log before it is written anywhere.
    assert f"::add-mask::{secret_key}" in result.stdout.splitlines()
    # Everything else from the example is kept (issuer name, log level, ...).
    example = dotenv_lines(REPO_ROOT / ".env.example")
    for key in set(example) - {"DATABASE_URL", "SECRET_KEY", "DEBUG"}:
        assert values[key] == example[key], key


def test_env_block_gives_a_new_key_each_run(tmp_path):
    keys = []
    for attempt in range(2):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        shutil.copy(REPO_ROOT / ".env.example", folder / ".env.example")
        assert run_bash(env_block(), folder).returncode == 0
        keys.append(dotenv_lines(folder / ".env")["SECRET_KEY"][-1])
    assert keys[0] != keys[1]


def test_env_block_overrides_example_values_for_the_tool_and_django(tmp_path):
    """The block appends its values; the tool and Django (python-dotenv) both keep a key's last
    assignment, so both read the service's URL, the new key and DEBUG=True."""
    from dotenv import dotenv_values

    (tmp_path / ".env.example").write_text(
        "DATABASE_URL=sqlite:///db.sqlite3\n"
        "export SECRET_KEY=example-key\n"
        "DEBUG=False\n"
        "# DATABASE_URL=postgres://commented/out\n"
        "LOG_LEVEL=INFO\n"
    )
    assert run_bash(env_block(), tmp_path).returncode == 0
    env_file = tmp_path / ".env"
    assert read_dotenv_value(env_file, "DATABASE_URL") == SERVICE_URL
    parsed = dotenv_values(env_file)
    assert parsed["DATABASE_URL"] == SERVICE_URL
    assert parsed["DEBUG"] == "True"
    assert parsed["SECRET_KEY"] != "example-key"
    assert parsed["LOG_LEVEL"] == "INFO"
    assert "# DATABASE_URL=postgres://commented/out" in env_file.read_text()


def test_env_block_fails_without_an_example(tmp_path):
    result = run_bash(env_block(), tmp_path)
    assert result.returncode != 0
    assert not (tmp_path / ".env").exists()


# ---------------------------------------------------------------------------------------------
# ci.yml: all-checks
# ---------------------------------------------------------------------------------------------


ALL_CHECKS = find_step(CI, "all-checks", "Fail unless every needed job succeeded")


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        (("success", "success", "success"), 0),
        (("failure", "success", "success"), 1),
        (("success", "cancelled", "success"), 1),
        (("success", "success", "skipped"), 1),
        (("success", "success", ""), 1),
    ],
)
def test_all_checks_passes_only_when_every_job_succeeded(tmp_path, results, expected):
    env = dict(zip(ALL_CHECKS["env"], results, strict=True))
    result = run_bash(ALL_CHECKS["run"], tmp_path, env=env)
    assert result.returncode == expected, result.stdout + result.stderr
    for job, outcome in zip(("test", "performance", "backup-verification"), results, strict=True):
        assert f"{job}: {outcome or 'unknown'}" in result.stdout
        if outcome != "success":
            assert f"::error title=all-checks::{job} did not succeed" in result.stdout


# ---------------------------------------------------------------------------------------------
# ci.yml: backup-verification, and migration-tests.yml's invocation, end to end
# ---------------------------------------------------------------------------------------------


def test_backup_verification_step_runs_clean_on_postgresql(tmp_path, pg_server_url):
    script = find_step(CI, "backup-verification", "Verify that a backup restores completely")["run"]
    assert BACKUP_SERVICE_URL in script
    (tmp_path / "scripts").symlink_to(REPO_ROOT / "scripts")
    result = run_bash(script.replace(BACKUP_SERVICE_URL, pg_server_url), tmp_path, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Backup verified" in result.stdout
    assert (tmp_path / "reports" / "backup.dump").read_bytes().startswith(b"PGDMP")
    created = re.findall(r"Created scratch database (\w+)", result.stdout)
    assert len(created) == 2
    assert existing_databases(pg_server_url, created) == []


def copy_of_the_project(target: Path, pg_server_url: str) -> None:
    """The project's files, and the `.env` the job writes, pointing at the test server."""
    for name in PROJECT_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, target / name)
    assert run_bash(env_block(), target).returncode == 0
    # The service's database becomes the test server's `postgres` database (the tool only
    # connects to it; its scratch databases go next to it).
    env_file = target / ".env"
    env_file.write_text(env_file.read_text().replace(SERVICE_URL, pg_server_url))


def migration_test_step(event: str, base_ref: str = "") -> dict[str, str]:
    """The `with:` of the job's action step, its one expression evaluated for `event` as GitHub
    would (tests/workflows/test_action.py pins the expression's text)."""
    given = dict(find_step(MIGRATION_TESTS, "migration-tests", "Test the migrations")["with"])
    since = f"--since=origin/{base_ref}" if event == "pull_request" else ""
    given["args"] = given["args"].replace(PULL_REQUEST_EXPRESSION, since)
    assert "${{" not in given["args"], given["args"]
    return given


def run_migration_test_step(workspace: Path, pg_server_url: str, event: str, base_ref: str = ""):
    """The action step of migration-tests.yml, run with the test server for the service's URL."""
    given = migration_test_step(event, base_ref)
    assert given["database-url"] == SERVICE_URL
    given["database-url"] = pg_server_url
    return run_action(workspace, given, timeout=1200)


@pytest.mark.slow
def test_migration_tests_steps_run_clean_on_a_copy_of_the_project(tmp_path, pg_server_url):
    """The `.env` block then the action step (action.yml's run steps with the job's inputs), as
    the job runs them on a push: the copy's own migration_check is importable, nothing is installed."""
    copy_of_the_project(tmp_path, pg_server_url)
    result = run_migration_test_step(tmp_path, pg_server_url, "push")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "migration-check is already importable" in result.stdout
    report = json.loads((tmp_path / "reports" / "migrations.json").read_text())
    assert report["ok"] is True
    # The compat check: 0022 breaks the previous release's tag inserts, acknowledged in its file.
    compat = {m["name"]: (m["compat"], m["compat_acknowledged"]) for m in report["apps"][0]["migrations"]}
    assert compat.pop("0022_tag_slug") == ("breaks_old_code", True)
    assert set(compat.values()) == {("compatible", False)}, compat
    slug = next(m for m in report["apps"][0]["migrations"] if m["name"] == "0022_tag_slug")
    assert any(d["kind"] == "compat" and 'null value in column "slug"' in d["error"] for d in slug["details"])
    assert report["database"]["ephemeral"] is False  # it used the server of the database-url input
    assert report["database"]["server_version"].startswith("15")
    junit = ElementTree.parse(tmp_path / "reports" / "migrations-junit.xml").getroot()
    assert list(junit.iter("testcase"))
    # The password of the URL (the input and .env) never reaches the log.
    password = urllib.parse.urlsplit(pg_server_url).password
    assert password and password not in result.stdout + result.stderr


ADDED_MIGRATION = index_migration("upstream", "0024_invoice_sent_at", "upstream_invoice", "sent_at")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.slow
def test_migration_tests_on_a_pull_request_tests_what_it_adds(tmp_path, pg_server_url):
    """On pull_request the same step tests only the migration the branch adds since the base
    branch, here `origin/main` as a fetch-depth 0 checkout has it."""
    copy_of_the_project(tmp_path, pg_server_url)
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "update-ref", "refs/remotes/origin/main", "HEAD")
    (tmp_path / "upstream" / "migrations" / "0025_invoice_sent_at_idx.py").write_text(ADDED_MIGRATION)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "a pull request")
    result = run_migration_test_step(tmp_path, pg_server_url, "pull_request", "main")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((tmp_path / "reports" / "migrations.json").read_text())
    assert [(app["app"], [m["name"] for m in app["migrations"]]) for app in report["apps"]] == [
        ("upstream", ["0025_invoice_sent_at_idx"])]
    assert report["selection"]["since"] == "origin/main"
    checks = ("forward", "check_deploy", "missing_migrations", "sequences", "edited_migrations")
    assert [(check["name"], check["status"]) for check in report["checks"]] == [(name, "passed") for name in checks]
