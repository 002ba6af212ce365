"""End to end: the tool refuses settings that ignore DATABASE_URL, before migrating anything.

own_database_project takes its database from OWN_DATABASE_URL, as a project with a hard-coded
database would: every manage.py call would migrate that database, not the tool's scratch one.
The tool must stop with exit 2 after its read-only probe, and that database must stay as it was.
"""

from __future__ import annotations

import secrets

import pytest

from .conftest import ISOLATIONS, SENTINEL_ROWS, PgAdmin, ToolRun, assert_same_verdicts

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
