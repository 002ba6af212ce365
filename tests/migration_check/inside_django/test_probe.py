"""inside_django/probe.py: which RunSQL statements end the transaction they run in (an atomic
migration that commits part-way), read from the operations as Django would run them, and which
operations run code of the migration's own when rolled back. Pure: operations are built here,
nothing is connected."""

from __future__ import annotations

import pytest
from django.db import migrations, models

from migration_check.inside_django.probe import (
    PARSE_AT_MOST,
    runs_forward_code,
    runs_reverse_code,
    sql_statements,
    transaction_ends,
)


def test_a_script_is_split_as_sqlparse_splits_it_and_its_comments_are_dropped():
    script = """
        CREATE TABLE tag (id int);
        -- keep the table even if what follows fails
        COMMIT;
        CREATE INDEX tag_idx ON tag (id);
    """
    assert sql_statements(script) == ["CREATE TABLE tag (id int);", "COMMIT;",
                                              "CREATE INDEX tag_idx ON tag (id);"]


def test_list_items_and_sql_params_pairs_are_read_each_item_split_too():
    sql = ["UPDATE t SET c = 1", ("UPDATE t SET c = %s", [2]), "UPDATE t SET c = 3; COMMIT", "", ("END", None)]
    assert transaction_ends([migrations.RunSQL(sql)]) == ["COMMIT", "END"]


