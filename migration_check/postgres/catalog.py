"""Reads of the PostgreSQL catalog shared by the schema snapshot, the seeder and the data proof.

Owns: which schemas and objects count as the project's (`USER_SCHEMAS`, `NOT_FROM_EXTENSION`; the
tool's own `OBSERVER_SCHEMA`, where locks.py records what a migration did, never counts),
the description of a table's columns, primary key and foreign keys (`read_tables`), the list of
user tables, the column inventory (`Columns`), what `django_migrations` records, and the
sequences behind the columns they number (`sequences_behind`).

Takes an open psycopg2 connection; never writes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..config import MigrationKey
from .server import quote_ident

Connection = Any  # a psycopg2 connection
Columns = dict[str, set[str]]  # table -> column names (the column inventory of a database)

# The schema in which locks.py keeps its event triggers' functions and records (scratch databases
# only): not the project's, so never snapshotted, fingerprinted, seeded or emptied.
OBSERVER_SCHEMA = "tm_observer"

USER_SCHEMAS = (
    f"n.nspname NOT IN ('pg_catalog', 'information_schema', '{OBSERVER_SCHEMA}') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
)
NOT_FROM_EXTENSION = (
    "NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.objid = {oid} AND dep.deptype = 'e')"
)

# Domains are described by their base type (what values are made for; the INSERT still casts to
# the domain, so its checks apply), arrays also by their element type.
TABLE_COLUMNS_SQL = """
    SELECT c.oid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod), t.typname, t.typcategory,
           a.attnotnull, d.adbin IS NOT NULL, a.attidentity <> '',
           a.attgenerated <> '',
           (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e
             WHERE e.enumtypid IN (t.oid, t.typelem)),
           format_type(t.oid, CASE WHEN dom.oid IS NULL THEN a.atttypmod ELSE dom.typtypmod END),
           coalesce(elem.typname, ''), coalesce(elem.typcategory, '')
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    LEFT JOIN pg_type dom ON dom.oid = a.atttypid AND dom.typtype = 'd'
    JOIN pg_type t ON t.oid = coalesce(dom.typbasetype, a.atttypid)
    LEFT JOIN pg_type elem ON elem.oid = t.typelem AND t.typcategory = 'A'
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.oid = ANY(%s::regclass[]) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum"""
PRIMARY_KEYS_SQL = """
    SELECT i.indrelid::regclass::text, a.attname FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indisprimary AND i.indrelid = ANY(%s::regclass[]) ORDER BY array_position(i.indkey, a.attnum)"""
FOREIGN_KEYS_SQL = """
    SELECT con.conrelid::regclass::text, a.attname, con.confrelid::regclass::text, fa.attname
    FROM pg_constraint con
    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
    JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = con.confkey[1]
    WHERE con.contype = 'f' AND array_length(con.conkey, 1) = 1
      AND con.conrelid = ANY(%s::regclass[])"""
# The project's tables (`user_tables`; partitions too unless left out).
USER_TABLES_WHERE = (f"c.relkind IN ('r', 'p') AND {USER_SCHEMAS} AND c.relname <> 'django_migrations' "
                     f"AND {NOT_FROM_EXTENSION.format(oid='c.oid')}")
USER_TABLES_SQL = f"""
    SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {USER_TABLES_WHERE}"""
# Their column names (a row with NULL for a table without any).
COLUMN_INVENTORY_SQL = f"""
    SELECT c.oid::regclass::text, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE {USER_TABLES_WHERE}"""

# What the data proof's fingerprints need of each table (partitions left out: read through
# their parent): every live column's name, type and NOT NULL in table order, and its position in
# the primary key (NULL: not in it); one row with NULL columns for a table without any.
TABLE_LAYOUTS_SQL = f"""
    SELECT c.oid::regclass::text, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
           array_position(pk.indkey, a.attnum), c.relkind = 'p' OR pg_relation_size(c.oid) > 0
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_index pk ON pk.indrelid = c.oid AND pk.indisprimary
    WHERE {USER_TABLES_WHERE} AND NOT c.relispartition
    ORDER BY a.attnum"""


@dataclass
class TableLayout:
    """A table's columns as (name, type, NOT NULL) in table order, and its primary key's columns.
    `stored`: False when the table has no page on disk (never written, or truncated since), so
    it has no row: nothing to read (a partitioned table has no pages of its own: always True)."""

    columns: list[tuple[str, str, bool]]
    primary_key: list[str]
    stored: bool = True


@dataclass(frozen=True)
class ColumnMeta:
    name: str
    type: str
    type_name: str
    category: str
    not_null: bool
    has_default: bool
    identity: bool
    generated: bool
    enum_labels: tuple[str, ...]
    base_type: str = ""  # format_type of a domain's base type ("" or `type` otherwise)
    element_name: str = ""  # typname of an array's element type
    element_category: str = ""

    @property
    def length(self) -> int | None:
        match = re.match(r"(?:character varying|character|bit varying|bit)\((\d+)\)", self.base_type or self.type)
        return int(match.group(1)) if match else None

    @property
    def precision(self) -> tuple[int, int] | None:
        match = re.match(r"numeric\((\d+),(\d+)\)", self.base_type or self.type)
        return (int(match.group(1)), int(match.group(2))) if match else None

    def element(self) -> ColumnMeta:
        """An array column's element, described as a column (its length, precision, labels)."""
        element_type = (self.base_type or self.type).removesuffix("[]")
        return dataclasses.replace(self, type=element_type, base_type=element_type, type_name=self.element_name,
                                   category=self.element_category, element_name="", element_category="")


@dataclass
class TableMeta:
    name: str
    columns: list[ColumnMeta]
    primary_key: list[str]
    foreign_keys: dict[str, tuple[str, str]]  # column -> (table, column)


