"""Apply one migration with Django's `migrate`, and cut the attempt off part-way.

Runs in `manage.py shell -c` with a scratch database's DATABASE_URL, the database migrated to
just before the migration. The request names the migration and the cut:

- none: the migration is applied whole, and the answer lists the statements it ran (which ran
  inside a transaction, which build an index CONCURRENTLY): the tool picks the cuts from it;
- `after` k: statement k ran, then the attempt stops, as a killed deploy or a `lock_timeout` on
  statement k + 1 would stop it (what ran outside a transaction stays done);
- `during` k: statement k, a CREATE INDEX / REINDEX CONCURRENTLY, is made to wait behind a
  session holding an old snapshot and cancelled by a `statement_timeout`, as in production; it
  leaves an INVALID index behind.

Only the migration's own statements count: Django's bookkeeping (django_migrations) and the
queries before and after the migration do not. The retry that follows is an ordinary
`manage.py migrate` step of the tool, run with nothing in the way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from .protocol import (
    CutRequest,
    InterruptedApplyRequest,
    InterruptedApplyResponse,
    StatementRecord,
    read_request,
    respond,
)

CONCURRENTLY = re.compile(r"^\s*(?:CREATE\s+(?:UNIQUE\s+)?INDEX|REINDEX)\b[^;]*\bCONCURRENTLY\b", re.IGNORECASE)
BOOKKEEPING = re.compile(r"\bdjango_migrations\b")
# libpq's PQTRANS_IDLE, as psycopg2 (2.8+) and psycopg 3 report it in `connection.info.transaction_status`.
TRANSACTION_IDLE = 0
# Long enough for the build to start and reach its wait for older snapshots; the old snapshot
# is held far longer, so the build cannot finish first.
CANCEL_AFTER_MS = 300


class CutOff(Exception):
    """The tool's own interruption of the attempt (never a migration's error)."""


class StatementCounter:
    """An execute wrapper that numbers the migration's statements and cuts where asked."""

    def __init__(self, cut: CutRequest | None) -> None:
        self.cut = cut
        self.statements: list[StatementRecord] = []
        self.cut_error: str | None = None

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        if BOOKKEEPING.search(sql):
            return execute(sql, params, many, context)
        number = len(self.statements) + 1
        record: StatementRecord = {"sql": " ".join(sql.split())[:300], "in_transaction": connection.in_atomic_block,
                                   "concurrently": bool(CONCURRENTLY.match(sql))}
        self.statements.append(record)
        if self.cut is not None and self.cut.get("during") == number:
            self.cancel_while_waiting(execute, sql, params, many, context)
        result = execute(sql, params, many, context)
        record["ends_transaction"] = record["in_transaction"] and server_transaction_idle()
        if self.cut is not None and self.cut.get("after") == number:
            raise CutOff(f"cut off after statement {number}")
        return result

    def cancel_while_waiting(self, execute: Callable[..., Any], sql: str, params: Any, many: bool,
                             context: dict[str, Any]) -> None:
        """Run the statement while another session holds an old snapshot, under a short
        statement_timeout: the CONCURRENTLY build waits for that snapshot and is cancelled."""
        holder = connection.get_new_connection(connection.get_connection_params())
        try:
            holder.autocommit = False
            with holder.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT 1")  # takes the snapshot the build must wait for
            with connection.connection.cursor() as raw:
                raw.execute(f"SET statement_timeout = {CANCEL_AFTER_MS}")
            try:
                execute(sql, params, many, context)
            except Exception as error:  # the cancel we caused: the attempt ends here
                self.cut_error = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise CutOff(f"cancelled during statement {self.cut and self.cut.get('during')}") from error
            raise CutOff("the CONCURRENTLY build finished before the cancel: not cut")
        finally:
            holder.rollback()
            holder.close()
            with connection.connection.cursor() as raw:
                raw.execute("SET statement_timeout = 0")


def server_transaction_idle() -> bool:
    """Whether the server has no transaction open on Django's connection right now. Inside
    Django's atomic block that means the statement just run ended it (a COMMIT in a RunSQL, or
    executed by RunPython code): the driver opens a new one for the next statement, and what ran
    before stays committed whatever happens next. False when the driver does not say."""
    info = getattr(connection.connection, "info", None)
    status = getattr(info, "transaction_status", None)
    return status is not None and int(status) == TRANSACTION_IDLE


@contextmanager
def counting(app_label: str, name: str, counter: StatementCounter) -> Iterator[None]:
    """Count statements only while Django applies `app_label.name` (its own bookkeeping aside)."""
    original = MigrationExecutor.apply_migration

    def apply_migration(self: MigrationExecutor, state: Any, migration: Any, *args: Any, **kwargs: Any) -> Any:
        if (migration.app_label, migration.name) != (app_label, name):
            return original(self, state, migration, *args, **kwargs)
        with connection.execute_wrapper(counter):
            return original(self, state, migration, *args, **kwargs)

    MigrationExecutor.apply_migration = apply_migration  # type: ignore[method-assign]
    try:
        yield
    finally:
        MigrationExecutor.apply_migration = original  # type: ignore[method-assign]


def attempt(request: InterruptedApplyRequest) -> InterruptedApplyResponse:
    counter = StatementCounter(request.get("cut"))
    cut: str | None = None
    with counting(request["app"], request["name"], counter):
        try:
            call_command("migrate", request["app"], request["name"], verbosity=0, interactive=False,
                         skip_checks=True)
        except CutOff as stop:
            cut = str(stop)
    return {"statements": counter.statements, "cut": cut, "cut_error": counter.cut_error}


def main() -> None:
    request: InterruptedApplyRequest = read_request()  # type: ignore[assignment]
    respond(attempt(request))
