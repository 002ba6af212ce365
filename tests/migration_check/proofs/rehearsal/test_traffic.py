"""The traffic sessions (rehearsal/traffic.py): the summary of samples, and real sessions on
the test server's PostgreSQL 15 waiting behind a lock that another session holds."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest

from migration_check.proofs.compat.statements import Statement
from migration_check.proofs.rehearsal.queries import TrafficQuery
from migration_check.proofs.rehearsal.traffic import LongQuery, Sample, TrafficSessions, summarize


def test_summary_splits_baseline_and_window():
    samples = [Sample("t", "insert", 0.0, 0.01), Sample("t", "insert", 0.1, 0.03),  # baseline
               Sample("t", "insert", 0.9, 0.5),  # started before the window, waited into it
               Sample("t", "insert", 1.5, 0.2, "deadlock: deadlock detected"), Sample("t", "insert", 1.8, 0.1),
               Sample("t", "insert", 3.0, 0.01)]  # after it
    (stat,) = summarize(samples, (1.0, 2.0))
    assert (stat.queries, stat.errors, stat.max_wait_s, stat.p50_s, stat.baseline_p50_s) == (3, 1, 0.5, 0.2, 0.02)
    assert stat.first_error == "deadlock: deadlock detected"


@pytest.fixture
def database(pg_admin) -> Iterator[str]:
    name = f"traffic_test_{secrets.token_hex(3)}"
    pg_admin.create_database(name)
    pg_admin.rows("CREATE TABLE item (id bigserial PRIMARY KEY, name text); INSERT INTO item (name) VALUES ('a')",
                  dbname=name)
    try:
        yield name
    finally:
        pg_admin.drop_database(name)


def connector(pg_admin, name: str):
    def connect():
        connection = psycopg2.connect(pg_admin.url_for(name))
        connection.autocommit = True
        return connection
    return connect


INSERT = Statement("INSERT INTO item (name) VALUES (%s) RETURNING id", ("x",))
QUERIES = [TrafficQuery("item", "insert", (INSERT,)),
           TrafficQuery("item", "delete_inserted", (INSERT, Statement("DELETE FROM item WHERE id = %s")))]


def hold_lock(connect, mode: str, seconds: float, locked: threading.Event) -> None:
    connection = connect()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute(f"LOCK TABLE item IN {mode} MODE")
        locked.set()
        time.sleep(seconds)
        cursor.execute("COMMIT")
    connection.close()


def traffic_while_locked(pg_admin, database: str, mode: str) -> list:
    connect = connector(pg_admin, database)
    sessions = TrafficSessions(connect, QUERIES, 2, 30)
    sessions.start()
    time.sleep(0.3)
    locked = threading.Event()
    holder = threading.Thread(target=hold_lock, args=(connect, mode, 1.0, locked))
    start = sessions.mark()
    holder.start()
    holder.join()
    end = sessions.mark()
    stats = summarize(sessions.stop(), (start, end))
    assert sessions.problems == []
    return stats


def test_writes_wait_behind_a_share_lock_and_are_rolled_back(pg_admin, database):
    stats = traffic_while_locked(pg_admin, database, "SHARE")
    assert max(stat.max_wait_s for stat in stats) > 0.5, stats  # held 1 s: a write waited most of it
    assert all(stat.errors == 0 and stat.baseline_p50_s is not None for stat in stats), stats
    assert pg_admin.rows("SELECT name FROM item", dbname=database) == [("a",)]  # every write rolled back


def test_writes_do_not_wait_behind_share_update_exclusive(pg_admin, database):
    stats = traffic_while_locked(pg_admin, database, "SHARE UPDATE EXCLUSIVE")
    blocked = traffic_while_locked(pg_admin, database, "SHARE")
    assert max(s.max_wait_s for s in stats) < max(s.max_wait_s for s in blocked), (stats, blocked)
    assert max(s.max_wait_s for s in stats) < 0.5, stats


def test_long_query_holds_access_share_until_the_migration_ends(pg_admin, database):
    connect = connector(pg_admin, database)
    long_query = LongQuery(connect, ["item"], 30.0)
    long_query.start()
    time.sleep(0.5)  # nothing queues behind it: it holds on, without a clock
    modes = pg_admin.rows("SELECT l.mode FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                          "WHERE d.datname = %s AND l.relation = 'item'::regclass::oid AND l.granted",
                          (database,), dbname=database)
    began = time.monotonic()
    long_query.join()  # the migration ended without waiting on it: it ends at once, not 30 s later
    assert time.monotonic() - began < 5
    assert ("AccessShareLock",) in modes and long_query.problem is None and not long_query.queued_behind


def test_long_query_holds_its_seconds_from_when_a_lock_request_queues_behind_it(pg_admin, database):
    """A migration that reaches its DDL late (a loaded machine) still meets the long read: the
    seconds count from the moment its lock request waits, not from the migration's start."""
    connect = connector(pg_admin, database)
    long_query = LongQuery(connect, ["item"], 1.0)
    long_query.start()
    time.sleep(1.5)  # longer than the long query's seconds
    connection = connect()
    try:
        began = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("LOCK TABLE item IN ACCESS EXCLUSIVE MODE")  # what ALTER TABLE asks for
            waited = time.monotonic() - began
            cursor.execute("ROLLBACK")
    finally:
        connection.close()
        long_query.join()
    assert long_query.queued_behind and long_query.problem is None
    assert 0.8 <= waited < 10, waited
