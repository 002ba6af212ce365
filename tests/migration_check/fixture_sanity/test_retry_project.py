"""retry_project really does what the retry proof claims, shown without the tool.

Each migration's first apply is cut off by hand, as production cuts it: a CREATE INDEX
CONCURRENTLY made to wait behind a session holding an old snapshot and cancelled by a
`statement_timeout` (PGOPTIONS, read by libpq in the `manage.py` process), or a batched backfill
stopped after its first batches (the batches are replayed here with the same SQL the migration
runs). Then plain `manage.py migrate` runs again, and the result is compared with a clean apply.
The verdicts asserted in end_to_end/test_retry_project.py are thereby known to be about real
INVALID indexes, real "already exists" failures and real double counting, and the twins' about
their absence. An atomic migration is cut by a lock its index build waits for, under a
`lock_timeout`: rolled back whole, unless its RunSQL commits part-way (atomic_commit).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import psycopg2
import pytest

from .test_defect_corpus import FixtureDb, fixture_db

EVENTS = ("INSERT INTO {app}_event (name, happened_on) "
          "SELECT 'e' || g, date '2024-01-01' + g FROM generate_series(1, 50) AS g")


@pytest.fixture
def retry_db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "retry_project", migrate=False)


def holding_an_old_snapshot(db: FixtureDb, seconds: float) -> tuple[threading.Thread, threading.Event]:
    """A session that takes a snapshot and keeps it open: CONCURRENTLY builds wait for it. It
    lets go when the returned event is set, or after `seconds` at the latest."""
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        connection = psycopg2.connect(db.admin.url_for(db.name))
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT 1")
                ready.set()
                release.wait(seconds)
        finally:
            connection.rollback()
            connection.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert ready.wait(10)
    return thread, release


def cancelled_build(db: FixtureDb, app: str) -> subprocess.CompletedProcess:
    """`migrate APP 0002` while an old snapshot is held, with a 1 s statement_timeout. The
    snapshot is held for the whole `migrate` (up to 60 s, far more than its start-up and the
    timeout take on a loaded machine), then let go at once rather than after a fixed wait."""
    holder, release = holding_an_old_snapshot(db, 60)
    try:
        done = db.manage("migrate", "--noinput", app, "0002", extra_env={"PGOPTIONS": "-c statement_timeout=1000"})
    finally:
        release.set()
        holder.join()
    return done


def index_validity(db: FixtureDb, name: str) -> bool | None:
    return db.value("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", (name,))  # type: ignore


def prepared(db: FixtureDb, app: str) -> None:
    db.migrate(app, "0001")
    db.rows(EVENTS.format(app=app))


def test_a_cancelled_add_index_concurrently_leaves_an_invalid_index_and_the_retry_fails(retry_db):
    prepared(retry_db, "plain_concurrently")
    cut = cancelled_build(retry_db, "plain_concurrently")
    assert cut.returncode != 0 and "canceling statement due to statement timeout" in cut.stderr
    assert index_validity(retry_db, "plain_conc_happened_idx") is False
    retry = retry_db.migrate_fails("plain_concurrently", "0002")
    assert 'relation "plain_conc_happened_idx" already exists' in retry


def test_if_not_exists_retries_succeed_and_keep_the_index_invalid(retry_db):
    prepared(retry_db, "if_not_exists")
    cut = cancelled_build(retry_db, "if_not_exists")
    assert cut.returncode != 0 and "canceling statement due to statement timeout" in cut.stderr
    retry_db.migrate("if_not_exists", "0002")
    assert index_validity(retry_db, "if_not_exists_happened_idx") is False


def test_drop_first_converges_on_a_valid_index(retry_db):
    prepared(retry_db, "drop_first")
    cut = cancelled_build(retry_db, "drop_first")
    assert cut.returncode != 0 and "canceling statement due to statement timeout" in cut.stderr
    assert index_validity(retry_db, "drop_first_happened_idx") is False
    retry_db.migrate("drop_first", "0002")
    assert index_validity(retry_db, "drop_first_happened_idx") is True


def hits_after(db: FixtureDb, app: str, first_batch_twice: bool) -> list[int]:
    """The counters after 0002, on four rows; `first_batch_twice`: its first batch (rows 1-2) ran
    once before a cut (the same UPDATEs the migration's batch runs), then the whole retry."""
    db.migrate(app, "0001")
    table = f"{app}_counter"
    db.rows(f"INSERT INTO {table} (name, hits) VALUES ('a', 0), ('bb', 0), ('ccc', 0), ('dddd', 0)")
    if first_batch_twice:
        first_batch = f"(SELECT id FROM {table} ORDER BY id LIMIT 2)"
        update = {"batch_counter": "hits + 1", "batch_idempotent": "length(name)"}[app]
        db.rows(f"UPDATE {table} SET hits = {update} WHERE id IN {first_batch} RETURNING id")
    db.migrate(app, "0002")
    return [row[0] for row in db.rows(f"SELECT hits FROM {table} ORDER BY id")]  # type: ignore[misc]


def test_a_counting_backfill_counts_the_batches_before_the_cut_twice(pg_admin):
    clean = next(iter([hits_after(db, "batch_counter", False) for db in fixture_db(pg_admin, "retry_project",
                                                                                     migrate=False)]))
    retried = next(iter([hits_after(db, "batch_counter", True) for db in fixture_db(pg_admin, "retry_project",
                                                                                      migrate=False)]))
    assert clean == [1, 1, 1, 1]
    assert retried == [2, 2, 1, 1]


def test_an_idempotent_backfill_ends_the_same_after_a_cut(pg_admin):
    clean = next(iter([hits_after(db, "batch_idempotent", False) for db in fixture_db(pg_admin, "retry_project",
                                                                                        migrate=False)]))
    retried = next(iter([hits_after(db, "batch_idempotent", True) for db in fixture_db(pg_admin, "retry_project",
                                                                                         migrate=False)]))
    assert clean == retried == [1, 2, 3, 4]


def cut_by_a_lock(db: FixtureDb, app: str) -> subprocess.CompletedProcess:
    """`migrate APP 0002` while another session holds a lock on APP's event table that its
    index build waits for, under a 500 ms lock_timeout (PGOPTIONS): a deploy cut off there."""
    locker = psycopg2.connect(db.admin.url_for(db.name))
    try:
        with locker.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {app}_event IN ROW EXCLUSIVE MODE")
            return db.manage("migrate", "--noinput", app, "0002", extra_env={"PGOPTIONS": "-c lock_timeout=500"})
    finally:
        locker.rollback()
        locker.close()


def applied(db: FixtureDb, app: str, name: str) -> bool:
    return bool(db.value("SELECT count(*) FROM django_migrations WHERE app = %s AND name = %s", (app, name)))


def test_an_atomic_migration_cut_off_leaves_nothing_behind(retry_db):
    prepared(retry_db, "atomic_index")
    # A plain CREATE INDEX does not wait for snapshots: cut it with a lock held by another session.
    cut = cut_by_a_lock(retry_db, "atomic_index")
    assert cut.returncode != 0 and "lock timeout" in cut.stderr
    assert index_validity(retry_db, "atomic_index_happened_idx") is None  # rolled back whole
    retry_db.migrate("atomic_index", "0002")
    assert index_validity(retry_db, "atomic_index_happened_idx") is True


def test_an_atomic_migration_that_commits_part_way_keeps_what_ran_before_and_the_retry_fails(retry_db):
    """atomic_commit.0002 is atomic, but the COMMIT in its RunSQL script ends the transaction: the
    table created before it stays when the index after it times out, 0002 is not recorded, and
    the retry's CREATE TABLE fails."""
    prepared(retry_db, "atomic_commit")
    cut = cut_by_a_lock(retry_db, "atomic_commit")
    assert cut.returncode != 0 and "lock timeout" in cut.stderr
    assert retry_db.value("SELECT to_regclass('atomic_commit_tag')::text") == "atomic_commit_tag"
    assert index_validity(retry_db, "atomic_commit_happened_idx") is None
    assert not applied(retry_db, "atomic_commit", "0002_event_tag")
    retry = retry_db.migrate_fails("atomic_commit", "0002")
    assert 'relation "atomic_commit_tag" already exists' in retry


def test_its_twin_commits_part_way_too_and_the_retry_converges(retry_db):
    prepared(retry_db, "atomic_commit_idempotent")
    cut = cut_by_a_lock(retry_db, "atomic_commit_idempotent")
    assert cut.returncode != 0 and "lock timeout" in cut.stderr
    assert retry_db.value("SELECT to_regclass('atomic_commit_idempotent_tag')::text") == "atomic_commit_idempotent_tag"
    assert not applied(retry_db, "atomic_commit_idempotent", "0002_event_tag")
    retry_db.migrate("atomic_commit_idempotent", "0002")
    assert applied(retry_db, "atomic_commit_idempotent", "0002_event_tag")
    assert index_validity(retry_db, "atomic_commit_idem_happened_idx") is True