def test_a_data_load_is_read_line_by_line_and_sql_without_such_a_word_is_not_parsed():
    rows = "".join(f"INSERT INTO t VALUES ({n}, 'x;y');\n" for n in range(PARSE_AT_MOST // 20))
    assert len(rows) > PARSE_AT_MOST
    assert transaction_ends([migrations.RunSQL(rows + "commit ;\n" + rows)]) == ["commit"]
    assert transaction_ends([migrations.RunSQL(rows + "INSERT INTO t VALUES (0, 'COMMIT');\n")]) == []
    assert transaction_ends([migrations.RunSQL("SELECT 1; SELECT 2")]) == []


# A procedure whose body commits (its own transaction control, run by CALL) and a trigger function
# whose block ends with END; on a line of its own: neither ends the migration's transaction.
BODIES = """CREATE PROCEDURE archive() LANGUAGE plpgsql AS $$
BEGIN
  UPDATE t SET c = 1;
  COMMIT;
END;
$$;
CREATE FUNCTION touch() RETURNS trigger AS $body$
BEGIN
  RETURN NEW;
END;
$body$ LANGUAGE plpgsql;
/* a note:
COMMIT;
*/
INSERT INTO t (note) VALUES ('
END;
');
"""


@pytest.mark.parametrize("padding", [0, PARSE_AT_MOST], ids=["parsed", "read-line-by-line"])
def test_bodies_comments_and_strings_are_not_statements(padding):
    script = BODIES + "INSERT INTO t VALUES (1);\n" * (padding // 20)
    assert transaction_ends([migrations.RunSQL(script)]) == []
    assert transaction_ends([migrations.RunSQL(script + "COMMIT;\n")]) == ["COMMIT"]


@pytest.mark.parametrize("ending", ["COMMIT", "commit;", "END", "END TRANSACTION", "ABORT", "ROLLBACK",
                                    "ROLLBACK WORK", "COMMIT AND CHAIN", "PREPARE TRANSACTION 'x'"])
def test_statements_that_end_the_transaction(ending):
    operation = migrations.RunSQL(["CREATE TABLE tag (id int)", ending, "CREATE INDEX tag_idx ON tag (id)"])
    assert transaction_ends([operation]) == [ending.rstrip(";")]


@pytest.mark.parametrize("statement", ["ROLLBACK TO SAVEPOINT s", "ROLLBACK TO s", "ROLLBACK TRANSACTION TO s",
                                       "SAVEPOINT s", "RELEASE SAVEPOINT s", "BEGIN",
                                       "UPDATE t SET note = 'COMMIT'", "-- COMMIT\nSELECT 1",
                                       "DO $$ BEGIN PERFORM 1; END $$", "CREATE TABLE commit_log (id int)"])
def test_statements_that_do_not(statement):
    assert transaction_ends([migrations.RunSQL(statement)]) == []


def test_database_operations_of_separate_database_and_state_are_read_and_code_is_not():
    operations = [
        migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL("UPDATE t SET c = 1; COMMIT;")]),
        migrations.RunPython(migrations.RunPython.noop),
        migrations.RunSQL(migrations.RunSQL.noop, "COMMIT"),  # a reverse is not what an apply runs
    ]
    assert transaction_ends(operations) == ["COMMIT"]


def test_reverse_sql_is_read_for_rollbacks_and_an_irreversible_one_has_none():
    operations = [migrations.RunSQL("CREATE TABLE t (id int)", "DROP TABLE t; END;"),
                  migrations.RunSQL("UPDATE t SET c = 1; COMMIT"),  # no reverse: nothing to read
                  migrations.SeparateDatabaseAndState(database_operations=[
                      migrations.RunSQL("SELECT 1", ["UPDATE t SET c = 0", "ROLLBACK"])])]
    assert transaction_ends(operations, reverse=True) == ["END", "ROLLBACK"]
    assert transaction_ends(operations) == ["COMMIT"]


class UnreadableSQL(migrations.RunSQL):
    """A third-party RunSQL whose SQL is computed, and fails to compute outside its setting."""

    @property
    def sql(self):
        raise RuntimeError("needs a connection")

    @sql.setter
    def sql(self, value):
        pass


def test_sql_that_cannot_be_read_is_skipped_and_the_rest_still_read():
    operations = [UnreadableSQL("ignored"), migrations.RunSQL("UPDATE t SET c = 1; COMMIT")]
    assert transaction_ends(operations) == ["COMMIT"]


def shorten(apps, schema_editor):
    """A reverse that shortens long values before the column is narrowed back."""


@pytest.mark.parametrize(("operation", "runs"), [
    (migrations.RunPython(migrations.RunPython.noop, reverse_code=shorten), True),
    (migrations.RunPython(shorten, migrations.RunPython.noop), False),
    (migrations.RunPython(shorten), False),  # irreversible: no reverse at all
    (migrations.RunSQL("SELECT 1", "UPDATE t SET c = left(c, 50)"), True),
    (migrations.RunSQL("SELECT 1", migrations.RunSQL.noop), False),
    (migrations.RunSQL("SELECT 1", ""), False),
    (migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL("SELECT 1", "SELECT 2")]), True),
    (migrations.SeparateDatabaseAndState(state_operations=[migrations.RunSQL("SELECT 1", "SELECT 2")]), False),
    (migrations.AddIndex("note", models.Index(fields=["body"], name="note_body_idx")), False),
])
def test_which_operations_run_code_of_their_own_when_rolled_back(operation, runs):
    assert runs_reverse_code(operation) is runs


@pytest.mark.parametrize(("operation", "runs"), [
    (migrations.RunPython(shorten, migrations.RunPython.noop), True),
    (migrations.RunPython(migrations.RunPython.noop, reverse_code=shorten), False),  # writes nothing forward
    (migrations.RunSQL("UPDATE t SET c = 1", migrations.RunSQL.noop), True),
    (migrations.RunSQL(migrations.RunSQL.noop, "UPDATE t SET c = 1"), False),
    (migrations.SeparateDatabaseAndState(database_operations=[migrations.RunSQL("UPDATE t SET c = 1")]), True),
    (migrations.SeparateDatabaseAndState(state_operations=[migrations.RunSQL("UPDATE t SET c = 1")]), False),
    (migrations.AddIndex("note", models.Index(fields=["body"], name="note_body_idx")), False),
])
def test_which_operations_run_code_of_their_own_when_applied(operation, runs):
    """The apply-failed hint names the migration before as a data migration only when it is one."""
    assert runs_forward_code(operation) is runs
