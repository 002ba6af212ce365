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
from django.db.migrations.operations.special import RunSQL, SeparateDatabaseAndState

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
            "description": description}


# A statement that ends the transaction it runs in: COMMIT, END, ABORT, ROLLBACK (not ROLLBACK TO
# a savepoint), PREPARE TRANSACTION. In an atomic migration's RunSQL it commits (or drops) what
# ran before it and leaves the rest to a new transaction, so a deploy cut off after it is no
# longer rolled back whole (the retry proof then cuts it as it cuts a non-atomic migration).
ENDS_TRANSACTION = re.compile(
    r"^(?:COMMIT|END|ABORT|ROLLBACK(?!\s+(?:WORK\s+|TRANSACTION\s+)?TO\b)|PREPARE\s+TRANSACTION)\b", re.IGNORECASE)


def sql_statements(sql: object) -> list[str]:
    """RunSQL's statements (forward or reverse) as the server receives them, comments stripped and whitespace
    folded: a list's items (a string or a (sql, params) pair; an item may hold several
    statements, which the driver sends together), or a string split by sqlparse as Django does."""
    if isinstance(sql, (list, tuple)):
        texts = [item[0] if isinstance(item, (list, tuple)) and item else item for item in sql]
    else:
        texts = [sql]
    statements = []
    for text in texts:
        if isinstance(text, str) and text.strip():
            for statement in sqlparse.split(text):
                folded = " ".join(sqlparse.format(statement, strip_comments=True).split())
                if folded:
                    statements.append(folded)
    return statements


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
            sql = operation.reverse_sql if reverse else operation.sql
            found += [statement.rstrip(";").rstrip()[:120] for statement in sql_statements(sql)
                      if ENDS_TRANSACTION.match(statement)]
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
