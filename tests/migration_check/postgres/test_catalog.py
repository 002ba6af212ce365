"""The catalog reads shared by the proofs, on a real database of the test server."""

from __future__ import annotations

import secrets
import urllib.parse

import psycopg2
import pytest

from migration_check.postgres.catalog import (
    SequenceBehind,
    TableLayout,
    column_inventory,
    sequences_behind,
    table_layouts,
    user_tables,
)


@pytest.fixture
def connection(pg_server_url):
    """A fresh database (dropped at the end) holding a table of each kind the inventory must
    see or leave out."""
    name = f"tm_unit_catalog_{secrets.token_hex(4)}"
    admin = psycopg2.connect(pg_server_url)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    url = urllib.parse.urlunsplit(urllib.parse.urlsplit(pg_server_url)._replace(path="/" + name))
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        for sql in (
            "CREATE TABLE shop_item (id bigserial PRIMARY KEY, name text NOT NULL, gone int, price numeric)",
            "ALTER TABLE shop_item DROP COLUMN gone",  # a dropped column is no column
            "CREATE TABLE shop_empty ()",  # a table without columns is still a table
            # a primary key whose columns are not in table order; no primary key at all
            "CREATE TABLE shop_price (amount numeric NOT NULL, item_id bigint, region varchar(2), "
            "PRIMARY KEY (region, item_id))",
            "CREATE TABLE shop_log (line text)",
            "CREATE TABLE shop_event (id int, at date) PARTITION BY RANGE (at)",
            "CREATE TABLE shop_event_2026 PARTITION OF shop_event FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            "CREATE SCHEMA billing",
            'CREATE TABLE billing.ledger (id int, "Amount" int)',
            "CREATE VIEW shop_names AS SELECT name FROM shop_item",  # not a table
            "CREATE TABLE django_migrations (id int, app text)",  # Django's bookkeeping
            "CREATE SCHEMA tm_observer",  # the lock observer's own records
            "CREATE TABLE tm_observer.events (id int)",
        ):
            cursor.execute(sql)
    yield connection
    connection.close()
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_the_column_inventory_lists_the_project_tables_and_their_live_columns(connection):
    assert column_inventory(connection) == {
        "shop_item": {"id", "name", "price"},
        "shop_empty": set(),
        "shop_price": {"amount", "item_id", "region"},
        "shop_log": {"line"},
        "shop_event": {"id", "at"},
        "shop_event_2026": {"id", "at"},
        "billing.ledger": {"id", "Amount"},
    }


def test_the_inventory_has_the_tables_user_tables_lists(connection):
    assert sorted(column_inventory(connection)) == user_tables(connection)
    assert "shop_event_2026" not in user_tables(connection, partitions=False)


def test_table_layouts_give_columns_in_table_order_and_the_key_in_key_order(connection):
    """What the fingerprints read: partitions are left out (read through their parent)."""
    assert table_layouts(connection) == {
        "billing.ledger": TableLayout([("id", "integer", False), ("Amount", "integer", False)], [], False),
        "shop_empty": TableLayout([], [], False),
        # partitioned: no pages of its own, whatever its partitions hold
        "shop_event": TableLayout([("id", "integer", False), ("at", "date", False)], [], True),
        "shop_item": TableLayout([("id", "bigint", True), ("name", "text", True), ("price", "numeric", False)],
                                 ["id"], False),
        "shop_log": TableLayout([("line", "text", False)], [], False),
        "shop_price": TableLayout([("amount", "numeric", True), ("item_id", "bigint", True),
                                   ("region", "character varying(2)", True)], ["region", "item_id"], False),
    }
    assert list(table_layouts(connection)) == sorted(table_layouts(connection))


def test_a_table_is_stored_once_written_and_until_truncated(connection):
    """`stored` False is the fingerprint's licence not to read a table: it must mean no row."""
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO shop_log VALUES ('kept')")
        cursor.execute("INSERT INTO shop_item (name) VALUES ('gone')")
        cursor.execute("DELETE FROM shop_item")  # its page stays: read, and found empty
        cursor.execute("INSERT INTO billing.ledger VALUES (1, 2)")
        cursor.execute("TRUNCATE billing.ledger")  # a new, empty file
    stored = {table: layout.stored for table, layout in table_layouts(connection).items()}
    assert stored == {"billing.ledger": False, "shop_empty": False, "shop_event": True, "shop_item": True,
                      "shop_log": True, "shop_price": False}


def test_sequences_behind_their_columns_are_found_and_moved_on_ones_are_not(connection):
    """The sequence itself says what nextval() gives next: after setval(..., false) or a RESTART
    (is_called false) its last_value, else last_value + increment (pg_sequences.last_value is
    NULL in the first case, which read as "at the start" would be a false alarm)."""
    with connection.cursor() as cursor:
        for sql in (
            # written with their ids, the sequence never moved: behind
            "CREATE TABLE seq_behind (id serial PRIMARY KEY)",
            "INSERT INTO seq_behind VALUES (1), (2), (3)",
            'CREATE TABLE "Odd Table" ("Id" bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)',
            'INSERT INTO "Odd Table" VALUES (7)',
            # called once (gave 1), then a row written with id 5: nextval gives 2 next, behind
            "CREATE TABLE seq_called (id serial PRIMARY KEY, note text)",
            "INSERT INTO seq_called (note) VALUES ('numbered')",
            "INSERT INTO seq_called VALUES (5, 'written')",
            # moved on: setval(..., false), an identity RESTART, setval to the max (is_called true)
            "CREATE TABLE seq_setval_false (id serial PRIMARY KEY)",
            "INSERT INTO seq_setval_false SELECT generate_series(1, 100)",
            "SELECT setval('seq_setval_false_id_seq', 101, false)",
            "CREATE TABLE seq_restart (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)",
            "INSERT INTO seq_restart SELECT generate_series(1, 100)",
            "ALTER TABLE seq_restart ALTER COLUMN id RESTART WITH 500",
            "CREATE TABLE seq_setval (id serial PRIMARY KEY)",
            "INSERT INTO seq_setval VALUES (1), (2)",
            "SELECT setval('seq_setval_id_seq', 2)",
            # not a collision an INSERT meets: no unique index on it; a sequence owned by a text column
            "CREATE TABLE seq_not_unique (n serial, note text)",
            "INSERT INTO seq_not_unique VALUES (9, 'x')",
            "CREATE TABLE seq_text (code text PRIMARY KEY)",
            "CREATE SEQUENCE seq_text_code_seq OWNED BY seq_text.code",
            "INSERT INTO seq_text VALUES ('zzz')",
            "CREATE TABLE seq_empty (id serial PRIMARY KEY)",
        ):
            cursor.execute(sql)
        cursor.execute("SELECT nextval('seq_setval_false_id_seq'), "
                       "nextval(pg_get_serial_sequence('seq_restart', 'id'))")
        assert cursor.fetchone() == (101, 500)  # what the check must read, not 1
        cursor.execute("SELECT setval('seq_setval_false_id_seq', 101, false)")
        cursor.execute("ALTER TABLE seq_restart ALTER COLUMN id RESTART WITH 500")
    assert sequences_behind(connection) == [
        SequenceBehind('"Odd Table"', "Id", '"Odd Table_Id_seq"', 1, 7),
        SequenceBehind("seq_behind", "id", "seq_behind_id_seq", 1, 3),
        SequenceBehind("seq_called", "id", "seq_called_id_seq", 2, 5),
    ]
