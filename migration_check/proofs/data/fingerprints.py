"""The data proof's evidence: fingerprints of every row, and what changed between two of them.

Owns: `fingerprint` (per table and primary key, a hash of each column's value; a partitioned
table once, through its parent), how a row's key is written (`row_key`: composite keys as JSON,
so no two rows share one), the pure comparisons `compare_fingerprints` (pre-release values
gone or changed), `changed_cells` (the same, cell by cell, for chosen rows) and
`dropped_and_restored` (columns a sibling rollback took away and put back), and `digest` (one
fingerprint as one hash, for the report).

`fingerprint` only reads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ...postgres.catalog import table_layouts
from ...postgres.server import quote_ident

Connection = Any  # a psycopg2 connection


@dataclass
class TableFingerprint:
    """Per primary key, a hash of each column's value; `columns` in table order, `types` their
    definitions (type, and NOT NULL), to tell which columns a migration altered."""

    columns: list[str]
    key_columns: list[str]
    rows: dict[str, dict[str, str]]
    types: dict[str, str] = field(default_factory=dict)


Fingerprint = dict[str, TableFingerprint]
Cell = tuple[str, str | None, str]  # table, column (None: the whole row), row key


def row_key(values: Sequence[str | None], single_key: bool) -> str:
    """A row's key in fingerprints: a one-column primary key's value as it is; otherwise the
    values as a JSON array, so a comma inside a value cannot make two rows one, and NULL stays
    apart from the text 'NULL'."""
    if single_key and len(values) == 1 and values[0] is not None:
        return values[0]
    return json.dumps(list(values), ensure_ascii=False)


def example_key(key: str) -> str:
    """A row's key as a message shows it: quoted when it is empty or blank (`primary key ''`)."""
    return key if key.strip() else repr(key)


def fingerprint(connection: Connection, ignore_columns: dict[str, set[str]] | None = None) -> Fingerprint:
    """Every row of every user table, as hashes by primary key (whole-row hash when no key).

    Partitions are left out: their rows are read through the partitioned table, once.
    """
    ignore_columns = ignore_columns or {}
    result: Fingerprint = {}
    with connection.cursor() as cursor:
        for table, meta in table_layouts(connection).items():
            names = [name for name, _, _ in meta.columns]
            columns = [name for name in names if name not in ignore_columns.get(table, set())]
            key_columns = meta.primary_key or names
            selected = ", ".join(f"{quote_ident(c)}::text" for c in [*key_columns, *columns])
            if not selected:
                continue
            types = {name: type_ + (" NOT NULL" if not_null else "") for name, type_, not_null in meta.columns}
            rows: dict[str, dict[str, str]] = {}
            if not meta.stored:  # no page on disk, so no row: what the SELECT would find, without it
                result[table] = TableFingerprint(columns, key_columns, rows, types)
                continue
            cursor.execute(f"SELECT {selected} FROM {table}")
            width = len(key_columns)
            for record in cursor.fetchall():
                key = row_key(record[:width], len(meta.primary_key) == 1)
                if not meta.primary_key:  # duplicates are possible: count them apart
                    base, n = key, 1
                    while key in rows:
                        n += 1
                        key = f"{base}#{n}"
                rows[key] = {c: value_hash(v) for c, v in zip(columns, record[width:], strict=True)}
            result[table] = TableFingerprint(columns, key_columns, rows, types)
    return result


def digest(found: Fingerprint) -> str:
    """One fingerprint as one sha256 (tables, columns, their types and every row's hashes, in a
    canonical order): two runs that left the same rows give the same digest."""
    canonical = {table: [fp.columns, fp.key_columns, fp.types, sorted(fp.rows.items())]
                 for table, fp in found.items()}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def value_hash(value: str | None) -> str:
    """A column value's hash; NULL and the empty string differ."""
    return hashlib.md5(("\0" if value is None else "v" + value).encode(), usedforsecurity=False).hexdigest()


def compare_fingerprints(before: Fingerprint, after: Fingerprint) -> list[tuple[str, str | None, int, str]]:
    """What pre-release data is gone or changed: (table, column or None for rows, count, example key)."""
    losses: list[tuple[str, str | None, int, str]] = []
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


def changed_cells(before: Fingerprint, after: Fingerprint, keys: dict[str, set[str]],
                  columns: dict[str, set[str]]) -> set[Cell]:
    """The cells of the rows `keys` (per table) whose value in `columns` (per table) is not the
    same in `after` as in `before`: (table, column, key), column None when the row is gone."""
    changed: set[Cell] = set()
    for table, wanted in keys.items():
        old, new = before.get(table), after.get(table)
        if old is None:
            continue
        for key in sorted(wanted & old.rows.keys()):
            if new is None or key not in new.rows:
                changed.add((table, None, key))
                continue
            changed |= {(table, column, key) for column in sorted(columns.get(table, set()))
                        if column in old.rows[key] and new.rows[key].get(column) != old.rows[key][column]}
    return changed


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
