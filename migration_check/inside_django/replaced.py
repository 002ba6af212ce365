"""Migrate forward to migrations a squash replaces, the way a database older than the squash does.

A production database that had some of the replaced migrations applied before the squash existed
migrates through the replaced ones, not the squash. Django takes that path by itself once one of
them is recorded as applied, but `manage.py migrate APP REPLACED` cannot start it: while none is
applied, the squash stands in for them and a replaced migration is no node of the graph. So the
first step (and the re-application of the first replaced migration after its rollback) is done
here, by Django's executor with a loader that keeps the replaced migrations
(`replace_migrations=False`); every later step is a plain `manage.py migrate`.

Runs in `manage.py shell -c` with the scratch database's DATABASE_URL. Request: `{"migrations":
[[app, name], ...]}`, applied in order; the answer is the list applied.
"""

from __future__ import annotations

from django.core.management import call_command
from django.core.management.sql import emit_post_migrate_signal
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from .protocol import read_request, respond


def in_default_graph(app_label: str, name: str) -> bool:
    """Whether `migrate APP NAME` can reach the migration (the graph Django builds by default)."""
    return (app_label, name) in MigrationLoader(connections[DEFAULT_DB_ALIAS]).graph.nodes


def apply_through_replaced(app_label: str, name: str) -> None:
    """Apply the migration (and what it needs) on the graph that keeps replaced migrations, and
    send post_migrate as `migrate` does (content types, permissions)."""
    connection = connections[DEFAULT_DB_ALIAS]
    executor = MigrationExecutor(connection)
    executor.loader = MigrationLoader(connection, replace_migrations=False)
    plan = executor.migration_plan([(app_label, name)])
    state = executor.migrate([(app_label, name)], plan=plan)
    emit_post_migrate_signal(0, False, connection.alias, apps=state.apps, plan=plan)


def migrate_forward(app_label: str, name: str) -> None:
    """`migrate APP NAME` when Django can reach it; through the replaced migrations otherwise."""
    if in_default_graph(app_label, name):
        call_command("migrate", app_label, name, verbosity=0, interactive=False, skip_checks=True)
    else:
        apply_through_replaced(app_label, name)


def main() -> None:
    request = read_request()
    for app_label, name in request["migrations"]:
        migrate_forward(app_label, name)
    respond(request["migrations"])
