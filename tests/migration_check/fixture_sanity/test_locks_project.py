"""locks_project really does what the lock observation claims, shown without the tool.

Each app is migrated with plain ``manage.py migrate`` over rows inserted by SQL, while event
triggers written here by hand (not the tool's) log what PostgreSQL did: ``table_rewrite`` with its
reason, and around each DDL statement the table's sequential scans (before and after) and the
locks the migrating backend holds on it at the end. The verdicts asserted in
end_to_end/test_locks_project.py are thereby known to be about real rewrites, locks and scans, and the clean
twins' about their absence.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from .test_defect_corpus import FixtureDb, fixture_db

PROOF_SQL = """
CREATE TABLE proof_log (id serial PRIMARY KEY, event text, tag text, query text, tbl text, reason int,
                        modes text, scans bigint);
CREATE FUNCTION proof_scans() RETURNS bigint LANGUAGE sql AS
    $$ SELECT coalesce(sum(seq_scan), 0) FROM pg_stat_xact_user_tables WHERE relname = '{table}' $$;
CREATE FUNCTION proof_start() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN
    IF tg_tag = 'DROP INDEX' THEN RETURN; END IF;  -- a write here would break DROP INDEX CONCURRENTLY
    INSERT INTO proof_log (event, tag, query, scans) VALUES ('start', tg_tag, current_query(), proof_scans());
END $$;
CREATE FUNCTION proof_end() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO proof_log (event, tag, query, modes, scans) VALUES ('end', tg_tag, current_query(),
        (SELECT string_agg(mode, ',' ORDER BY mode) FROM pg_locks
         WHERE pid = pg_backend_pid() AND relation = to_regclass('{table}')), proof_scans());
END $$;
CREATE FUNCTION proof_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO proof_log (event, tag, query, tbl, reason) VALUES ('rewrite', tg_tag, current_query(),
        pg_event_trigger_table_rewrite_oid()::regclass::text, pg_event_trigger_table_rewrite_reason());
