"""widened_keys: a migration that widens a key the database generates gets a coverage finding
(pure, no database; the snapshots are shaped as proofs.schema.snapshot_schema writes them)."""

from __future__ import annotations

import pytest

from migration_check.proofs.data.widened_keys import WidenedKey, widened_key_findings, widened_keys

MIGRATION = "0002_alter_invitation_id"


def snapshot(key_type: str, fk_type: str, *, identity: bool = True, table: str = "invites_invitation",
             referenced: str = "invites_invitation") -> dict[str, dict[str, str]]:
    """A table whose key is `key_type` (identity, or serial) and a table with a foreign key to it."""
    key = {"type": key_type, "null": "NOT NULL"}
    if identity:
        key["identity"] = "BY DEFAULT"
    else:
        key["default"] = f"nextval('{table}_id_seq'::regclass)"
    return {
        f"table {table}": {"definition": "r"},
        f"column {table}.id": key,
        f"column {table}.email": {"type": "character varying(100)", "null": "NOT NULL"},
        f"constraint {table.rsplit('.', 1)[-1]}_pkey on {table}": {"definition": "PRIMARY KEY (id)"},
        f"sequence {table}_id_seq": {"type": key_type, "owned by": f"{table}.id"},
        "column invites_reminder.id": {"type": "bigint", "null": "NOT NULL", "identity": "BY DEFAULT"},
        "column invites_reminder.invitation_id": {"type": fk_type, "null": "NOT NULL"},
        "constraint invites_reminder_pkey on invites_reminder": {"definition": "PRIMARY KEY (id)"},
        "constraint invites_reminder_invitation_id_fk on invites_reminder": {
            "definition": f"FOREIGN KEY (invitation_id) REFERENCES {referenced}(id) DEFERRABLE INITIALLY DEFERRED"},
    }


def test_a_widened_identity_key_names_its_foreign_key_and_sequence():
    findings = widened_key_findings(MIGRATION, snapshot("integer", "integer"), snapshot("bigint", "bigint"))
    assert [(f.kind, f.rule, f.extra) for f in findings] == [
        ("coverage", "data-not-covered", {"table": "invites_invitation", "column": "id"})]
    assert findings[0].message == (
        "table invites_invitation: column id is bigint after 0002_alter_invitation_id and integer before "
        "(and with it invites_reminder.invitation_id); post-release keys come from its sequence, so none passed "
        "integer's range here: in production the rollback fails once id passes 2,147,483,647 "
        "(check the sequence: SELECT last_value FROM invites_invitation_id_seq)")


def test_a_serial_key_names_the_sequence_of_its_default():
    before = snapshot("integer", "integer", identity=False)
    after = snapshot("bigint", "bigint", identity=False)
    after["column invites_invitation.id"]["default"] = "nextval('\"Odd''seq\"'::regclass)"
    assert widened_keys(before, after) == [WidenedKey("invites_invitation", "id", "integer", "bigint",
                                                      "\"Odd'seq\"", ("invites_reminder.invitation_id",))]


def test_smallint_to_integer_names_smallints_range():
    (finding,) = widened_key_findings(MIGRATION, snapshot("smallint", "smallint"), snapshot("integer", "integer"))
    assert "is integer after 0002_alter_invitation_id and smallint before" in finding.message
    assert "none passed smallint's range here" in finding.message and "once id passes 32,767" in finding.message


def test_a_foreign_key_already_wide_is_not_named():
    (key,) = widened_keys(snapshot("integer", "bigint"), snapshot("bigint", "bigint"))
    assert key.referencing == ()


def test_a_table_in_another_schema_matches_its_unqualified_foreign_key():
    before = snapshot("integer", "integer", table="ledger.invites_invitation")
    after = snapshot("bigint", "bigint", table="ledger.invites_invitation")
    (key,) = widened_keys(before, after)
    assert (key.table, key.sequence, key.referencing) == (
        "ledger.invites_invitation", "ledger.invites_invitation_id_seq", ("invites_reminder.invitation_id",))


def test_a_foreign_key_to_another_table_is_not_named():
    before = snapshot("integer", "integer", referenced="invites_other")
    after = snapshot("bigint", "bigint", referenced="invites_other")
    (key,) = widened_keys(before, after)
    assert key.referencing == ()


def test_without_a_known_sequence_the_check_reads_the_column():
    after = snapshot("bigint", "bigint")
    del after["sequence invites_invitation_id_seq"]
    (finding,) = widened_key_findings(MIGRATION, snapshot("integer", "integer"), after)
    assert finding.message.endswith("(check SELECT max(id) FROM invites_invitation)")


def test_two_widened_keys_of_one_table_are_one_finding():
    before, after = snapshot("integer", "integer"), snapshot("bigint", "bigint")
    before["column invites_invitation.serial_no"] = {"type": "integer", "identity": "ALWAYS"}
    after["column invites_invitation.serial_no"] = {"type": "bigint", "identity": "ALWAYS"}
    (finding,) = widened_key_findings(MIGRATION, before, after)
    assert finding.extra == {"table": "invites_invitation", "column": None}
    assert "column id is bigint" in finding.message and "; column serial_no is bigint" in finding.message


def widen_column(attributes_before: dict[str, str], attributes_after: dict[str, str]) -> tuple[dict, dict]:
    before, after = snapshot("integer", "integer"), snapshot("integer", "integer")
    before["column invites_invitation.counter"] = attributes_before
    after["column invites_invitation.counter"] = attributes_after
    return before, after


@pytest.mark.parametrize(("was", "now"), [
    # not generated: the seeder writes its edges, so the rollback itself is tested over them
    ({"type": "integer"}, {"type": "bigint"}),
    # a sequence default outside the primary key: the seeder writes it too
    ({"type": "integer", "default": "nextval('c_seq'::regclass)"},
     {"type": "bigint", "default": "nextval('c_seq'::regclass)"}),
    # narrowed, not widened: the rollback widens it
    ({"type": "bigint", "identity": "BY DEFAULT"}, {"type": "integer", "identity": "BY DEFAULT"}),
    # same type
    ({"type": "integer", "identity": "BY DEFAULT"}, {"type": "integer", "identity": "BY DEFAULT"}),
    # not an integer
    ({"type": "numeric(10,0)", "identity": "BY DEFAULT"}, {"type": "bigint", "identity": "BY DEFAULT"}),
])
def test_no_finding_for_a_column_the_seeder_covers_or_the_rollback_does_not_narrow(was, now):
    assert widened_key_findings(MIGRATION, *widen_column(was, now)) == []


def test_a_key_the_migration_creates_is_not_widened():
    before = snapshot("integer", "integer")
    after = snapshot("integer", "integer")
    after["column invites_invitation.new_id"] = {"type": "bigint", "identity": "BY DEFAULT"}
    assert widened_keys(before, after) == []


@pytest.mark.parametrize(("before", "after"), [
    (None, snapshot("bigint", "bigint")), (snapshot("integer", "integer"), None), (None, None)])
def test_nothing_is_said_without_the_schema_snapshots(before, after):
    assert widened_key_findings(MIGRATION, before, after) == []
