"""catch_up_project really contains its case, shown without the tool (plain manage.py on databases
of their own): the whole project migrates; a database where kinds.0003 is applied and holders.0002
(which depends on kinds.0002 and re-points Holder at moved.Kind) is not can run no `migrate` any
more, not even the rollback of kinds.0003: the state a chain reached when it tested kinds.0002 and
went on to kinds.0003 without applying holders.0002 (django-oscar's customer.0006 and order.0008).
test_catch_up_project.py in end_to_end/ asserts what the tool says.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow

PROJECT = "catch_up_project"


@pytest.fixture
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, PROJECT, migrate=False)


def test_the_project_migrates_with_holders_0002_before_kinds_0003(db):
    assert db.manage("makemigrations", "--check", "--dry-run").returncode == 0
    applied = db.migrate().stdout
    assert applied.index("holders.0002_kind_moved") < applied.index("kinds.0003_move_kind"), applied


def test_without_holders_0002_kinds_0003_leaves_a_database_no_migrate_loads(db):
    db.migrate("kinds", "0002_kind_code")
    db.migrate("holders", "0001_initial")
    db.migrate("moved", "0001_initial")
    db.migrate("kinds", "0003_move_kind")  # applies, state only
    lazy = "The field holders.Holder.kind was declared with a lazy reference to 'kinds.kind'"
    assert lazy in db.migrate_fails("kinds", "0004_note")
    assert lazy in db.migrate_fails("kinds", "0002_kind_code")  # its rollback too
