"""Unique keys a migration relaxes or tightens, read from the catalog before and after it.

A unique key is the set of columns of a unique index (a primary key, a UNIQUE constraint,
`unique=True`, `unique_together`, an unconditional `UniqueConstraint`) that has no expression and
no WHERE clause. Comparing the keys before a migration with those after it tells:

- relaxed: a key of before that no key of after implies (none is a subset of its columns). The new
  schema lets users write rows that repeat it, and a rollback that brings the old constraint back
  fails over them ("could not create unique index ... is duplicated"). The post-release seeding
  writes such a row (`Seeder.repeat_key`), so the rollback meets what production would hold.
- tightened: a key of after, on a table that existed before, that no key of before implies. Where
  the old schema allowed duplicates production may hold them, and the apply fails over them. The
  main seeding stays distinct; `tightened_probe` applies the migration on a database of its own
  over rows that repeat the new key.

Owns: `UniqueKeys`, `read_unique_keys`, the pure `relaxed_keys` and `tightened_keys`, and the
hazard of a migration that failed over duplicates (`unique_over_duplicates_hazard`).

Uses: catalog (USER_SCHEMAS), results (Hazard).
"""

from __future__ import annotations

import re
from typing import Any

from ... import rules
from ...postgres.catalog import USER_SCHEMAS
from ...results import Hazard
from ...verdicts import HazardSource

Connection = Any  # a psycopg2 connection
UniqueKeys = dict[str, set[tuple[str, ...]]]  # table (regclass text) -> the column sets of its unique keys
UNIQUE_OVER_DUPLICATES = rules.UNIQUE_OVER_DUPLICATES
UNIQUE_OVER_DUPLICATES_FIX = (
    "Before the constraint, de-duplicate in a RunPython of the same migration (keep one row per key, or make the "
    "others distinct), or prove the production data unique first (SELECT {columns}, count(*) FROM {table} GROUP "
    "BY {columns} HAVING count(*) > 1 returns nothing) and keep that query in the migration's comment.")
# PostgreSQL's message when a unique index cannot be built over the rows (CREATE UNIQUE INDEX,
# ADD CONSTRAINT ... UNIQUE / PRIMARY KEY).
DUPLICATED = re.compile(r"could not create unique index|is duplicated", re.IGNORECASE)

UNIQUE_KEYS_SQL = f"""
    SELECT c.oid::regclass::text, array_agg(a.attname::text ORDER BY a.attname)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
    WHERE i.indisunique AND i.indpred IS NULL AND NOT (0 = ANY(i.indkey::int2[])) AND c.relkind IN ('r', 'p')
      AND NOT c.relispartition AND c.relname <> 'django_migrations'
      AND {USER_SCHEMAS}
    GROUP BY c.oid, i.indexrelid"""


def read_unique_keys(connection: Connection) -> UniqueKeys:
    """Every user table's unique keys (column names sorted)."""
    keys: UniqueKeys = {}
    with connection.cursor() as cursor:
        cursor.execute(UNIQUE_KEYS_SQL)
        for table, columns in cursor.fetchall():
            keys.setdefault(table, set()).add(tuple(columns))
    return keys


def implied(key: tuple[str, ...], by: set[tuple[str, ...]]) -> bool:
    """Whether one of `by` makes `key` unique too (its columns are a subset of `key`'s)."""
    return any(set(other) <= set(key) for other in by)


def relaxed_keys(before: UniqueKeys, after: UniqueKeys, columns_after: dict[str, set[str]] | None,
                 ) -> list[tuple[str, tuple[str, ...]]]:
    """(table, key) of before that the schema after lets rows repeat; only keys whose columns all
    still exist (a key dropped with its column cannot be repeated; `columns_after` None: not
    filtered yet, the candidates only)."""
    found = []
    for table, keys in sorted(before.items()):
        if table not in after or (columns_after is not None and table not in columns_after):
            continue
        found += [(table, key) for key in sorted(keys) if not implied(key, after[table])
                  and (columns_after is None or set(key) <= columns_after[table])]
    return found


def tightened_keys(before: UniqueKeys, after: UniqueKeys, columns_before: dict[str, set[str]],
                   ) -> list[tuple[str, tuple[str, ...]]]:
    """(table, key) of after, on tables that existed before with all the key's columns, that the
    schema before did not enforce."""
    found = []
    for table, keys in sorted(after.items()):
        if table not in columns_before:
            continue
        found += [(table, key) for key in sorted(keys)
                  if not implied(key, before.get(table, set())) and set(key) <= columns_before[table]]
    return found


def unique_over_duplicates_hazard(table: str, key: tuple[str, ...], error: str, migration: str) -> Hazard:
    """The migration could not be applied over rows that repeat `key`, which the schema before allowed."""
    columns = ", ".join(key)
    message = (f"{migration} makes ({columns}) of {table} unique, which the schema before it did not: applied "
               f"over existing rows that repeat it, it fails ({error})")
    fix = UNIQUE_OVER_DUPLICATES_FIX.format(columns=columns, table=table)
    return Hazard(UNIQUE_OVER_DUPLICATES, table, None, error, message, fix, HazardSource.OBSERVED)


def failed_over_duplicates(error: str | None) -> bool:
    return bool(error and DUPLICATED.search(error))
