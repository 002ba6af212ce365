"""Keys the database generates, widened by a migration: what "preserved" cannot speak for.

A migration that widens a generated key (AutoField to BigAutoField: `integer` to `bigint`,
identity or `nextval(...)` default) is narrowed back by its rollback. In production that fails
once a key, or the key's sequence, has passed the narrower type's range (`integer out of range`;
`RESTART value ... cannot be greater than MAXVALUE` for an identity's sequence). The post-release
rows the seeder writes take their keys from the sequence, as users' rows do, so none passed it:
writing such keys on purpose would fail the rollback of nearly every project for tables that
never get near 2^31 rows. The verdict stays; this is a `coverage` finding, one per table, naming
the foreign-key columns widened with the key.

Owns: `WidenedKey`, `widened_keys` and `widened_key_findings`. Pure: reads two schema snapshots
(`proofs.schema`), no database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ... import rules
from ...results import Finding
from ...verdicts import FindingKind
from ..schema import SchemaSnapshot

# The largest value of each integer type, by its name in `format_type`.
INTEGER_MAX = {"smallint": 32_767, "integer": 2_147_483_647, "bigint": 9_223_372_036_854_775_807}
NEXTVAL = re.compile(r"nextval\('(?P<sequence>(?:[^']|'')+)'")
PRIMARY_KEY = re.compile(r"^PRIMARY KEY \((?P<columns>[^)]*)\)")
FOREIGN_KEY = re.compile(r"^FOREIGN KEY \((?P<column>[^,)]+)\) REFERENCES (?P<table>.+?)\((?P<target>[^,)]+)\)")


@dataclass(frozen=True)
class WidenedKey:
    """A generated key column that is `after` after the migration and `before` before it, its
    sequence (None when the snapshot does not say), and the foreign-key columns pointing to it
    that were widened with it ("table.column")."""

    table: str
    column: str
    before: str
    after: str
    sequence: str | None
    referencing: tuple[str, ...] = ()


def split_column_key(key: str) -> tuple[str, str] | None:
    """("table", "column") of a snapshot key "column table.column" (the table may carry a schema)."""
    if not key.startswith("column "):
        return None
    table, _, column = key.removeprefix("column ").rpartition(".")
    return (table, column) if table else None


def widened(before: dict[str, str] | None, after: dict[str, str]) -> bool:
    """The column's integer type is wider after the migration than before it."""
    if before is None:
        return False
    was, now = before.get("type", ""), after.get("type", "")
    return was in INTEGER_MAX and now in INTEGER_MAX and INTEGER_MAX[now] > INTEGER_MAX[was]


def unquote(name: str) -> str:
    return name.strip().strip('"')


def bare(table: str) -> str:
    """A table's name without its schema (constraint definitions omit the one on the search path)."""
    return unquote(table.rsplit(".", 1)[-1])


def primary_keys(snapshot: SchemaSnapshot) -> set[tuple[str, str]]:
    """(table, column) of every primary-key column."""
    found: set[tuple[str, str]] = set()
    for key, attributes in snapshot.items():
        match = PRIMARY_KEY.match(attributes.get("definition", ""))
        if key.startswith("constraint ") and " on " in key and match:
            table = key.rsplit(" on ", 1)[1]
            found.update((table, unquote(column)) for column in match["columns"].split(","))
    return found


def generated(attributes: dict[str, str], in_primary_key: bool) -> bool:
    """The values come from the database, never from the seeder: an identity column, or a primary
    key with a sequence default (a serial). The seeder writes every other column, edges included
    (seeding.Seeder._row_values), so their widening is tested by the rollback itself."""
    return bool(attributes.get("identity")) or (in_primary_key and "nextval(" in (attributes.get("default") or ""))


def sequence_of(table: str, column: str, attributes: dict[str, str], snapshot: SchemaSnapshot) -> str | None:
    """The sequence a generated column draws from: its `nextval` default, or the sequence owned by it."""
    match = NEXTVAL.search(attributes.get("default") or "")
    if match:
        return match["sequence"].replace("''", "'")
    owner = f"{table}.{column}"
    return next((key.removeprefix("sequence ") for key, seq in sorted(snapshot.items())
                 if key.startswith("sequence ") and seq.get("owned by") == owner), None)


def referencing_columns(table: str, column: str, before: SchemaSnapshot, after: SchemaSnapshot) -> tuple[str, ...]:
    """Foreign-key columns ("table.column") pointing to `table.column` and widened as well."""
    found: set[str] = set()
    for key, attributes in after.items():
        match = FOREIGN_KEY.match(attributes.get("definition", ""))
        if not (key.startswith("constraint ") and " on " in key and match):
            continue
        if bare(match["table"]) != bare(table) or unquote(match["target"]) != column:
            continue
        source = f"{key.rsplit(' on ', 1)[1]}.{unquote(match['column'])}"
        if widened(before.get(f"column {source}"), after.get(f"column {source}", {})):
            found.add(source)
    return tuple(sorted(found))


def widened_keys(before: SchemaSnapshot, after: SchemaSnapshot) -> list[WidenedKey]:
    """Generated key columns the migration widened (before and after it), in table order."""
    keys, primary = [], primary_keys(after)
    for key in sorted(after):
        parts = split_column_key(key)
        attributes = after[key]
        if parts is None or not widened(before.get(key), attributes) or not generated(attributes, parts in primary):
            continue
        table, column = parts
        keys.append(WidenedKey(table, column, before[key]["type"], attributes["type"],
                               sequence_of(table, column, attributes, after),
                               referencing_columns(table, column, before, after)))
    return keys


def describe(key: WidenedKey, migration: str) -> str:
    with_it = f" (and with it {', '.join(key.referencing)})" if key.referencing else ""
    check = f"the sequence: SELECT last_value FROM {key.sequence}" if key.sequence \
        else f"SELECT max({key.column}) FROM {key.table}"
    return (f"column {key.column} is {key.after} after {migration} and {key.before} before{with_it}; post-release "
            f"keys come from its sequence, so none passed {key.before}'s range here: in production the rollback "
            f"fails once {key.column} passes {INTEGER_MAX[key.before]:,} (check {check})")


def widened_key_findings(migration: str, before: SchemaSnapshot | None,
                         after: SchemaSnapshot | None) -> list[Finding]:
    """One `coverage` finding per table whose generated key `migration` widened (none when the
    schema was not recorded: the schema proof is off)."""
    if before is None or after is None:
        return []
    by_table: dict[str, list[WidenedKey]] = {}
    for key in widened_keys(before, after):
        by_table.setdefault(key.table, []).append(key)
    return [finding(table, keys, migration) for table, keys in by_table.items()]


def finding(table: str, keys: Iterable[WidenedKey], migration: str) -> Finding:
    keys = list(keys)
    column = keys[0].column if len(keys) == 1 else None
    message = f"table {table}: " + "; ".join(describe(key, migration) for key in keys)
    return Finding(FindingKind.COVERAGE, message, {"table": table, "column": column}, rules.DATA_NOT_COVERED)
