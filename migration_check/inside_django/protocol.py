"""The JSON the tool and its Django children exchange, and how a child is started.

Owns: the request and response shapes (TypedDicts, so both sides are type-checked), the marker
that starts the response line, the one-line bootstrap that `manage.py shell -c` runs, and the
step server's messages (`StepRequest`, `ServerEvent`: JSON lines on pipes, not on stdout).

The standard library only: it is imported on both sides.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NotRequired, TypedDict

MARKER = "@@test_migrations@@"
REQUEST_ENV = "TM_REQUEST"
# The step server's two pipe ends (requests in, events out), as "READ_FD,WRITE_FD".
STEP_SERVER_FDS_ENV = "TM_STEP_SERVER_FDS"
# Set to 1 in the tool's environment: the step server skips its warm-up (fork_server.warm_up:
# gc.freeze before forking), so its children take the plain path (the tests compare both ways).
NO_WARMUP_ENV = "TM_NO_WARMUP"
# Set to 1 in the tool's environment: the step server renders no project state for its children
# (inside_django/warm_states.py), which then plan and render as plain `migrate` does (the tests
# compare both ways).
NO_WARM_STATES_ENV = "TM_NO_WARM_STATES"
# Set to 1: each state the step server hands a child is also computed by Django's own code in the
# child, and the step fails when they differ (the tests run with it).
WARM_STATES_CHECK_ENV = "TM_WARM_STATES_CHECK"
# A file the children append a line to each time they use a state the server built (`graph`,
# `state`, `left`): how the tests tell that the shortcut ran.
WARM_STATES_LOG_ENV = "TM_WARM_STATES_LOG"
# Set to 1 in the tool's environment: each stage of a build runs one `migrate APP NAME` per target
# instead of one `migrate` to all of them (inside_django/stages.py; the tests compare both ways).
BUILD_PER_TARGET_ENV = "TM_BUILD_PER_TARGET"


class OperationDescription(TypedDict):
    type: str
    reversible: bool
    description: str
    reverse_code: NotRequired[bool]  # its rollback runs the migration's own code (RunPython, RunSQL)
    forward_code: NotRequired[bool]  # its apply runs the migration's own code (RunPython, RunSQL): a data migration


class MigrationDescription(TypedDict):
    app: str
    name: str
    file: str | None
    dependencies: list[list[str]]
    replaces: list[list[str]]
    operations: list[OperationDescription]
    atomic: NotRequired[bool]  # False: `atomic = False`, each operation commits on its own
    # RunSQL statements that end the transaction they run in (COMMIT, END, ROLLBACK, ...)
    ends_transaction: NotRequired[list[str]]
    reverse_ends_transaction: NotRequired[list[str]]  # the same in its reverse SQL (a rollback)


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
    # where each stage after the first starts in `targets` (a stage: one `migrate` to all its
    # targets, inside_django/stages.py); missing: one stage
    stage_starts: NotRequired[list[int]]
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


class FieldDescription(TypedDict):
    """One concrete field of a historical model, as its code reads and writes the column."""

    name: str
    column: str
    db_type: str | None  # field.db_type() on the connection: "varchar(50)", "numeric(6, 3)", "bigint"
    internal_type: str
    null: bool
    primary_key: bool
    unique: bool
    db_default: bool  # a database default (db_default=): the INSERT sends DEFAULT
    inserted: bool  # the model's INSERT names the column (every concrete field but an auto pk, generated)
    max_length: int | None
    max_digits: int | None
    decimal_places: int | None
    choice: str | int | float | bool | None  # a value from the field's choices, if it has any
    references: list[str] | None  # [table, column] a foreign key points at
    # What the code writes when it leaves the field unset, as text ([None]: NULL, a nullable field
    # without a default); absent when the code always sets it, the default is made at save time
    # (a callable) or is a database default.
    default: NotRequired[list[str | None]]


class ModelDescription(TypedDict):
    """A concrete managed model of a historical state: what its code does with its table."""

    model: str
    table: str
    primary_key: str | None  # column
    fields: list[FieldDescription]
    unique_together: list[list[str]]  # columns of each multi-column unique set (an M2M table's pair)


class DeployStage(TypedDict):
    """When a migration runs relative to the deploy: `post_deploy` when the migration declares it
    (django-safemigrate `safe = Safe.after_deploy`, django-syzygy `stage = Stage.POST_DEPLOY`)."""

    stage: str  # pre_deploy | post_deploy
    marker: str | None  # the declaration, as read: "safe = Safe.after_deploy()"


class WindowMigration(TypedDict):
    tables_before: dict[str, TableDescription]
    tables_after: dict[str, TableDescription]
    effects: list[OperationEffect]
    # For the compat check (absent in older answers: the check is then not run).
    models_before: NotRequired[list[ModelDescription]]
    models_after: NotRequired[list[ModelDescription]]
    deploy_stage: NotRequired[DeployStage]
    # Why the app's models around this migration could not be rendered from the migration's own
    # dependencies (Django's error); then the tables and models above are empty and the proofs
    # that read them do not run for it.
    unreadable: NotRequired[str]


PrepareResponse = dict[str, WindowMigration]  # migration name -> its description


class CutRequest(TypedDict, total=False):
    """Where `interrupted_apply` cuts an attempt: after statement k ran, or during statement k."""

    after: int
    during: int


class InterruptedApplyRequest(TypedDict):
    app: str
    name: str
    cut: CutRequest | None  # None: apply whole and list the statements


class StatementRecord(TypedDict):
    sql: str  # whitespace folded, cut at 300 characters
    in_transaction: bool  # ran inside a transaction (rolled back if the attempt stops there)
    concurrently: bool  # CREATE INDEX / REINDEX ... CONCURRENTLY
    # inside Django's atomic block, the server had no transaction open after it (a COMMIT, END...):
    # what ran before it stays done if the attempt stops later
    ends_transaction: NotRequired[bool]


class InterruptedApplyResponse(TypedDict):
    statements: list[StatementRecord]
    cut: str | None  # how the attempt was stopped; None: it ran to the end
    cut_error: str | None  # the database's message for a cancelled statement


class StepRequest(TypedDict):
    """One step for the step server (`fork_server`): run `manage.py ARGS` in a forked child."""

    id: int
    args: list[str]  # after `manage.py`
    env: dict[str, str]  # set in the child's os.environ first (e.g. REQUEST_ENV)
    stdout: str  # files the child's fds 1 and 2 are pointed at
    stderr: str


class ServerEvent(TypedDict, total=False):
    """A line from the step server: `ready` (pid, seconds, migrations, warm_up) or `refused` (reason) once, then
    `started` (id, pid) and `exited` (id, returncode as subprocess gives it) per request."""

    event: str
    id: int
    pid: int
    returncode: int
    seconds: float
    migrations: int
    warm_up: str  # what fork_server.warm_up did, or why it was skipped
    warm_states: str  # whether the server renders states for its children (warm_states.install), or why not
    reason: str


def respond(payload: object) -> None:
    """Print the answer as the child's last stdout line."""
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


def read_request() -> dict[str, Any]:
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
