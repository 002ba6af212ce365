"""release_project really contains its case, shown without the tool (plain manage.py and SQL on
databases of their own): deployed in one release, the data migrations (orders.0003 fills
`reference`, codes.0002 renames duplicated names) fix the rows written before it, so orders.0004
(NOT NULL, unique) and codes.0003 (unique) apply; deployed a release later, over rows the
previous release's schema admits (a NULL reference, a repeated name), both fail. And the old
code (orders at 0001, which knows no `reference`) cannot insert once 0004 is applied. tags.0003
(NOT NULL with a database default) takes the old code's INSERT (tags at 0001, no `colour`) but
not the INSERT of the code between 0002 and 0003 (colour null=True: an explicit NULL).
test_release_project.py in end_to_end/ asserts what the tool says about them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow

PROJECT = "release_project"


@pytest.fixture
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, PROJECT, migrate=False)


def test_deployed_in_one_release_the_rows_are_fixed_before_they_are_relied_on(db):
    assert db.manage("makemigrations", "--check", "--dry-run").returncode == 0
    db.migrate("orders", "0001_initial")
    db.migrate("codes", "0001_initial")
    db.rows("INSERT INTO orders_order (number) VALUES ('A-1'), ('A-2')")
    db.rows("INSERT INTO codes_code (name) VALUES ('red'), ('red'), ('blue')")
    db.migrate()
    assert db.rows("SELECT number, reference FROM orders_order ORDER BY id") == [("A-1", "ORD-1"), ("A-2", "ORD-2")]
    assert db.rows("SELECT name FROM codes_code ORDER BY id") == [("red",), ("red (2)",), ("blue",)]


def test_deployed_a_release_later_the_rows_the_schema_admits_make_them_fail(db):
    db.migrate("orders", "0003_fill_reference")
    db.migrate("codes", "0002_rename_duplicates")
    db.rows("INSERT INTO orders_order (number) VALUES ('B-1')")  # the previous release leaves it NULL
    db.rows("INSERT INTO codes_code (name) VALUES ('red'), ('red')")
    assert 'column "reference" of relation "orders_order" contains null values' in db.migrate_fails("orders")
    assert "Key (name)=(red) is duplicated" in db.migrate_fails("codes")


def test_the_code_before_the_release_cannot_insert_after_0004(db):
    db.migrate()
    with pytest.raises(Exception, match='null value in column "reference"'):
        db.rows("INSERT INTO orders_order (number) VALUES ('C-1')")  # orders.Order at 0001 has no reference


def test_the_code_before_the_release_inserts_after_tags_0003_and_the_code_at_0002_does_not(db):
    db.migrate()
    db.rows("INSERT INTO tags_tag (name) VALUES ('old')")  # tags.Tag at 0001: no colour
    assert db.rows("SELECT name, colour FROM tags_tag") == [("old", "grey")]
    with pytest.raises(Exception, match='null value in column "colour"'):
        db.rows("INSERT INTO tags_tag (name, colour) VALUES ('at 0002', NULL)")  # Django's INSERT at 0002