END $$;
CREATE EVENT TRIGGER proof_start ON ddl_command_start EXECUTE FUNCTION proof_start();
CREATE EVENT TRIGGER proof_end ON ddl_command_end EXECUTE FUNCTION proof_end();
CREATE EVENT TRIGGER proof_rewrite ON table_rewrite EXECUTE FUNCTION proof_rewrite();
"""
UNPROOF_SQL = """
DROP EVENT TRIGGER proof_start; DROP EVENT TRIGGER proof_end; DROP EVENT TRIGGER proof_rewrite;
DROP TABLE proof_log; DROP FUNCTION proof_start(); DROP FUNCTION proof_end(); DROP FUNCTION proof_rewrite();
DROP FUNCTION proof_scans();
"""


@dataclass
class Statement:
    """One DDL statement as the hand-made triggers saw it."""

    tag: str
    query: str
    modes: set[str]
    scanned: bool


@dataclass
class Proof:
    statements: list[Statement]
    rewrites: list[tuple[str, int]]

    def one(self, fragment: str) -> Statement:
        found = [s for s in self.statements if fragment in s.query]
        assert len(found) == 1, f"{fragment!r} in {[s.query for s in self.statements]}"
        return found[0]


def migrate_watched(db: FixtureDb, app: str, table: str, rows_sql: str) -> Proof:
    """`migrate APP 0001`, rows by SQL, then `migrate APP` under the hand-made triggers."""
    db.migrate(app, "0001")
    db.rows(f"INSERT INTO {table} {rows_sql}")
    db.rows(PROOF_SQL.replace("{table}", table))
    try:
        db.migrate(app)
        log = db.rows("SELECT event, tag, query, tbl, reason, modes, scans FROM proof_log ORDER BY id")
    finally:
        db.rows(UNPROOF_SQL)
    statements, started = [], {}
    for event, tag, query, _, _, modes, scans in log:
        if event == "start":
            started[query] = scans
        elif event == "end":
            statements.append(Statement(tag, query, set((modes or "").split(",")) - {""},
                                        scans > started.get(query, scans)))
    rewrites = [(tbl, reason) for event, _, _, tbl, reason, _, _ in log if event == "rewrite"]
    return Proof(statements, rewrites)


@pytest.fixture(scope="module")
def locks_db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "locks_project", migrate=False)


ROWS = "SELECT 'row ' || g, g FROM generate_series(1, 50) AS g"


@pytest.mark.parametrize(("app", "table", "columns"), [
    ("int_to_bigint", "int_to_bigint_counter", "(name, hits)"),
    ("decimal_scale", "decimal_scale_rate", "(name, percent)"),
])
def test_type_changes_rewrite_the_table(locks_db, app, table, columns):
    proof = migrate_watched(locks_db, app, table, f"{columns} {ROWS}")
    assert proof.rewrites == [(table, 4)]


def test_char_to_text_rewrites_nothing(locks_db):
    proof = migrate_watched(locks_db, "char_to_text", "char_to_text_note", "(title) SELECT 'note ' || g "
                            "FROM generate_series(1, 50) AS g")
    assert "TYPE text" in proof.one("ALTER TABLE").query
    assert proof.rewrites == []


EVENTS = "(name, happened_on) SELECT 'e' || g, date '2024-01-01' + g FROM generate_series(1, 50) AS g"


def test_add_index_holds_share_lock(locks_db):
    proof = migrate_watched(locks_db, "plain_index", "plain_index_event", EVENTS)
    index = proof.one("CREATE INDEX")
    assert "ShareLock" in index.modes and "CONCURRENTLY" not in index.query


def test_add_index_concurrently_holds_no_write_blocking_lock(locks_db):
    proof = migrate_watched(locks_db, "concurrent_index", "concurrent_index_event", EVENTS)
    index = proof.one("CREATE INDEX CONCURRENTLY")
    assert not index.modes & {"ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"}
    # 0002's retry guard and 0003's RemoveIndexConcurrently: both drop without blocking writes.
    drops = [s.query for s in proof.statements if s.tag == "DROP INDEX"]
    assert len(drops) == 2 and all("DROP INDEX CONCURRENTLY IF EXISTS" in q for q in drops), drops


@pytest.mark.parametrize(("app", "indexed"), [("fk_field", True), ("fk_field_no_index", False)])
def test_add_foreign_key_builds_an_index_but_validates_no_row(locks_db, app, indexed):
    locks_db.migrate(app, "0001")
    locks_db.rows(f"INSERT INTO {app}_author (name) VALUES ('a')")
    proof = migrate_watched(locks_db, app, f"{app}_book", "(title) SELECT 'b' || g FROM generate_series(1, 50) g")
    add_column = proof.one("ADD COLUMN")
    assert "REFERENCES" in add_column.query and not add_column.scanned
    indexes = [s for s in proof.statements if s.tag == "CREATE INDEX"]
    assert bool(indexes) is indexed
    if indexed:
        assert "ShareLock" in indexes[0].modes


def test_check_constraint_scans_under_access_exclusive(locks_db):
    proof = migrate_watched(locks_db, "check_constraint", "check_constraint_stock", "(item, quantity) " + ROWS)
    added = proof.one("ADD CONSTRAINT")
    assert added.scanned and "AccessExclusiveLock" in added.modes


def test_check_not_valid_scans_only_under_share_update_exclusive(locks_db):
    proof = migrate_watched(locks_db, "check_not_valid", "check_not_valid_stock", "(item, quantity) " + ROWS)
    added, validated = proof.one("ADD CONSTRAINT"), proof.one("VALIDATE CONSTRAINT")
    assert "NOT VALID" in added.query and not added.scanned
    assert validated.scanned and validated.modes == {"ShareUpdateExclusiveLock"}


NICKNAMES = "(name, nickname) SELECT 'm' || g, CASE WHEN mod(g, 2) = 0 THEN 'n' || g END FROM generate_series(1, 50) g"


def test_set_not_null_after_a_backfill_scans(locks_db):
    proof = migrate_watched(locks_db, "not_null_backfill", "not_null_backfill_member", NICKNAMES)
    set_not_null = proof.one("SET NOT NULL")
    assert set_not_null.scanned and "AccessExclusiveLock" in set_not_null.modes


def test_set_not_null_with_a_validated_check_does_not_scan(locks_db):
    proof = migrate_watched(locks_db, "not_null_checked", "not_null_checked_member", NICKNAMES)
    assert not proof.one("SET NOT NULL").scanned
