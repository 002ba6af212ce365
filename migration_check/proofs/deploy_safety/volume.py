"""--volume N: existing tables made big before a migration is applied, then made small again.

Each table of the app that exists before the migration gets N more rows in one
`INSERT ... SELECT ... FROM generate_series(1, N)`: copies of its first seeded row (so foreign
keys point at rows that exist and check constraints hold), with the values that must differ
made from the series number: the primary key when the database does not assign it, columns of
a unique index, and free text (so that a unique constraint added later is not failed by
duplicates that only the copying made). A table whose rows cannot be made that way is left as
it is and named. After the apply the added rows are deleted again (by primary key), so the
rollback, the data proof and the later migrations work on the seeded rows only.

Owns: `VolumeFill` and `fill_tables` / `remove_fill`.

Writes only to the connection it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...postgres.catalog import ColumnMeta, TableMeta, read_tables
from ...postgres.driver import load_driver
from ...postgres.faults import raise_if_fault
from ...postgres.server import quote_ident
from ..data.literals import INTEGER_EDGES, TEXT_TYPES

Connection = Any  # a psycopg2 connection

UNIQUE_COLUMNS_SQL = """
    SELECT DISTINCT a.attname FROM pg_index i
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
    WHERE i.indisunique AND i.indrelid = %s::regclass"""
CHECKED_COLUMNS_SQL = """
    SELECT DISTINCT a.attname FROM pg_constraint con
    JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey)
    WHERE con.contype = 'c' AND con.conrelid = %s::regclass"""


@dataclass
class VolumeFill:
    """What was added: per table its primary key column and the keys it had before (to delete
    the rest), its rows after filling, and the tables left alone with why."""

    rows: int
    keys: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def column_set(connection: Connection, sql: str, table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(sql, (table,))
        return {row[0] for row in cursor.fetchall()}


def distinct_value(column: ColumnMeta, table: str, connection: Connection, rows: int) -> str | None:
    """An expression of `g` (1..rows) that differs per row, or None when the type has none here."""
    name = quote_ident(column.name)
    if column.type_name in TEXT_TYPES:
        # hex digits then '-': no two series numbers give the same prefix, whatever follows
        text = f"to_hex(g) || '-' || coalesce(tpl.{name}::text, '')"
        return f"left({text}, {column.length})" if column.length else text
    if column.type_name in INTEGER_EDGES:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT coalesce(max({name}), 0)::bigint FROM {table}")
            base = max(int(cursor.fetchone()[0]), 0)
        return f"({base} + g)" if base + rows < INTEGER_EDGES[column.type_name] else None
    if column.type_name == "uuid":
        return "md5(g::text || clock_timestamp()::text)::uuid"
    return None


def copy_expressions(connection: Connection, meta: TableMeta, rows: int) -> list[tuple[str, str]] | str:
    """(column, expression) for the INSERT, or why this table cannot be filled."""
    unique = column_set(connection, UNIQUE_COLUMNS_SQL, meta.name)
    checked = column_set(connection, CHECKED_COLUMNS_SQL, meta.name)
    expressions = []
    for column in meta.columns:
        assigned = column.identity or (column.has_default and column.name in meta.primary_key)
        if column.generated or assigned:
            continue
        must_differ = column.name in unique or column.name in meta.primary_key
        if column.name in meta.foreign_keys and must_differ:
            return f"column {column.name} is a unique foreign key"
        free_text = column.type_name in TEXT_TYPES and column.name not in checked | set(meta.foreign_keys)
        value = distinct_value(column, meta.name, connection, rows) if must_differ or free_text else None
        if value is None and must_differ:
            return f"no distinct values of type {column.type} for unique column {column.name}"
        expressions.append((quote_ident(column.name), value or f"tpl.{quote_ident(column.name)}"))
    return expressions


def fill_table(connection: Connection, meta: TableMeta, rows: int, fill: VolumeFill) -> None:
    if len(meta.primary_key) != 1:
        fill.skipped[meta.name] = "no single-column primary key"
        return
    key = quote_ident(meta.primary_key[0])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {key}::text FROM {meta.name}")
        existing = [row[0] for row in cursor.fetchall()]
    if not existing:
        fill.skipped[meta.name] = "no seeded row to copy"
        return
    expressions = copy_expressions(connection, meta, rows)
    if isinstance(expressions, str):
        fill.skipped[meta.name] = expressions
        return
    columns = ", ".join(name for name, _ in expressions)
    values = ", ".join(value for _, value in expressions)
    template = f"(SELECT * FROM {meta.name} ORDER BY {key} LIMIT 1) AS tpl"
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {meta.name} ({columns}) SELECT {values} FROM {template} "
                       f"CROSS JOIN generate_series(1, %s) AS g", (rows,))
    fill.keys[meta.name] = (meta.primary_key[0], existing)
    fill.counts[meta.name] = len(existing) + rows


def fill_tables(connection: Connection, tables: Sequence[str], rows: int) -> VolumeFill:
    """Add `rows` rows to each of `tables` (that exists); a table that cannot be filled is named
    in `skipped`, never an error."""
    error_class = load_driver().Error

    fill = VolumeFill(rows)
    for table, meta in sorted(read_tables(connection, tables).items()):
        try:
            fill_table(connection, meta, rows, fill)
        except error_class as error:
            raise_if_fault(error)
            fill.skipped[table] = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return fill


def remove_fill(connection: Connection, fill: VolumeFill) -> list[str]:
    """Delete the rows `fill` added; returns the tables where that could not be done, with why
    (the migration renamed or dropped the table or its key)."""
    error_class = load_driver().Error

    problems = []
    for table, (key, existing) in sorted(fill.keys.items()):
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
                if cursor.fetchone()[0]:
                    cursor.execute(f"DELETE FROM {table} WHERE {quote_ident(key)}::text <> ALL(%s)", (existing,))
        except error_class as error:
            problems.append(f"{table}: {str(error).strip().splitlines()[0]}")
    return problems
