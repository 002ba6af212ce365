"""The JSON the tool and its Django children exchange, and how a child is started.

Owns: the request and response shapes (TypedDicts, so both sides are type-checked), the marker
that starts the response line, the one-line bootstrap that `manage.py shell -c` runs, and the
step server's messages (`StepRequest`, `ServerEvent`: JSON lines on pipes, not on stdout).

Uses: the standard library only (it is imported on both sides).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TypedDict

MARKER = "@@test_migrations@@"
REQUEST_ENV = "TM_REQUEST"
# The step server's two pipe ends (requests in, events out), as "READ_FD,WRITE_FD".
STEP_SERVER_FDS_ENV = "TM_STEP_SERVER_FDS"


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


class AppDescription(TypedDict):
    label: str
    name: str
    path: str
    has_migrations: bool


class ProbeResponse(TypedDict):
    vendor: str
    database_name: str | None
    conflicts: dict[str, list[str]]
    apps: list[AppDescription]
    migrations: list[MigrationDescription]


class PrepareRequest(TypedDict):
    app: str
    targets: list[list[str]]  # `migrate APP NAME` targets, in order
    window: list[str]  # migration names of `app` to describe


class TableDescription(TypedDict):
    model: str
    auto_now: list[str]  # columns Django fills on every save


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


class StepRequest(TypedDict):
    """One step for the step server (`fork_server`): run `manage.py ARGS` in a forked child."""

    id: int
    args: list[str]  # after `manage.py`
    env: dict[str, str]  # set in the child's os.environ first (e.g. REQUEST_ENV)
    stdout: str  # files the child's fds 1 and 2 are pointed at
    stderr: str


class ServerEvent(TypedDict, total=False):
    """A line from the step server: `ready` (pid, seconds) or `refused` (reason) once, then
    `started` (id, pid) and `exited` (id, returncode as subprocess gives it) per request."""

    event: str
    id: int
    pid: int
    returncode: int
    seconds: float
    migrations: int
    reason: str


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
