"""Seeded data: rows written into a database straight from its catalog.

Owns: the seeding profiles ("typical" ordinary data; "max" the upper edges: strings at their
maximum length in non-ASCII text, the largest decimals of the column's precision, far dates;
"min" the lower ones: NULL wherever allowed, empty strings, zero, old dates), the value made for
each column type (`column_literal`), and `Seeder`, which inserts rows in foreign-key order and
skips, never fails on, rows a constraint rejects. scripts/verify_backup.py seeds with it too.

Uses: catalog, server (quote_ident). Writes only to the connection it is given.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .catalog import ColumnMeta, TableMeta, read_tables
from .server import quote_ident

Connection = Any  # a psycopg2 connection

# Rows seeded before a migration ("pre-release") and after it ("post-release").
PRE_RELEASE_PROFILES = ("typical", "max", "min")
POST_RELEASE_PROFILES = ("max", "min")
# Max-profile text: non-ASCII, with what stresses quoting and encoding in SQL, COPY and dumps
# (quotes, backslash, tab, newline, a character outside the BMP), each one character long.
NON_ASCII = "Ωé漢🦄'ß\"€\\ñ\nØ\tж"
INTEGER_EDGES = {"int2": 32000, "int4": 2_000_000_000, "int8": 9_000_000_000_000_000_000, "oid": 4_000_000_000}
TEXT_TYPES = ("varchar", "bpchar", "text", "citext", "name")


def sized_text(length: int | None, profile: str, token: int) -> str:
    """Text for a column of `length` characters (None: unlimited) that stays unique per token."""
    if profile == "min":
        return ""
    if profile == "typical":
        text = f"{token} Sample café"
        return text[:length] if length else text
    size = length or 2000
    suffix = str(token)
    body = (NON_ASCII * (size // len(NON_ASCII) + 1))[: max(size - len(suffix), 0)]
    return (body + suffix)[:size] if size >= len(suffix) else suffix[-size:]


def array_literal(items: Sequence[str]) -> str:
    """A PostgreSQL array literal of text items, each quoted (so commas, quotes, braces stay data)."""
    return "{" + ",".join('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items) + "}"


def number_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    name = column.type_name
    if name in INTEGER_EDGES:
        return str({"typical": token, "max": INTEGER_EDGES[name] - token % 1000, "min": 0}[profile])
    if name == "money":
        return {"typical": f"{token}.99", "max": "90000000000000000.00", "min": "0"}[profile]
    if name == "numeric":
        if column.precision:
            digits, scale = column.precision
            largest = "9" * (digits - scale) + ("." + "9" * scale if scale else "")
            typical = f"{min(token, 10 ** max(digits - scale, 0) - 1)}" + ("." + "5" * scale if scale else "")
            return {"typical": typical, "max": largest or "0", "min": "0"}[profile]
        return {"typical": f"{token}.25", "max": "12345678901234567890.123456789", "min": "0"}[profile]
    if name in ("float4", "float8"):
        return {"typical": f"{token}.5", "max": "3.0e38" if name == "float4" else "1.0e300", "min": "0"}[profile]
    return None


def time_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    name = column.type_name
    if name == "date":
        typical = (datetime.date(2024, 1, 1) + datetime.timedelta(days=token % 3000)).isoformat()
        return {"typical": typical, "max": "2999-12-31", "min": "1900-01-01"}[profile]
    if name in ("timestamp", "timestamptz"):
        typical = (datetime.datetime(2024, 1, 1, 12, 34, 56, 123456) + datetime.timedelta(hours=token)).isoformat()
        return {"typical": typical + "+00", "max": "2999-12-31 23:59:59.999999+00",
                "min": "1900-01-01 00:00:00+00"}[profile]
    if name in ("time", "timetz"):
        zone = "+05:30" if name == "timetz" else ""  # an offset other than UTC must survive too
        return {"typical": "12:34:56" + zone, "max": "23:59:59.999999", "min": "00:00:00"}[profile]
    if name == "interval":
        return {"typical": "1 day 02:03:04", "max": "36500 days", "min": "0"}[profile]
    return None


def other_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    name = column.type_name
    if name == "bool":
        return "true" if profile != "min" else "false"
    if name == "uuid":
        return str(uuid.UUID(int=(0x7E57 << 112) + token))
    if name in ("json", "jsonb"):
        return {"typical": json.dumps({"note": f"sample {token}"}),
                "max": json.dumps({"ключ": sized_text(500, "max", token), "big": 12345678901234567890,
                                   "nested": {"list": [1, 2.5, None, True]}}, ensure_ascii=False),
                "min": "{}"}[profile]
    if name == "bytea":  # max: every byte value, NUL and backslash included
        return {"typical": "\\x0001ff", "max": "\\x" + bytes(range(256)).hex(), "min": "\\x"}[profile]
    if name in ("inet", "cidr"):
        if profile == "max":
            return f"2001:db8::{token:x}" if name == "inet" else "2001:db8::/32"
        return f"192.0.2.{token % 250}" if name == "inet" else "192.0.2.0/24"
    if name in ("macaddr", "macaddr8"):
        return "08:00:2b:01:02:03" if name == "macaddr" else "08:00:2b:01:02:03:04:05"
    if name == "tsvector":
        return {"typical": f"'row{token}':1 'sample':2", "max": f"'Ωé漢':1A,2B 'O''Brien':3C 'row{token}':4D",
                "min": ""}[profile]
    return None


def column_literal(column: ColumnMeta, profile: str, token: int) -> str | None:
    """A text literal for `column` (cast to its type by the INSERT), or None when the seeder
    has no value for its type (SQL NULL)."""
    if column.category == "A":  # min: empty; typical: one element; max: the max element and a typical one
        items = [] if profile == "min" else [column_literal(column.element(), profile, token)]
        if profile == "max":
            items.append(column_literal(column.element(), "typical", token))
        return array_literal(items) if None not in items else "{}"
    if column.enum_labels:
        return column.enum_labels[-1] if profile == "max" else column.enum_labels[0]
    if column.type_name in TEXT_TYPES:
        return sized_text(column.length, profile, token)
    for literal in (number_literal, time_literal, other_literal):
        value = literal(column, profile, token)
        if value is not None:
            return value
    return None


@dataclass
class SeedReport:
    """What seeding did: rows inserted and rows skipped (with why), by table."""

    inserted: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)


Row = tuple[list[str], list[str], list[str | None], set[tuple[str, str, str]]]


class Seeder:
    """Inserts rows into a set of tables straight from the catalog, respecting foreign keys.

    Rows that a constraint rejects (check, unique, not null, trigger) are skipped, not errors:
    the schema decides what data can exist.
    """

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.token = 0
        # Edge values (empty string, zero, far dates) go into each column once: repeating them
        # in every round would make a later unique constraint fail on duplicates that only the
        # seeding created. Once there, they stay as pre-release data for every later migration.
        self.used_edges: set[tuple[str, str, str]] = set()

    def seed(self, tables: Sequence[str], profiles: Sequence[str]) -> SeedReport:
        report = SeedReport()
        metas = read_tables(self.connection, tables)
        metas = self._with_foreign_targets(metas)
        for meta in self._in_dependency_order(metas):
            for index, profile in enumerate(profiles):
                self.token += 1
                self._insert(meta, profile, index, report)
        return report

    def _with_foreign_targets(self, metas: dict[str, TableMeta]) -> dict[str, TableMeta]:
        while True:
            missing = {t for m in metas.values() for t, _ in m.foreign_keys.values()} - metas.keys()
            if not missing:
                return metas
            metas.update(read_tables(self.connection, sorted(missing)))
            metas.update({name: TableMeta(name, [], [], {}) for name in missing if name not in metas})

    @staticmethod
    def _in_dependency_order(metas: dict[str, TableMeta]) -> list[TableMeta]:
        ordered: list[TableMeta] = []
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name in visiting or name not in metas:
                return
            visiting.add(name)
            for target, _ in metas[name].foreign_keys.values():
                if target != name:
                    visit(target)
            visiting.discard(name)
            done.add(name)
            ordered.append(metas[name])

        for name in sorted(metas):
            visit(name)
        return [meta for meta in ordered if meta.columns]

    def _foreign_value(self, target: str, target_column: str, offset: int) -> str | None:
        """`target_column` of the row at `offset` in `target`, counting round (so that rows, and
        retries after a unique violation, refer to different rows); None when `target` is empty."""
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {target}")
            count = cursor.fetchone()[0]
            if not count:
                return None
            cursor.execute(
                f"SELECT {quote_ident(target_column)}::text FROM {target} ORDER BY 1 LIMIT 1 OFFSET %s",
                (offset % count,),
            )
            row = cursor.fetchone()
        return row[0] if row else None

    def _insert(self, meta: TableMeta, profile: str, index: int, report: SeedReport) -> None:
        """Insert one row; when a check or unique constraint rejects it, retry (twice at most)
        with ordinary values in that constraint's columns, so one strict column does not cost
        the whole row."""
        ordinary: set[str] = set()
        for _attempt in range(3):
            row = self._row_values(meta, profile, index, ordinary)
            if isinstance(row, str):
                report.skipped.setdefault(meta.name, []).append(f"{profile} row: {row}")
                return
            names, placeholders, values, edges = row
            columns_sql = f"({', '.join(names)}) VALUES ({', '.join(placeholders)})" if names else "DEFAULT VALUES"
            try:
                with self.connection.cursor() as cursor:
                    cursor.execute(f"INSERT INTO {meta.name} {columns_sql}", values)
            except self._psycopg2_error() as error:
                constrained = self._constraint_columns(error, meta.name) - ordinary
                if constrained:
                    ordinary |= constrained
                    self.token += 1
                    continue
                first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                report.skipped.setdefault(meta.name, []).append(f"{profile} row: {first_line}")
                return
            self.used_edges |= edges  # only once in: a rejected row's edges are still to be tried
            report.inserted[meta.name] = report.inserted.get(meta.name, 0) + 1
            return

    def _row_values(self, meta: TableMeta, profile: str, index: int, ordinary: set[str]) -> Row | str:
        """Column names, placeholders, values and the edge values among them; or why there is no row."""
        names, placeholders, values, edges = [], [], [], set()
        for column in meta.columns:
            if column.generated or (column.identity or (column.has_default and column.name in meta.primary_key)):
                continue
            column_profile = "typical" if column.name in ordinary else profile
            if column.name in meta.foreign_keys:
                target, target_column = meta.foreign_keys[column.name]
                literal = None if (column_profile == "min" and not column.not_null) else \
                    self._foreign_value(target, target_column, index + self.token % 7)
            elif column_profile == "min" and not column.not_null:
                literal = None
            else:
                literal = column_literal(column, column_profile, self.token)
                if literal is not None and column_profile != "typical":
                    if (meta.name, column.name, literal) in self.used_edges:
                        literal = column_literal(column, "typical", self.token)
                    edges.add((meta.name, column.name, literal))
            if literal is None and column.not_null:
                if column.has_default:
                    continue
                return f"no value for NOT NULL column {column.name} ({column.type})"
            names.append(quote_ident(column.name))
            placeholders.append(f"%s::{column.type}")
            values.append(literal)
        return names, placeholders, values, edges

    def _constraint_columns(self, error: Exception, table: str) -> set[str]:
        """Columns of the check or unique constraint that rejected a row (empty if another cause);
        for a domain's check, the table's columns of that domain."""
        name = getattr(getattr(error, "diag", None), "constraint_name", None)
        if not name or getattr(error, "pgcode", None) not in ("23514", "23505"):
            return set()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.attrelid = con.conrelid "
                "AND a.attnum = ANY(con.conkey) WHERE con.conname = %s "
                "UNION SELECT a.attname FROM pg_constraint con JOIN pg_attribute a ON a.atttypid = con.contypid "
                "WHERE con.conname = %s AND a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped "
                "UNION SELECT a.attname FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE ic.relname = %s",
                (name, name, table, name))
            return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def _psycopg2_error() -> type[Exception]:
        import psycopg2

        return psycopg2.Error
