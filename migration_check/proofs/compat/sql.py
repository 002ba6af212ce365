"""The compat check, server part: the lookups its statements need, and running them in a
transaction that is rolled back.

Every statement runs from the tool's own connection to the chain's database (no `manage.py`
process), inside one transaction that is always rolled back, each in a savepoint of its own,
so one failure does not hide the others and nothing a statement wrote remains. Deferred
constraints (Django's foreign keys are DEFERRABLE INITIALLY DEFERRED) are made immediate,
so a statement is judged as a commit would judge it.

Owns: `resolve` (an existing row's primary key, the row a foreign key refers to) and
`run_rolled_back`.

Takes an open psycopg2 connection in autocommit mode; leaves the database as it found it
(sequences aside: PostgreSQL never rolls them back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...postgres.faults import raise_if_fault
from ...postgres.server import quote_ident
from .statements import Lookup, Outcome, Resolved, Statement, StatementError

Connection = Any  # a psycopg2 connection
SAVEPOINT = "tm_compat"
SETTINGS = ("SET LOCAL statement_timeout = '10s'", "SET LOCAL lock_timeout = '5s'", "SET CONSTRAINTS ALL IMMEDIATE")


def psycopg2_error() -> type[Exception]:
    from ...postgres.driver import load_driver

    return load_driver().Error


def error_of(error: Exception) -> StatementError:
    text = str(error).strip()
    return StatementError(getattr(error, "pgcode", None), text.splitlines()[0] if text else type(error).__name__)


def lookup_queries(lookup: Lookup) -> list[str]:
    """The queries that answer a lookup, best first: the oldest row for an UPDATE (pre-release
    data, there before the migration and after it); for foreign keys, rows not referred to yet
    (so a one-to-one or a unique pair is not violated), else any rows."""
    table = quote_ident(lookup.table)
    if not lookup.targets:
        key = quote_ident(lookup.columns[0])
        return [f"SELECT {key}::text FROM {table} ORDER BY {key} LIMIT 1"]
    aliases = [f"t{index}" for index in range(len(lookup.targets))]
    selected = ", ".join(f"{alias}.{quote_ident(column)}::text"
                         for alias, (_, column) in zip(aliases, lookup.targets, strict=True))
    sources = " CROSS JOIN ".join(f"{quote_ident(target)} {alias}"
                                  for alias, (target, _) in zip(aliases, lookup.targets, strict=True))
    joined = " AND ".join(f"x.{quote_ident(own)} = {alias}.{quote_ident(column)}"
                          for own, alias, (_, column) in zip(lookup.columns, aliases, lookup.targets, strict=True))
    unreferenced = f"SELECT {selected} FROM {sources} WHERE NOT EXISTS (SELECT 1 FROM {table} x WHERE {joined}) LIMIT 1"
    return [unreferenced, f"SELECT {selected} FROM {sources} LIMIT 1"]


def resolve(connection: Connection, lookups: Sequence[Lookup]) -> Resolved:
    """Each lookup's values (None when there is no such row, or the query fails)."""
    resolved: Resolved = {}
    with connection.cursor() as cursor:
        for lookup in lookups:
            resolved[lookup] = None
            for query in lookup_queries(lookup):
                try:
                    cursor.execute(query)
                    row = cursor.fetchone()
                except psycopg2_error():
                    row = None
                if row:
                    resolved[lookup] = tuple(row)
                    break
    return resolved


def run_one(cursor: Any, statement: Statement) -> Outcome:
    """Run a statement in a savepoint that is rolled back at once (its error, or None)."""
    cursor.execute(f"SAVEPOINT {SAVEPOINT}")
    try:
        cursor.execute(statement.sql, statement.params or None)
    except psycopg2_error() as error:
        raise_if_fault(error)  # the server failed, not the old code
        return error_of(error)
    finally:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}")
        cursor.execute(f"RELEASE SAVEPOINT {SAVEPOINT}")
    return None


def run_rolled_back(connection: Connection, statements: Sequence[Statement]) -> list[Outcome]:
    """Each statement's outcome, all in one transaction that is rolled back."""
    with connection.cursor() as cursor:
        cursor.execute("BEGIN")
        try:
            for setting in SETTINGS:
                cursor.execute(setting)
            return [run_one(cursor, statement) for statement in statements]
        finally:
            cursor.execute("ROLLBACK")
