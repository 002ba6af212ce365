"""The data proof's evidence: fingerprints of every row, and what changed between two of them.

Owns: `fingerprint` (per table and primary key, a hash of each column's value), and the pure
comparisons `compare_fingerprints` (pre-release values gone or changed) and
`dropped_and_restored` (columns a sibling rollback took away and put back).

Uses: catalog, server (quote_ident). `fingerprint` only reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .catalog import read_tables, user_tables
from .server import quote_ident

Connection = Any  # a psycopg2 connection


@dataclass
class TableFingerprint:
    """Per primary key, a hash of each column's value; `columns` in table order."""

    columns: list[str]
    key_columns: list[str]
    rows: dict[str, dict[str, str]]


Fingerprint = dict[str, TableFingerprint]


def fingerprint(connection: Connection, ignore_columns: dict[str, set[str]] | None = None) -> Fingerprint:
    """Every row of every user table, as hashes by primary key (whole-row hash when no key)."""
    ignore_columns = ignore_columns or {}
    tables = user_tables(connection)
    metas = read_tables(connection, tables)
    result: Fingerprint = {}
    with connection.cursor() as cursor:
        for table, meta in metas.items():
            columns = [c.name for c in meta.columns if c.name not in ignore_columns.get(table, set())]
            key_columns = meta.primary_key or [c.name for c in meta.columns]
            selected = ", ".join(f"{quote_ident(c)}::text" for c in [*key_columns, *columns])
            if not selected:
                continue
            cursor.execute(f"SELECT {selected} FROM {table}")
            rows: dict[str, dict[str, str]] = {}
            width = len(key_columns)
            for record in cursor.fetchall():
                key = ",".join("NULL" if v is None else v for v in record[:width])
                if not meta.primary_key:  # duplicates are possible: count them apart
                    base, n = key, 1
                    while key in rows:
                        n += 1
                        key = f"{base}#{n}"
                rows[key] = {c: value_hash(v) for c, v in zip(columns, record[width:], strict=True)}
            result[table] = TableFingerprint(columns, key_columns, rows)
    return result


def value_hash(value: str | None) -> str:
    """A column value's hash; NULL and the empty string differ."""
    return hashlib.md5(("\0" if value is None else "v" + value).encode(), usedforsecurity=False).hexdigest()


def compare_fingerprints(before: Fingerprint, after: Fingerprint) -> list[tuple[str, str | None, int, str]]:
    """What pre-release data is gone or changed: (table, column or None for rows, count, example key)."""
    losses = []
    for table, old in sorted(before.items()):
        if not old.rows:
            continue
        new = after.get(table)
        if new is None:
            losses.append((table, None, len(old.rows), next(iter(old.rows))))
            continue
        missing = [key for key in old.rows if key not in new.rows]
        if missing:
            losses.append((table, None, len(missing), missing[0]))
        for column in old.columns:
            if column not in new.columns:
                losses.append((table, column, len(old.rows), next(iter(old.rows))))
                continue
            changed = [key for key, values in old.rows.items()
                       if key in new.rows and new.rows[key].get(column) != values.get(column)]
            if changed:
                losses.append((table, column, len(changed), changed[0]))
    return losses


def dropped_and_restored(before: dict[str, set[str]], middle: dict[str, set[str]],
                         after: dict[str, set[str]]) -> set[tuple[str, str | None]]:
    """(table, column) pairs, or (table, None) for whole tables, gone in `middle` and back in `after`."""
    found: set[tuple[str, str | None]] = set()
    for table, columns in before.items():
        if table not in middle:
            if table in after:
                found.add((table, None))
            continue
        found |= {(table, column) for column in columns - middle[table] if column in after.get(table, set())}
    return found