def read_tables(connection: Connection, tables: Sequence[str]) -> dict[str, TableMeta]:
    """Columns, primary keys and single-column foreign keys of `tables` (that exist)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(t)::text FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL",
                       (list(tables),))
        names = [row[0] for row in cursor.fetchall()]
        if not names:
            return {}
        metas = {name: TableMeta(name, [], [], {}) for name in names}
        cursor.execute(TABLE_COLUMNS_SQL, (names,))
        for (table, name, type_, type_name, category, not_null, has_default, identity, generated, labels, base_type,
             element_name, element_category) in cursor.fetchall():
            metas[table].columns.append(ColumnMeta(name, type_, type_name, category, not_null, has_default, identity,
                                                   generated, tuple(labels.split(",")) if labels else (),
                                                   base_type, element_name, element_category))
        cursor.execute(PRIMARY_KEYS_SQL, (names,))
        for table, column in cursor.fetchall():
            metas[table].primary_key.append(column)
        cursor.execute(FOREIGN_KEYS_SQL, (names,))
        for table, column, target, target_column in cursor.fetchall():
            metas[table].foreign_keys[column] = (target, target_column)
    return metas


def user_tables(connection: Connection, partitions: bool = True) -> list[str]:
    """Every table of the project's schemas but django_migrations, as regclass text (without
    the partitions of partitioned tables when `partitions` is false)."""
    with connection.cursor() as cursor:
        cursor.execute(USER_TABLES_SQL + ("" if partitions else " AND NOT c.relispartition"))
        return sorted(row[0] for row in cursor.fetchall())


def column_inventory(connection: Connection) -> Columns:
    """Table -> column names, to tell which ones a migration created: the tables of
    `user_tables` (partitions too), a table without columns with none. One catalog read: it is
    taken twice per tested migration, and `read_tables` describes every column's type as well
    (at 200 tables, 12 ms against 2)."""
    inventory: Columns = {}
    with connection.cursor() as cursor:
        cursor.execute(COLUMN_INVENTORY_SQL)
        for table, column in cursor.fetchall():
            columns = inventory.setdefault(table, set())
            if column is not None:
                columns.add(column)
    return inventory


def table_layouts(connection: Connection) -> dict[str, TableLayout]:
    """The project's tables but partitions, by name in sorted order, as the fingerprints read
    them (`TableLayout`). One catalog read: a fingerprint is taken three times per tested
    migration, and `read_tables` (the seeder's) also reads foreign keys, enum labels and
    defaults (at 200 tables 11 ms of server time against 3)."""
    found: dict[str, tuple[list[tuple[str, str, bool]], dict[int, str]]] = {}
    stored: dict[str, bool] = {}
    with connection.cursor() as cursor:
        cursor.execute(TABLE_LAYOUTS_SQL)
        for table, column, type_, not_null, key_position, has_pages in cursor.fetchall():
            columns, key = found.setdefault(table, ([], {}))
            stored[table] = has_pages
            if column is None:
                continue
            columns.append((column, type_, not_null))
            if key_position is not None:
                key[key_position] = column
    return {table: TableLayout(columns, [key[position] for position in sorted(key)], stored[table])
            for table, (columns, key) in sorted(found.items())}


def recorded_migrations(connection: Connection) -> set[MigrationKey]:
    """What django_migrations records (what `showmigrations` reads); empty before any migrate."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('django_migrations') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return set()
        cursor.execute("SELECT app, name FROM django_migrations")
        return {(app, name) for app, name in cursor.fetchall()}


# Every sequence an integer column of a user table owns (serial: deptype 'a'; identity: 'i'),
# where a primary key or unique constraint makes a repeated value fail: the columns whose rows the
# database numbers and whose collisions break an INSERT.
OWNED_SEQUENCES_SQL = f"""
    SELECT c.oid::regclass::text, a.attname, s.oid::regclass::text
    FROM pg_depend d
    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
    JOIN pg_class c ON c.oid = d.refobjid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
    WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
      AND d.deptype IN ('a', 'i') AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype)
      AND EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisunique AND i.indkey[0] = a.attnum
                  AND i.indnatts = 1)
      AND {USER_TABLES_WHERE}
    ORDER BY 1, 2"""


@dataclass(frozen=True)
class SequenceBehind:
    """A column numbered by a sequence whose next value is already in the table: the next row
    inserted without that column fails with a duplicate key (rows written with their ids by a
    migration, the sequence never moved on)."""

    table: str
    column: str
    sequence: str
    next_value: int
    highest: int


def sequences_behind(connection: Connection) -> list[SequenceBehind]:
    """Every owned sequence of a unique integer column whose next value is not above the
    column's highest value (counting up). The sequence itself is read: `last_value` is what
    nextval() gives next until `is_called` (a fresh sequence, `setval(..., false)`, a `RESTART`),
    and the increment on from it after."""
    behind = []
    with connection.cursor() as cursor:
        cursor.execute(OWNED_SEQUENCES_SQL)
        for table, column, sequence in cursor.fetchall():
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
            last_value, is_called = cursor.fetchone()
            cursor.execute("SELECT seqincrement FROM pg_sequence WHERE seqrelid = %s::regclass", (sequence,))
            increment = cursor.fetchone()[0]
            if increment <= 0:  # counting down: not what Django makes
                continue
            next_value = last_value + increment if is_called else last_value
            cursor.execute(f"SELECT max({quote_ident(column)}) FROM {table}")
            highest = cursor.fetchone()[0]
            if highest is not None and highest >= next_value:
                behind.append(SequenceBehind(table, column, sequence, next_value, highest))
    return behind
