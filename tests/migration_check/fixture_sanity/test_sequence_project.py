"""sequence_project really contains its case, shown without the tool (plain manage.py migrate and
SQL): after `migrate` from scratch, loaded's sequences give 1 next while its tables hold ids up
to 1003 and 7, so the application's INSERTs collide once the sequence reaches them; the twin
loaded_reset moved its sequence on. test_sequence_project.py in end_to_end/ asserts what the tool
says about them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow


@pytest.fixture
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "sequence_project")


def insert_without_id(db: FixtureDb, table: str, times: int) -> list[str]:
    """Insert `times` rows letting the database number them; the errors, one per row that failed."""
    errors = []
    for n in range(times):
        try:
            db.rows(f"INSERT INTO {table} (name) VALUES (%s)", (f"row {n}",))
        except Exception as error:  # noqa: BLE001 - the driver's IntegrityError, whatever the driver
            errors.append(str(error).splitlines()[0])
    return errors


def test_the_loaded_tables_sequences_are_behind_their_ids(db):
    assert db.value("SELECT nextval(pg_get_serial_sequence('loaded_colour', 'id'))") == 1
    assert db.value("SELECT max(id) FROM loaded_colour") == 1003
    errors = insert_without_id(db, "loaded_legacy", 7)  # ids 1..7: the seventh is the row 0003 wrote
    assert errors == ['duplicate key value violates unique constraint "loaded_legacy_pkey"'], errors


def test_the_twins_sequence_was_moved_on(db):
    assert db.value("SELECT max(id) FROM loaded_reset_colour") == 1003
    assert insert_without_id(db, "loaded_reset_colour", 3) == []
    assert db.value("SELECT min(id) FROM loaded_reset_colour WHERE name LIKE 'row %%'") == 1004
