"""wide_keys_project really contains its case, shown without the tool (plain manage.py migrate
and SQL on databases of their own): `tokens.0002` widens `Token.id` (AutoField to BigAutoField),
`invites.0002` widens `Invitation.id` and, with it, the foreign key `Reminder.invitation_id`;
their rollback narrows them back to integer, which fails once an id, or the key's identity
sequence, has passed integer's range; with ids drawn from the sequence (what the tool's
post-release rows get) it passes. Rolled back, the foreign key carries another name. The twin
`invites_twin.0002` adds a column and rolls back over any row. test_wide_keys_project.py in
end_to_end/ asserts what the tool says about them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow

PROJECT = "wide_keys_project"
INTEGER_MAX = 2_147_483_647


@pytest.fixture
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, PROJECT)


def column_type(db: FixtureDb, table: str, column: str) -> str:
    return str(db.value("SELECT data_type FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
                        (table, column)))


def test_0002_widens_the_key_and_the_foreign_key_to_it(db):
    assert column_type(db, "invites_invitation", "id") == "bigint"
    assert column_type(db, "invites_reminder", "invitation_id") == "bigint"
    assert db.value("SELECT is_identity FROM information_schema.columns "
                    "WHERE table_name = 'invites_invitation' AND column_name = 'id'") == "YES"
    db.migrate("invites", "0001")
    assert column_type(db, "invites_invitation", "id") == "integer"
    assert column_type(db, "invites_reminder", "invitation_id") == "integer"


def foreign_keys(db: FixtureDb, table: str) -> list[str]:
    return [row[0] for row in db.rows("SELECT conname FROM pg_constraint WHERE contype = 'f' "
                                      "AND conrelid = %s::regclass", (table,))]


def test_the_rollback_puts_the_foreign_key_back_under_another_name(db):
    db.migrate("invites", "0001")
    db.migrate("invites", "zero")
    db.migrate("invites", "0001")
    first = foreign_keys(db, "invites_reminder")
    db.migrate("invites", "0002")
    db.migrate("invites", "0001")
    assert first == ["invites_reminder_invitation_id_a58441ea_fk_invites_i"]
    assert foreign_keys(db, "invites_reminder") == ["invites_reminder_invitation_id_a58441ea_fk"]


def test_the_rollback_passes_over_ids_from_the_sequence(db):
    db.rows("INSERT INTO invites_invitation (email) VALUES ('a@example.com'), ('b@example.com')")
    db.rows("INSERT INTO invites_reminder (invitation_id) SELECT id FROM invites_invitation")
    db.migrate("invites", "0001")
    assert db.value("SELECT count(*) FROM invites_reminder") == 2


def test_the_rollback_fails_once_an_id_passes_integers_range(db):
    db.rows("INSERT INTO invites_invitation (id, email) VALUES (%s, 'late@example.com')", (INTEGER_MAX + 1,))
    db.rows("INSERT INTO invites_reminder (invitation_id) VALUES (%s)", (INTEGER_MAX + 1,))
    stderr = db.migrate_fails("invites", "0001")
    assert "integer out of range" in stderr, stderr[-2000:]
    assert column_type(db, "invites_invitation", "id") == "bigint"  # nothing rolled back


def test_the_rollback_fails_once_the_sequence_passed_it_even_without_such_a_row(db):
    db.rows("SELECT setval(pg_get_serial_sequence('invites_invitation', 'id'), %s)", (INTEGER_MAX + 1,))
    stderr = db.migrate_fails("invites", "0001")
    assert "cannot be greater than MAXVALUE (2147483647)" in stderr, stderr[-2000:]


def test_the_key_without_foreign_keys_fails_the_same_way(db):
    assert column_type(db, "tokens_token", "id") == "bigint"
    db.rows("INSERT INTO tokens_token (key) VALUES ('from the sequence')")
    db.migrate("tokens", "0001")
    db.migrate("tokens", "0002")
    db.rows("INSERT INTO tokens_token (id, key) VALUES (%s, 'late')", (INTEGER_MAX + 1,))
    stderr = db.migrate_fails("tokens", "0001")
    assert "integer out of range" in stderr, stderr[-2000:]


def test_the_twin_rolls_back_over_its_largest_ids(db):
    assert column_type(db, "invites_twin_invitation", "id") == "integer"  # 0002 does not widen it
    db.rows("INSERT INTO invites_twin_invitation (id, email, note) VALUES (%s, 'last@example.com', 'n')",
            (INTEGER_MAX,))
    db.rows("INSERT INTO invites_twin_reminder (invitation_id) VALUES (%s)", (INTEGER_MAX,))
    db.migrate("invites_twin", "0001")
    assert db.rows("SELECT id, email FROM invites_twin_invitation") == [(INTEGER_MAX, "last@example.com")]
