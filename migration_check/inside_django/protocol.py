"""The JSON the tool and its Django children exchange, and how a child is started.

Owns: the request and response shapes (TypedDicts, so both sides are type-checked), the marker
that starts the response line, and the one-line bootstrap that `manage.py shell -c` runs.

Uses: the standard library only (it is imported on both sides).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NotRequired, TypedDict

MARKER = "@@test_migrations@@"
REQUEST_ENV = "TM_REQUEST"


class OperationDescription(TypedDict):
    type: str
    reversible: bool
    description: str


class MigrationDescription(TypedDict):
    app: str
    name: str
    file: str | None
    dependencies: list[list[str]]
    replaces: list[list[str]]
    operations: list[OperationDescription]
    atomic: NotRequired[bool]  # False: `atomic = False`, each operation commits on its own


class AppDescription(TypedDict):
    label: str
    name: str
    path: str
    has_migrations: bool


class DatabaseDescription(TypedDict):
    """Where one database alias of the settings points."""

    vendor: str
    name: str | None
    host: str
    port: str


class ProbeResponse(TypedDict):
    vendor: str
    database_name: str | None
    conflicts: dict[str, list[str]]
    apps: list[AppDescription]
    migrations: list[MigrationDescription]
    replaced_migrations: NotRequired[list[MigrationDescription]]  # those squashes of the plan replace
    connection_options: NotRequired[dict[str, str | int | float | bool]]  # what Django passes the driver
    databases: NotRequired[dict[str, DatabaseDescription]]  # every alias


class PrepareRequest(TypedDict):
    app: str
    targets: list[list[str]]  # `migrate APP NAME` targets, in order
    window: list[str]  # migration names of `app` to describe
    replaced: NotRequired[bool]  # the window holds migrations a squash replaces


class TableDescription(TypedDict):
    model: str
    auto_now: list[str]  # columns Django fills on every save
    choices: NotRequired[dict[str, list[str]]]  # column -> the values its field's choices allow


class OperationEffect(TypedDict):
    """What a destructive operation (RemoveField, AlterField, DeleteModel) touches."""

    type: str
    description: str
    table: str
    column: str | None


class WindowMigration(TypedDict):
    tables_before: dict[str, TableDescription]
    tables_after: dict[str, TableDescription]
    effects: list[OperationEffect]


PrepareResponse = dict[str, WindowMigration]  # migration name -> its description


def respond(payload: object) -> None:
    """Print the answer as the child's last stdout line."""
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


def read_request() -> dict:
    return json.loads(os.environ[REQUEST_ENV])


def parse_response(output: str) -> object:
    """The payload of the last marker line in a child's stdout; ValueError when there is none."""
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise ValueError("no probe output found")


def package_home() -> str:
    """The sys.path entry that holds this package: a folder, or the one-file build (.pyz)."""
    return str(Path(__file__).resolve().parent.parent.parent)


def bootstrap_code(module: str) -> str:
    """What `manage.py shell -c` runs to call `main()` of `migration_check.inside_django.<module>`.

    The package is appended to sys.path (the project's own modules keep precedence).
    """
    return (f"import sys; sys.path.append({package_home()!r}); "
            f"from migration_check.inside_django.{module} import main; main()")
