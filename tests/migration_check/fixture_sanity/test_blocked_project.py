"""blocked_project really contains its cases, shown without the tool (plain manage.py migrate
and SQL on a database of its own), so the verdicts asserted in test_defects_blocked.py are about
real behaviour: what each migration does on the way forward, and which rollbacks stand in the
way of the older ones.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import pytest

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow


@pytest.fixture
def blocked(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "blocked_project", migrate=False)


def relfilenode(db: FixtureDb, table: str) -> int:
    return db.value("SELECT relfilenode FROM pg_class WHERE relname = %s", (table,))


def test_shop_0002_and_0003_break_the_previous_release_and_0004_cannot_be_rolled_back(blocked):
    blocked.migrate("shop", "0001")
    blocked.rows("INSERT INTO shop_order (number, customer) VALUES ('A-1', 'Ada')")
    blocked.migrate("shop", "0002")
    with pytest.raises(psycopg2.errors.NotNullViolation):  # the previous release's INSERT
        blocked.rows("INSERT INTO shop_order (number, customer) VALUES ('A-2', 'Bob')")
    blocked.migrate("shop", "0003")
    with pytest.raises(psycopg2.errors.UndefinedColumn):  # the previous release's SELECT
        blocked.rows("SELECT customer FROM shop_order")
    # 0003 and 0002 roll back on their own, on a database that never applied 0004
    blocked.migrate("shop", "0001")
    assert blocked.rows("SELECT number, customer FROM shop_order") == [("A-1", "Ada")]
    blocked.migrate("shop", "0004")
    stderr = blocked.migrate_fails("shop", "0003")
    assert "IrreversibleError" in stderr and "RunPython" in stderr, stderr[-2000:]


def test_shop_twin_keeps_the_previous_release_working(blocked):
    blocked.migrate("shop_twin", "0001")
    blocked.migrate("shop_twin", "0004")
    blocked.rows("INSERT INTO shop_twin_order (number, customer) VALUES ('A-2', 'Bob')")
    assert blocked.rows("SELECT customer, status, buyer FROM shop_twin_order") == [("Bob", "new", None)]
    assert "IrreversibleError" in blocked.migrate_fails("shop_twin", "0003")


def test_ledger_0002_cannot_be_applied_over_text_that_is_not_json(blocked):
    blocked.migrate("ledger", "0001")
    blocked.rows("INSERT INTO ledger_entry (payload, qty) VALUES ('not json', 1)")
    assert "invalid input syntax for type json" in blocked.migrate_fails("ledger", "0002")
    blocked.rows("DELETE FROM ledger_entry")
    blocked.migrate("ledger", "0002")
    blocked.migrate("ledger", "0001")  # its own rollback passes


def test_ledger_0003_rewrites_0004_breaks_old_inserts_0005_and_0006_cannot_be_rolled_back(blocked):
    blocked.migrate("ledger", "0002")
    before = relfilenode(blocked, "ledger_entry")
    blocked.migrate("ledger", "0003")
    assert relfilenode(blocked, "ledger_entry") != before  # integer -> bigint rewrote the table
    blocked.migrate("ledger", "0004")
    with pytest.raises(psycopg2.errors.NotNullViolation):
        blocked.rows("""INSERT INTO ledger_entry (payload, qty) VALUES ('{}', 1)""")
    blocked.migrate("ledger", "0003")  # 0004 rolls back on its own
    blocked.migrate("ledger", "0005")
    assert 'index "ledger_entry_memo_ix" does not exist' in blocked.migrate_fails("ledger", "0004")
    blocked.migrate("ledger", "0007")
    blocked.migrate("ledger", "0006")  # the newest one rolls back
    assert "IrreversibleError" in blocked.migrate_fails("ledger", "0005")
