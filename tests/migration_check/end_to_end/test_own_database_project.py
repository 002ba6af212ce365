"""End to end: the tool refuses settings that ignore DATABASE_URL, before migrating anything.

own_database_project takes its database from OWN_DATABASE_URL, as a project with a hard-coded
database would: every manage.py call would migrate that database, not the tool's scratch one.
The tool (and scripts/verify_backup.py) must stop with exit 2 after the read-only probe, and
that database must stay as it was. A fresh `startproject` (SQLite) gets the same one line.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.migration_check.conftest import (
    FIXTURES,
    ISOLATIONS,
    REPO_ROOT,
    SENTINEL_ROWS,
    PgAdmin,
    ToolRun,
    assert_same_verdicts,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_database(pg_admin: PgAdmin):
    name = f"tm_own_{secrets.token_hex(4)}"
    pg_admin.create_database(name)
    pg_admin.rows("CREATE TABLE sentinel (id integer PRIMARY KEY, note text NOT NULL)", dbname=name)
    for row in SENTINEL_ROWS:
        pg_admin.rows("INSERT INTO sentinel VALUES (%s, %s)", row, dbname=name)
    yield name
    pg_admin.drop_database(name)


@pytest.fixture(scope="module")
def runs(run_both, pg_admin: PgAdmin, own_database: str) -> dict[str, ToolRun]:
    return run_both("own_database_project", env={"OWN_DATABASE_URL": pg_admin.url_for(own_database)})


@pytest.fixture(scope="module", params=ISOLATIONS)
def run(runs, request) -> ToolRun:
    return runs[request.param]


def test_same_verdicts_in_both_isolations(runs):
    assert_same_verdicts(runs)


def test_refused_with_one_line(run):
    assert run.returncode == 2, run.context()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("test_migrations: error: "), run.context()
    assert "do not take the database from DATABASE_URL" in lines[0] and "tm_own_" in lines[0], lines[0]
    assert "Traceback" not in run.stdout + run.stderr


def test_the_settings_database_is_untouched(run, pg_admin: PgAdmin, own_database: str):
    assert pg_admin.rows("SELECT id, note FROM sentinel ORDER BY id", dbname=own_database) == SENTINEL_ROWS
    tables = pg_admin.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                           dbname=own_database)
    assert tables == [("sentinel",)], "the tool migrated the settings' own database"


def test_nothing_left_on_the_server(run):
    assert run.leftover_scratch == [], run.context()


# -- scripts/verify_backup.py has the same guard ------------------------------------------------


@pytest.fixture(scope="module")
def backup_run(pg_admin: PgAdmin, own_database: str) -> subprocess.CompletedProcess:
    """verify_backup on own_database_project: its `migrate` would have run on that database."""
    env = {**os.environ, "OWN_DATABASE_URL": pg_admin.url_for(own_database)}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "scripts/verify_backup.py", "--manage", str(FIXTURES / "own_database_project" / "manage.py"),
         "--settings", "own_database_project.settings", "--database-url", pg_admin.server_url],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_verify_backup_refuses_with_one_line(backup_run):
    assert backup_run.returncode == 2, backup_run.stdout + backup_run.stderr
    lines = backup_run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("verify_backup.py: error: "), lines
    assert "do not take the database from DATABASE_URL" in lines[0]


def test_verify_backup_leaves_the_settings_database_untouched(backup_run, pg_admin: PgAdmin, own_database: str):
    tables = pg_admin.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                           dbname=own_database)
    assert tables == [("sentinel",)], "verify_backup migrated the settings' own database"


# -- a fresh `django-admin startproject` (SQLite, NAME a Path) ------------------------------------


def test_a_fresh_startproject_gets_the_one_line_message(run_tool, tmp_path):
    """The probe used to crash with "Object of type PosixPath is not JSON serializable"."""
    subprocess.run([sys.executable, "-m", "django", "startproject", "fresh", str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    run = run_tool("fresh", manage=tmp_path / "manage.py", settings="fresh.settings")
    assert run.returncode == 2, run.context()
    lines = run.stderr.strip().splitlines()
    assert lines == ["test_migrations: error: the settings fresh.settings use a sqlite database although "
                     "DATABASE_URL points at PostgreSQL; read DATABASES from DATABASE_URL (dj-database-url) so "
                     "the tool can direct every manage.py call to its scratch database"], run.context()
    assert run.leftover_scratch == []


# -- a second alias that points elsewhere (alias_project) -----------------------------------------


@pytest.fixture(scope="module")
def archive_database(pg_admin: PgAdmin):
    name = f"tm_archive_{secrets.token_hex(4)}"
    pg_admin.create_database(name)
    yield name
    pg_admin.drop_database(name)


@pytest.fixture(scope="module")
def alias_run(run_tool, pg_admin: PgAdmin, archive_database: str) -> ToolRun:
    return run_tool("alias_project", env={"ARCHIVE_DATABASE_URL": pg_admin.url_for(archive_database)})


def test_a_second_alias_pointing_elsewhere_is_refused_with_one_line(alias_run, archive_database: str):
    """Old: only `default` was checked; the run passed (exit 0) and notes.0002 wrote into the
    archive database through its alias (three times: forward check, window build, re-apply)."""
    assert alias_run.returncode == 2, alias_run.context()
    lines = alias_run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("test_migrations: error: the settings alias_project.settings "
                                                   "point the database alias 'archive' at the postgresql database "
                                                   f"'{archive_database}' on "), alias_run.context()
    assert lines[0].endswith("not at the scratch database: a migration that uses it (RunPython with `using`, a "
                             "router) would write there, so the tool stops here. While testing, point every alias "
                             "at DATABASE_URL")
    assert alias_run.leftover_scratch == []


def test_the_other_alias_database_is_untouched(alias_run, pg_admin: PgAdmin, archive_database: str):
    tables = pg_admin.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", dbname=archive_database)
    assert tables == [], "a migration wrote into the other alias's database"
