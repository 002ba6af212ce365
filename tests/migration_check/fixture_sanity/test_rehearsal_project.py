"""rehearsal_project really contains what the rehearsal measures, shown without the tool.

Each case uses two or three sessions of its own beside a plain ``manage.py migrate`` (or the
migration's SQL from ``sqlmigrate``): one running the migration, one timing an INSERT with a
short lock_timeout (it fails when the write has to wait), and where needed one holding a
transaction open in the way. Nothing here measures absolute times: a write either waits for the
migration's lock or it does not, a table is either copied (a new relfilenode) or not.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg2
import pytest

from tests.migration_check.conftest import FIXTURES

from .test_defect_corpus import FixtureDb, fixture_db

ROWS = 2000
LOCK_TIMEOUT_ERROR = "55P03"


@pytest.fixture
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "rehearsal_project", migrate=False)


def session(db: FixtureDb):
    connection = psycopg2.connect(db.admin.url_for(db.name))
    connection.autocommit = True
    return connection


def insert_waits(db: FixtureDb, table: str, columns: str, values: str) -> bool:
    """From a session of its own: does an INSERT wait longer than 50 ms for a lock? (lock_timeout
    counts only the wait for a lock, so an INSERT that takes no conflicting lock never trips it,
    however loaded the machine; short, so a lock held for a fraction of a second is still seen.)"""
    connection = session(db)
    try:
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SET LOCAL lock_timeout = '50ms'")
            try:
                cursor.execute(f"INSERT INTO {table} ({columns}) VALUES ({values})")
            except psycopg2.Error as error:
                assert error.pgcode == LOCK_TIMEOUT_ERROR, error
                return True
            finally:
                cursor.execute("ROLLBACK")
        return False
    finally:
        connection.close()


def start_migrate(db: FixtureDb, *args: str, settings: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": db.admin.url_for(db.name),
           "DJANGO_SETTINGS_MODULE": settings or db.settings}
    return subprocess.Popen([sys.executable, str(FIXTURES / db.project / "manage.py"), "migrate", "--noinput", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def wait_for_waiting(db: FixtureDb, query_like: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    """Until the migrating backend waits for a lock (its statement matching `query_like`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.rows("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                   "AND query ILIKE %s", (query_like,)):
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no backend waited on a lock running {query_like}")


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


def filled(db: FixtureDb, app: str, table: str, columns: str, values: str) -> None:
    db.migrate(app, "0001")
    db.rows(f"INSERT INTO {table} ({columns}) SELECT {values} FROM generate_series(1, {ROWS}) AS g")


def sql_of(db: FixtureDb, app: str, name: str) -> str:
    done = db.manage("sqlmigrate", app, name)
    assert done.returncode == 0, done.stderr
    return "\n".join(line for line in done.stdout.splitlines() if line.strip() not in ("BEGIN;", "COMMIT;"))


@pytest.mark.parametrize(("app", "table", "name", "copied"), [
    ("rewrite", "rewrite_counter", "0002_counter_token", True),
    ("flat", "flat_member", "0002_member_nickname", False),
])
def test_rewrite_copies_the_table_catalog_change_does_not_and_both_block_writes(db, app, table, name, copied):
    columns, values = ("name, hits", "'c' || g, g") if app == "rewrite" else ("name", "'m' || g")
    filled(db, app, table, columns, values)
    before = db.value("SELECT pg_relation_filenode(%s)", (table,))
    migrating = session(db)
    try:
        with migrating.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(sql_of(db, app, name))  # the migration, its transaction still open
            row = ("name, hits", "'x', 1") if app == "rewrite" else ("name", "'x'")
            assert insert_waits(db, table, *row)  # both hold ACCESS EXCLUSIVE until they commit
            cursor.execute("COMMIT")
    finally:
        migrating.close()
    # a new file: every row was copied under the lock, so the hold grows with the table
    assert (db.value("SELECT pg_relation_filenode(%s)", (table,)) != before) is copied


@pytest.mark.parametrize(("app", "setup", "migrate_args", "waits"), [
    ("backfill", (), ("backfill", "0002"), True),
    ("backfill_split", (("backfill_split", "0002"),), ("backfill_split", "0003"), False),
])
def test_backfill_in_the_add_fields_transaction_blocks_writes_batches_do_not(db, app, setup, migrate_args, waits):
    table = f"{app}_tag"
    filled(db, app, table, "name", "'Tag ' || g")
    for args in setup:
        db.migrate(*args)
    process = start_migrate(db, *migrate_args)
    waited = []
    while process.poll() is None:  # poll with INSERTs for as long as the migration runs
        waited.append(insert_waits(db, table, "name", "'x'"))
        time.sleep(0.02)
    returncode, stderr = finish(process)
    assert returncode == 0, stderr
    assert len(waited) >= 3, "the migration ended before it could be watched"
    assert any(waited) is waits, waited
    assert db.value(f"SELECT count(*) FROM {table} WHERE slug = lower(name)") == ROWS


@pytest.mark.parametrize(("app", "table", "statement", "waits"), [
    ("index", "index_event", "CREATE INDEX%", True),
    ("index_concurrently", "index_concurrently_event", "CREATE INDEX CONCURRENTLY%", False),
])
def test_index_build_blocks_writes_unless_concurrently(db, app, table, statement, waits):
    filled(db, app, table, "name, happened_on", "'e' || g, date '2024-01-01' + g")
    writer = session(db)  # an uncommitted write: the build has to wait for it, and stays in progress
    try:
        with writer.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute(f"INSERT INTO {table} (name, happened_on) VALUES ('w', '2024-01-01')")
            process = start_migrate(db, app)
            wait_for_waiting(db, statement, process)
            assert insert_waits(db, table, "name, happened_on", "'x', '2024-01-02'") is waits
            cursor.execute("COMMIT")
    finally:
        writer.close()
    returncode, stderr = finish(process)
    assert returncode == 0, stderr


@pytest.mark.parametrize(("settings", "fails_fast"), [
    (None, False),
    ("rehearsal_project.settings_lock_timeout", True),
])
def test_long_query_in_front_of_alter_table(db, settings, fails_fast):
    filled(db, "flat", "flat_member", "name", "'m' || g")
    reader = session(db)  # a slow report: a read transaction on the table
    try:
        with reader.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SELECT count(*) FROM flat_member")
            process = start_migrate(db, "flat", settings=settings)
            if fails_fast:
                returncode, stderr = finish(process)  # while the read transaction is still open
                assert returncode != 0 and "lock timeout" in stderr, stderr
            else:
                wait_for_waiting(db, "ALTER TABLE%", process)
                # the ALTER TABLE waits for the reader, and a write queues behind the ALTER TABLE
                assert insert_waits(db, "flat_member", "name", "'x'")
            cursor.execute("COMMIT")
    finally:
        reader.close()
    if not fails_fast:
        returncode, stderr = finish(process)
        assert returncode == 0, stderr
    applied = db.rows("SELECT name FROM django_migrations WHERE app = 'flat' ORDER BY id")
    assert (("0002_member_nickname",) in applied) is not fails_fast
