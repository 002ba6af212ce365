"""The project as Django sees it: apps, every migration in plan order, leaf conflicts, and the
database the settings use. Runs in `manage.py shell -c`; reads migration files from disk and
never touches a database (`MigrationLoader(None)`).
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import sqlparse  # Django's own dependency: RunSQL splits its statements with it
from django.apps import apps
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation
from django.db.migrations.operations.special import RunPython, RunSQL, SeparateDatabaseAndState

from .protocol import (
    AppDescription,
    DatabaseDescription,
    MigrationDescription,
    OperationDescription,
    ProbeResponse,
    respond,
)


def plan_order(loader: MigrationLoader) -> list[tuple[str, str]]:
    """Every migration once, each after its dependencies (leaf by leaf)."""
    plan: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for leaf in loader.graph.leaf_nodes():
        for key in loader.graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                plan.append(key)
    return plan


def describe_operation(operation: Operation) -> OperationDescription:
    try:
        description = operation.describe()
    except (AttributeError, TypeError, ValueError, KeyError, IndexError):
        # A third-party operation whose describe() needs arguments it was not given: its class
        # name still tells the reader what it is.
        description = type(operation).__name__
    return {"type": type(operation).__name__, "reversible": bool(operation.reversible),
            "description": description, "reverse_code": runs_reverse_code(operation),
            "forward_code": runs_forward_code(operation)}


def runs_forward_code(operation: Operation) -> bool:
    """The operation runs code of the migration's own when applied: a RunPython whose `code` is
    not `RunPython.noop`, a RunSQL whose `sql` is not empty or `RunSQL.noop` (also inside
    SeparateDatabaseAndState): a data migration, which may fix rows a later one relies on."""
    if isinstance(operation, SeparateDatabaseAndState):
        return any(runs_forward_code(inner) for inner in operation.database_operations)
    if isinstance(operation, RunPython):
        return operation.code is not RunPython.noop
    if isinstance(operation, RunSQL):
        return operation.sql not in (RunSQL.noop, "", [], ())
    return False


def runs_reverse_code(operation: Operation) -> bool:
    """The operation runs code of the migration's own when rolled back: a RunPython whose
    `reverse_code` is not `RunPython.noop`, a RunSQL whose `reverse_sql` is not empty or
    `RunSQL.noop` (also inside SeparateDatabaseAndState). The data proof reads it as the
    migration adapting rows on purpose (a reverse that shortens long values before narrowing)."""
    if isinstance(operation, SeparateDatabaseAndState):
        return any(runs_reverse_code(inner) for inner in operation.database_operations)
    if isinstance(operation, RunPython):
        return operation.reverse_code not in (None, RunPython.noop)
    if isinstance(operation, RunSQL):
        return operation.reverse_sql not in (None, RunSQL.noop, "", [], ())
    return False


# A statement that ends the transaction it runs in: COMMIT, END, ABORT, ROLLBACK (not ROLLBACK TO
# a savepoint), PREPARE TRANSACTION. In an atomic migration's RunSQL it commits (or drops) what
# ran before it and leaves the rest to a new transaction, so a deploy cut off after it is no
# longer rolled back whole (the retry proof then cuts it as it cuts a non-atomic migration), nor
# is a rollback that fails after it (the chain checks for a half-reversed database).
ENDS_TRANSACTION = re.compile(
    r"^(?:COMMIT|END|ABORT|ROLLBACK(?!\s+(?:WORK\s+|TRANSACTION\s+)?TO\b)|PREPARE\s+TRANSACTION)\b", re.IGNORECASE)
# sqlparse reads about half a megabyte a second, and every migration of the project is probed:
# SQL without one of these words is not parsed at all, and a text longer than PARSE_AT_MOST (a
# data load) is read line by line instead (a line holding nothing but such a statement).
MAY_END_TRANSACTION = re.compile(r"\b(?:COMMIT|END|ABORT|ROLLBACK|PREPARE)\b", re.IGNORECASE)
PARSE_AT_MOST = 100_000
LONE_ENDING_LINE = re.compile(r"^[ \t]*((?:COMMIT|END|ABORT|ROLLBACK)(?:[ \t]+(?:WORK|TRANSACTION))?)[ \t]*;?[ \t]*$",
                              re.IGNORECASE | re.MULTILINE)
# What the line-by-line reading must not look into: a function or procedure body ($$ ... $$,
# whose `END;` closes a block and whose `COMMIT;` is a procedure's own), a block comment, a
# quoted string.
NOT_STATEMENTS = re.compile(r"\$(\w*)\$.*?\$\1\$|/\*.*?\*/|'(?:[^']|'')*'", re.DOTALL)


def sql_texts(sql: object) -> list[str]:
    """The texts a RunSQL's `sql` or `reverse_sql` sends, one `execute` each: a list's items (a
    string, or a (sql, params) pair), or the string itself (on PostgreSQL Django sends a script
    in one piece; an item may hold several statements too)."""
    items = sql if isinstance(sql, (list, tuple)) else [sql]
    texts = [item[0] if isinstance(item, (list, tuple)) and item else item for item in items]
    return [text for text in texts if isinstance(text, str) and text.strip()]


def sql_statements(text: str) -> list[str]:
    """The statements of one text as the server runs them, split by sqlparse (as Django splits
    scripts for other databases), comments stripped and whitespace folded."""
    folded = (" ".join(sqlparse.format(statement, strip_comments=True).split()) for statement in sqlparse.split(text))
    return [statement for statement in folded if statement]


def ending_statements(text: str) -> list[str]:
    """The statements of `text` that end the transaction they run in."""
    if not MAY_END_TRANSACTION.search(text):
        return []
    if len(text) > PARSE_AT_MOST:
        outside = NOT_STATEMENTS.sub("''", text)
        return [" ".join(match.group(1).split()) for match in LONE_ENDING_LINE.finditer(outside)]
    return [statement.rstrip(";").rstrip()[:120] for statement in sql_statements(text)
            if ENDS_TRANSACTION.match(statement)]


def transaction_ends(operations: Iterable[Operation], reverse: bool = False) -> list[str]:
    """The statements of `operations` (RunSQL, also inside SeparateDatabaseAndState) that end
    the transaction they run in: their forward SQL, or with `reverse` their reverse SQL. Code
    (RunPython) is not read: what it executes is only seen when it runs
    (inside_django/interrupted_apply.py records that for applies)."""
    found: list[str] = []
    for operation in operations:
        if isinstance(operation, SeparateDatabaseAndState):
            found += transaction_ends(operation.database_operations, reverse)
        elif isinstance(operation, RunSQL):
            try:
                found += [ending for text in sql_texts(operation.reverse_sql if reverse else operation.sql)
                          for ending in ending_statements(text)]
            except Exception:  # noqa: BLE001 - SQL that cannot be read (a subclass, sqlparse) is not judged
                continue
    return found


def source_file(migration: object) -> str | None:
    module = sys.modules.get(type(migration).__module__)
    try:
        return inspect.getsourcefile(module) if module is not None else None
    except TypeError:  # a built-in or a module without a file
        return None


def describe_migration(loader: MigrationLoader, key: tuple[str, str]) -> MigrationDescription:
    migration = loader.graph.nodes[key]
    return {
        "app": key[0], "name": key[1], "file": source_file(migration),
        "dependencies": sorted(list(parent.key) for parent in loader.graph.node_map[key].parents),
        "replaces": [list(replaced) for replaced in migration.replaces],
        "operations": [describe_operation(op) for op in migration.operations],
        "atomic": bool(migration.atomic),
        "ends_transaction": transaction_ends(migration.operations),
        "reverse_ends_transaction": transaction_ends(migration.operations, reverse=True),
    }


def describe_apps(loader: MigrationLoader) -> list[AppDescription]:
    return [{"label": config.label, "name": config.name, "path": str(Path(config.path).resolve()),
             "has_migrations": config.label in loader.migrated_apps} for config in apps.get_app_configs()]


# Connection parameters that say where and as whom to connect: the tool has its own (the scratch
# database's); everything else Django passes to the driver (options, search_path...) it copies.
LOCATION_PARAMETERS = ("dbname", "database", "user", "password", "host", "hostaddr", "port", "passfile", "service",
                       "application_name")


def connection_options() -> dict[str, str | int | float | bool]:
    """The driver parameters Django connects with, but those that say where and as whom (and
    objects such as a cursor factory): the tool's own connections use the same, so they see the
    same search_path."""
    if connection.vendor != "postgresql":
        return {}
    return {key: value for key, value in connection.get_connection_params().items()
            if key not in LOCATION_PARAMETERS and isinstance(value, (str, int, float, bool))}


def describe_databases() -> dict[str, DatabaseDescription]:
    """Every database alias of the settings: where it points (nothing is connected)."""
    found: dict[str, DatabaseDescription] = {}
    for alias in connections:
        settings_dict = connections[alias].settings_dict
        name = settings_dict.get("NAME")
        found[alias] = {"vendor": connections[alias].vendor, "name": None if name is None else str(name),
                        "host": str(settings_dict.get("HOST") or ""), "port": str(settings_dict.get("PORT") or "")}
    return found


def replaced_migrations(loader: MigrationLoader) -> list[MigrationDescription]:
    """The migrations the plan's squashes replace (in each squash's order), described from a
    graph that keeps them: a database older than a squash migrates through them."""
    squashes = [migration for migration in loader.graph.nodes.values() if migration.replaces]
    if not squashes:
        return []
    full = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
    return [describe_migration(full, (app, name)) for squash in squashes for app, name in squash.replaces
            if (app, name) in full.graph.nodes]


def probe() -> ProbeResponse:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    name = connection.settings_dict.get("NAME")
    return {
        "vendor": connection.vendor,
        # SQLite settings name a Path (startproject's default): a string either way.
        "database_name": None if name is None else str(name),
        "conflicts": {app: sorted(names) for app, names in loader.detect_conflicts().items()},
        "apps": describe_apps(loader),
        "migrations": [describe_migration(loader, key) for key in plan_order(loader)],
        "replaced_migrations": replaced_migrations(loader),
        "connection_options": connection_options(),
        "databases": describe_databases(),
    }


def main() -> None:
    respond(probe())
