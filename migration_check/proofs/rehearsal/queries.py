"""The previous release's traffic, pure part: what its code does with a table, as the short
transactions the rehearsal's sessions run while a migration applies.

The statements are the compat check's (compat/statements.py: INSERT and UPDATE as Django
builds them from the models before the migration, with values those models allow), plus the
reads and the delete a running site does: SELECT by primary key, SELECT by a filter on another
column, and DELETE of a row the transaction inserted itself. Every transaction is rolled back.

Owns: `TrafficQuery` and `traffic_queries`.

Pure: no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...inside_django.protocol import ModelDescription
from ...postgres.server import quote_ident
from ...verdicts import TrafficKind
from ..compat.statements import (
    PROFILES,
    Lookup,
    NoValue,
    Resolved,
    Statement,
    insert_statement,
    lookups_for,
    row_lookup,
    update_statement,
)


@dataclass(frozen=True)
class TrafficQuery:
    """One short transaction of the previous release on `table`: `statements` in order; for
    `delete_inserted` the first is an INSERT ... RETURNING the key, which the second deletes."""

    table: str
    kind: TrafficKind
    statements: tuple[Statement, ...]


def traffic_lookups(models: Sequence[ModelDescription]) -> list[Lookup]:
    """What the queries need from the database before they can be built (the compat check's)."""
    return lookups_for(models)


def filter_column(model: ModelDescription) -> str | None:
    """A column other than the key to filter on, as a list page would: the first text or
    integer column that is not a foreign key."""
    for field in model["fields"]:
        db_type = (field["db_type"] or "").lower()
        textual = db_type.startswith(("varchar", "character", "text", "integer", "bigint", "smallint", "date"))
        if not field["primary_key"] and not field["references"] and textual:
            return field["column"]
    return None


def first_written(model: ModelDescription, action: str, resolved: Resolved, token: int) -> Statement | None:
    """The first of the compat check's candidate rows that could be built (the typical row
    before the edge one: a site writes ordinary values)."""
    build = insert_statement if action == "INSERT" else update_statement
    for profile, offset in (PROFILES[1], PROFILES[0], PROFILES[2]):
        statement = build(model, profile, token + offset, resolved)
        if not isinstance(statement, NoValue):
            return statement
    return None


def model_queries(model: ModelDescription, resolved: Resolved, token: int) -> list[TrafficQuery]:
    table, key = model["table"], model["primary_key"]
    columns = ", ".join(quote_ident(f["column"]) for f in model["fields"])
    quoted = quote_ident(table)
    queries: list[TrafficQuery] = []
    row = resolved.get(row_lookup(model)) if key else None
    if key and row is not None:
        sql = f"SELECT {columns} FROM {quoted} WHERE {quote_ident(key)} = %s"
        queries.append(TrafficQuery(table, TrafficKind.SELECT_BY_KEY, (Statement(sql, (row[0],)),)))
    column = filter_column(model)
    if column is not None:
        sql = f"SELECT {columns} FROM {quoted} WHERE {quote_ident(column)} IS NOT NULL ORDER BY 1 DESC LIMIT 20"
        queries.append(TrafficQuery(table, TrafficKind.SELECT_BY_FILTER, (Statement(sql),)))
    insert = first_written(model, "INSERT", resolved, token)
    if insert is not None:
        queries.append(TrafficQuery(table, TrafficKind.INSERT, (insert,)))
    update = first_written(model, "UPDATE", resolved, token + 100)
    if update is not None:
        queries.append(TrafficQuery(table, TrafficKind.UPDATE, (update,)))
    if insert is not None and key and "RETURNING" in insert.sql:
        delete = Statement(f"DELETE FROM {quoted} WHERE {quote_ident(key)} = %s")
        queries.append(TrafficQuery(table, TrafficKind.DELETE_INSERTED, (insert, delete)))
    return queries


def traffic_queries(models: Sequence[ModelDescription], tables: Sequence[str], resolved: Resolved,
                    ) -> list[TrafficQuery]:
    """Every query of the models whose table is one of `tables`, in table order."""
    wanted = set(tables)
    queries: list[TrafficQuery] = []
    for number, model in enumerate(sorted(models, key=lambda m: m["table"])):
        if model["table"] in wanted:
            queries += model_queries(model, resolved, 5000 + 1000 * number)
    return queries
