"""Build a scratch database forward to the state before a window, then describe the window.

Runs in `manage.py shell -c` with the scratch database's DATABASE_URL. It applies the request's
targets with real `migrate` commands (signals included, as `manage.py migrate` would), one per
stage (`stages`), then, for each migration of the window, describes from the migration graph the
app's tables before and after it (historical models) and what its destructive operations touch,
and, for the compat check, the models on each side of it and whether it runs after the deploy
(`historical`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.migration import Migration
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState
from django.db.models import Field

from .historical import deploy_stage, describe_models
from .protocol import (
    OperationEffect,
    PrepareRequest,
    PrepareResponse,
    TableDescription,
    WindowMigration,
    read_request,
    respond,
)
from .replaced import migrate_forward
from .stages import migrate_stage

DESTRUCTIVE = ("RemoveField", "AlterField", "DeleteModel")


def app_tables(state: ProjectState, app_label: str) -> dict[str, TableDescription]:
    """The managed, concrete tables of `app_label` in `state` (auto-created M2M tables too)."""
    try:
        config = state.apps.get_app_config(app_label)
    except LookupError:  # the app has no models yet in this state
        return {}
    tables: dict[str, TableDescription] = {}
    for model in config.get_models(include_auto_created=True):
        meta = model._meta
        if meta.managed and not meta.proxy:
            tables[meta.db_table] = {
                "model": meta.label,
                "auto_now": sorted(f.column for f in meta.local_concrete_fields if getattr(f, "auto_now", False)),
                "choices": field_choices(meta.local_concrete_fields),
            }
    return tables


def field_choices(fields: Sequence[Field[Any, Any]]) -> dict[str, list[str]]:
    """Column -> the values its field's `choices` allow, as text (what the application can
    write: the seeder uses these instead of arbitrary text)."""
    found = {}
    for field in fields:
        if field.choices:
            values = [choice_text(value) for value, _ in field.flatchoices if value is not None]
            if values:
                found[field.column] = values
    return found


def choice_text(value: object) -> str:
    """A choice's value as PostgreSQL reads it back from text (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def effect_of(operation: Operation, state: ProjectState, app_label: str) -> OperationEffect | None:
    """The table (and column) a destructive operation destroys values in, seen in `state`."""
    kind = type(operation).__name__
    if kind not in DESTRUCTIVE:
        return None
    effect: OperationEffect = {"type": kind, "description": operation.describe(), "table": "", "column": None}
    # Django's field and model operations (DESTRUCTIVE) have `name` (and `model_name`); Operation has neither.
    named: Any = operation
    model_name = named.name if kind == "DeleteModel" else named.model_name
    try:
        model = state.apps.get_model(app_label, model_name)
        if kind == "DeleteModel":
            return {**effect, "table": model._meta.db_table}
        field = model._meta.get_field(named.name)
    except (LookupError, FieldDoesNotExist):  # not in this state (e.g. another app's model)
        return None
    if field.many_to_many:
        return {**effect, "table": field.remote_field.through._meta.db_table}
    return {**effect, "table": model._meta.db_table, "column": field.column}


def describe_window(request: PrepareRequest) -> PrepareResponse:
    # Migrations a squash replaces are nodes only of a graph that keeps them.
    loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=not request.get("replaced", False))
    app = request["app"]
    described: PrepareResponse = {}
    for name in request["window"]:
        migration = loader.graph.nodes[(app, name)]
        try:
            before, after = rendered_states(loader, migration)
        except (ValueError, LookupError) as error:  # Django's own words when a state does not render
            # The state of the migration's own dependencies, rendered alone, may not hold together
            # where `migrate` (which renders every applied migration) has no trouble: a model moved to
            # another app by a migration this one does not depend on (django-oscar's customer.0008).
            # The migration is still tested; only what needs its models is not.
            described[name] = {"tables_before": {}, "tables_after": {}, "effects": [],
                               "unreadable": f"{type(error).__name__}: {error}"}
            continue
        described[name] = describe_migration(migration, before, after, app)
    return described


def rendered_states(loader: MigrationLoader, migration: Migration) -> tuple[ProjectState, ProjectState]:
    """The project state of the migration's own dependencies and the state after it, both
    rendered (a state that does not render raises here, nowhere later)."""
    before = loader.project_state((migration.app_label, migration.name), at_end=False)
    after = migration.mutate_state(before, preserve=True)
    _ = before.apps, after.apps
    return before, after


def describe_migration(migration: Migration, before: ProjectState, after: ProjectState, app: str) -> WindowMigration:
    """The app's tables and models just before and after `migration`, and the destructive
    operations' effects."""
    effects = [effect for op in migration.operations if (effect := effect_of(op, before, app))]
    return {"tables_before": app_tables(before, app), "tables_after": app_tables(after, app), "effects": effects,
            # the compat check: the code on each side of the migration, and its stage
            "models_before": describe_models(before, app), "models_after": describe_models(after, app),
            "deploy_stage": deploy_stage(migration)}


def stages_of(request: PrepareRequest) -> list[list[tuple[str, str]]]:
    """The request's targets cut where its stages start."""
    targets = [(app_label, name) for app_label, name in request["targets"]]
    cuts = [0, *request.get("stage_starts", []), len(targets)]
    return [targets[start:end] for start, end in zip(cuts, cuts[1:], strict=False)]


def main() -> None:
    request: PrepareRequest = read_request()  # type: ignore[assignment]
    if request.get("replaced", False):  # a database older than a squash: maybe through the replaced ones
        for app_label, name in request["targets"]:
            migrate_forward(app_label, name)
    else:
        for stage in stages_of(request):
            migrate_stage(stage)
    respond(describe_window(request))
