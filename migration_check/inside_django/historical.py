"""What the code of a historical state does with its tables, and when a migration is deployed.

Runs inside the project's Django process (called by `prepare`). For the compat check it hands
the tool, per concrete managed model of a state of the migration graph, the table, the
columns with their database types, lengths, nullability, database defaults and primary key,
and which columns the model's INSERT names (Django's `Model._save_table`: every concrete field
but an auto-incremented primary key and generated fields). It also reads whether a migration
declares that it runs after the deploy (django-safemigrate, django-syzygy) from the migration
object's attributes, by name: neither package is imported here.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid
from typing import Any

from django.db import connection
from django.db.migrations import Migration
from django.db.migrations.state import ProjectState
from django.db.models import NOT_PROVIDED, Field, UniqueConstraint

from .protocol import DeployStage, FieldDescription, ModelDescription

# Names (lower case) of the declarations that put a migration after the deploy:
# django-safemigrate `Safe.after_deploy` (an Enum member before 5.0, `Safe.after_deploy()` with
# `when=When.after_deploy` since), django-syzygy `Stage.POST_DEPLOY` (value "post_deployment").
AFTER_DEPLOY_NAMES = frozenset({"after_deploy", "post_deploy", "post_deployment"})
STAGE_ATTRIBUTES = ("safe", "stage")  # django-safemigrate, django-syzygy
JSON_SCALARS = (str, int, float, bool)
DEFAULT_SCALARS = (str, int, float, decimal.Decimal, uuid.UUID, datetime.date, datetime.time)


def first_choice(field: Field[Any, Any]) -> str | int | float | bool | None:
    """A value the field's choices allow (the old code writes only those), or None."""
    if not field.choices:
        return None
    for value, _label in field.flatchoices:
        if value not in (None, "") and isinstance(value, JSON_SCALARS):
            return value
    return None


def written_default(field: Field[Any, Any]) -> list[str | None] | None:
    """What the model writes into the column when the code leaves the field unset (`[None]`:
    NULL), as text; None when that is not known here: no default and NOT NULL (the code must set
    it), a callable default (made at save time), a database default (DEFAULT is sent), a value
    that is not a scalar."""
    if getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED or field.primary_key:
        return None
    if not field.has_default():
        return [None] if field.null else None
    value = field.default
    if value is None:
        return [None]
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, DEFAULT_SCALARS):
        return [value.isoformat() if isinstance(value, datetime.date | datetime.time) else str(value)]
    return None


def describe_field(field: Field[Any, Any], auto_field: Field[Any, Any] | None) -> FieldDescription:
    references = None
    if field.is_relation and field.related_model is not None:  # a foreign key (concrete: never M2M)
        # A concrete relation is a ForeignKey: its related model is a class by now, it has target_field.
        relation: Any = field
        references = [relation.related_model._meta.db_table, relation.target_field.column]
    described = describe_columns(field, auto_field, references)
    default = written_default(field)
    if default is not None:
        described["default"] = default
    return described


def describe_columns(field: Field[Any, Any], auto_field: Field[Any, Any] | None,
                     references: list[str] | None) -> FieldDescription:
    return {
        "name": field.name, "column": field.column, "db_type": field.db_type(connection),
        "internal_type": field.get_internal_type(), "null": bool(field.null),
        "primary_key": bool(field.primary_key), "unique": bool(field.unique),
        "db_default": getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED,
        "inserted": field is not auto_field and not getattr(field, "generated", False),
        "max_length": getattr(field, "max_length", None),
        "max_digits": getattr(field, "max_digits", None),
        "decimal_places": getattr(field, "decimal_places", None),
        "choice": first_choice(field), "references": references,
    }


def unique_sets(model: type) -> list[list[str]]:
    """Columns of the model's multi-column unique sets: unique_together and unconditional
    UniqueConstraints on fields."""
    meta = model._meta  # type: ignore[attr-defined]
    sets = [list(names) for names in meta.unique_together]
    sets += [list(c.fields) for c in meta.constraints
             if isinstance(c, UniqueConstraint) and c.fields and c.condition is None]
    return [[meta.get_field(name).column for name in names] for names in sets if len(names) > 1]


def describe_models(state: ProjectState, app_label: str) -> list[ModelDescription]:
    """The concrete managed models of `app_label` in `state` (auto-created M2M tables too)."""
    try:
        config = state.apps.get_app_config(app_label)
    except LookupError:  # the app has no models yet in this state
        return []
    described: list[ModelDescription] = []
    for model in config.get_models(include_auto_created=True):
        meta = model._meta
        if not meta.managed or meta.proxy:
            continue
        described.append({
            "model": meta.label, "table": meta.db_table, "primary_key": meta.pk.column if meta.pk else None,
            "fields": [describe_field(f, meta.auto_field) for f in meta.local_concrete_fields],
            "unique_together": unique_sets(model),
        })
    return sorted(described, key=lambda m: m["table"])


def declared_name(value: Any) -> str | None:
    """The name a staging declaration reads as, whatever its package version made of it."""
    if isinstance(value, bool):  # django-safemigrate 1.x: `safe = False` meant after the deploy
        return None if value else "after_deploy"
    if isinstance(value, enum.Enum):  # safemigrate 2-4 `Safe.after_deploy`, syzygy `Stage.POST_DEPLOY`
        return value.name
    if isinstance(value, str):
        return value
    for inner in ("when", "safe"):  # safemigrate >= 5: Safe(when=When.after_deploy) (4.x dev: safe=)
        if isinstance(getattr(value, inner, None), enum.Enum):
            return getattr(value, inner).name
    return getattr(value, "__name__", None)  # `Safe.after_deploy` written without the call (5.x)


def declared_text(attribute: str, value: Any) -> str:
    """The declaration as the migration file spells it: `safe = Safe.after_deploy()`."""
    if isinstance(value, enum.Enum):
        return f"{attribute} = {type(value).__name__}.{value.name}"
    for inner in ("when", "safe"):
        if isinstance(getattr(value, inner, None), enum.Enum):
            return f"{attribute} = {type(value).__name__}.{getattr(value, inner).name}()"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{attribute} = {value.__qualname__}"
    return f"{attribute} = {value!r}"


def deploy_stage(migration: Migration) -> DeployStage:
    """`post_deploy` when the migration declares it runs after the new code is live."""
    for attribute in STAGE_ATTRIBUTES:
        value = getattr(migration, attribute, None)
        if value is None:
            continue
        name = declared_name(value)
        if name is not None and name.lower() in AFTER_DEPLOY_NAMES:
            return {"stage": "post_deploy", "marker": declared_text(attribute, value)}
    return {"stage": "pre_deploy", "marker": None}
