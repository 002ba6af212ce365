"""The compat check, pure part: what the code on one side of a migration does with its tables,
as SQL statements, and the verdict once they have run on both schemas.

During a deploy the previous release keeps serving requests after `migrate` has run: its
models (the state before the migration) run on the schema after it. A migration declared to run
after the deploy (django-safemigrate `Safe.after_deploy`, django-syzygy `Stage.POST_DEPLOY`)
runs while the new release is live: the new models (the state after it) run on the schema
before it. For every concrete managed model of the app on the code's side, the code's queries
are built the way Django builds them: `SELECT` of every column it knows, `INSERT` of a row
naming every concrete column but an auto primary key (with values that model allows: its
lengths, precisions, choices), `UPDATE` of those columns on an existing row.

A statement counts against the migration only when it succeeds on the schema its code was
written for (the baseline) and fails on the other one: a generated row that the baseline
schema rejects too (a check constraint, say) is this generator's limit, reported as
information, never as a verdict. So a false alarm needs the two schemas to differ.

Owns: the directions, the values made per field (`field_value`), the lookups a statement
needs from the database (`lookups_for`), the statements (`build_probes`), how they are
displayed, the verdict (`judge_compat`) and the safe pattern named with each failure
(`safe_pattern`).

Pure: no database, no process.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ... import rules
from ...inside_django.protocol import FieldDescription, ModelDescription, WindowMigration
from ...postgres.server import quote_ident
from ...results import Finding
from ...verdicts import Compat, CompatDirection, FindingKind

OLD_ON_NEW = CompatDirection.OLD_CODE_ON_NEW_SCHEMA  # the default: the previous release on the schema after
NEW_ON_OLD = CompatDirection.NEW_CODE_ON_OLD_SCHEMA  # a post-deploy migration: the new release on the schema before
BREAKS = Compat.BREAKS_OLD_CODE

# Rows tried in turn until the baseline schema accepts one: "edge" (the largest the model allows),
# "typical" (short text, ordinary numbers), "small" (typical, with integers 1..50 for checks like
# `<= 100`). The typical and small rows share their token: a small row equal to the typical one
# is not tried twice.
Profile = str
DEFAULTS_ACTION = "INSERT (defaults)"  # a Probe's action: the row the code writes with fields left unset
PROFILES: tuple[tuple[Profile, int], ...] = (("edge", 0), ("typical", 300), ("small", 300))
INTEGER_MAX = {"smallint": 32767, "integer": 2147483647, "bigint": 9223372036854775807}
TEXT_TYPE = re.compile(r"^(?:varchar|character varying|char|character)(?:\((\d+)\))?$")
NUMERIC_TYPE = re.compile(r"^(?:numeric|decimal)(?:\((\d+),\s*(\d+)\))?$")
UNLIMITED_TEXT_LENGTH = 300
SCALAR_VALUES = {  # db_type -> (edge, typical), as text literals the column's input function reads
    "boolean": ("true", "false"),
    "date": ("2999-12-31", "2024-01-02"),
    "timestamp with time zone": ("2999-12-31 23:59:59.999999+00", "2024-01-02 03:04:05+00"),
    "timestamp": ("2999-12-31 23:59:59.999999", "2024-01-02 03:04:05"),
    "time": ("23:59:59.999999", "12:00:00"),
    "interval": ("36500 days", "1 day"),
    "double precision": ("1e300", "1.5"),
    "real": ("1e38", "1.5"),
    "jsonb": ('{"test_migrations": "compat"}', "{}"),
    "json": ('{"test_migrations": "compat"}', "{}"),
    "bytea": ("\\x00ff", "\\x01"),
    "inet": ("2001:db8::1", "192.0.2.1"),
    "cidr": ("2001:db8::/32", "192.0.2.0/24"),
    "macaddr": ("ff:ff:ff:ff:ff:ff", "08:00:2b:01:02:03"),
    # django.contrib.postgres: SearchVectorField, HStoreField, the range fields, CI text
    "tsvector": ("'compat':1 'test':2", "'compat':1"),
    "tsquery": ("compat & test", "compat"),
    "hstore": ('"test_migrations"=>"compat"', ""),
    "int4range": ("[1,2147483647)", "[1,10)"),
    "int8range": ("[1,9223372036854775807)", "[1,10)"),
    "numrange": ("[0.5,12345678901234567890.5)", "[1.5,2.5)"),
    "daterange": ("[2024-01-02,2999-12-31)", "[2024-01-02,2024-01-03)"),
    "tstzrange": ("[2024-01-02 03:04:05+00,2999-12-31 23:59:59+00)", "[2024-01-02 03:04:05+00,2024-01-03 00:00:00+00)"),
    "xml": ("<test_migrations>compat</test_migrations>", "<compat/>"),
}


@dataclass(frozen=True)
class Lookup:
    """What statements need from the database before they can be built: an existing row's
    primary key (`columns` is the key, no `targets`: what an UPDATE targets), or rows for
    foreign keys to refer to (each of `columns` refers to the `targets` entry at its position;
    resolved together when they form a unique set, so the pair is not there yet)."""

    table: str
    columns: tuple[str, ...]
    targets: tuple[tuple[str, str], ...] = ()


Resolved = dict[Lookup, tuple[str, ...] | None]  # a lookup's values (None: no such row)


@dataclass(frozen=True)
class NoValue:
    """No value could be made for a column (the statement cannot be built): why."""

    reason: str


@dataclass(frozen=True)
class Statement:
    sql: str
    params: tuple[str | None, ...] = ()


@dataclass(frozen=True)
class Probe:
    """One thing the code does with a table, as candidate statements: every candidate runs on
    both schemas, and the first one the baseline schema accepts is the one judged. `missing`
    says why there is no candidate."""

    model: str
    table: str
    action: str  # SELECT | INSERT | INSERT (defaults) | UPDATE
    candidates: tuple[Statement, ...]
    missing: str | None = None


@dataclass(frozen=True)
class StatementError:
    code: str | None  # SQLSTATE
    message: str  # the database's first line


Outcome = StatementError | None  # what running one statement did (None: it succeeded)


@dataclass(frozen=True)
class CompatPlan:
    """What a migration's check runs: the direction, the models of the code on that side, and
    the post-deploy declaration when there is one."""

    direction: CompatDirection
    models: list[ModelDescription]
    marker: str | None
    # Tables whose model the migration changes (or removes): one of their statements that could
    # not be made leaves the check open, where an untouched table's does not.
    changed: frozenset[str] = frozenset()
    # With --since, the release's first migration of the app: the previous release's code is the
    # models before it (the migration's own "before" never ran in production as code).
    release_start: str | None = None


@dataclass(frozen=True)
class CompatVerdict:
    status: Compat  # compatible, breaks_old_code, or not_checked (a changed table's statement could not be made)
    findings: list[Finding]


def compat_plan(meta: WindowMigration, release: tuple[str, list[ModelDescription] | None] | None = None,
                ) -> CompatPlan | None:
    """The check a migration needs (None when the prepare child described no models). `release`:
    with --since, when the migration is not its release's first of the app, that first
    migration's name and the models before it: the code the deploy of the release replaces."""
    stage = meta.get("deploy_stage") or {"stage": "pre_deploy", "marker": None}
    before, after = meta.get("models_before"), meta.get("models_after")
    changed = changed_tables(before or [], after or [])
    if stage["stage"] == "post_deploy":
        return None if after is None else CompatPlan(NEW_ON_OLD, after, stage["marker"], changed)
    if release is not None:
        first, old_models = release
        return None if old_models is None else CompatPlan(OLD_ON_NEW, old_models, None, changed, first)
    return None if before is None else CompatPlan(OLD_ON_NEW, before, None, changed)


def changed_tables(before: Sequence[ModelDescription], after: Sequence[ModelDescription]) -> frozenset[str]:
    """Tables whose model differs between the two sides (fields, or the model itself), or that
    only one side has."""
    old = {model["table"]: model for model in before}
    new = {model["table"]: model for model in after}
    return frozenset(table for table in old.keys() | new.keys() if old.get(table) != new.get(table))


# -- values ----------------------------------------------------------------------------------------


def text_value(length: int | None, profile: Profile, token: int) -> str:
    """Text of exactly `length` characters at the edge (non-ASCII: the limit is in characters),
    unique per token."""
    tag = f"tm{token}"
    if profile != "edge":
        return tag if length is None else tag[-length:]
    size = length or UNLIMITED_TEXT_LENGTH
    return ("é" * max(size - len(tag), 0) + tag)[-size:]


def numeric_value(digits: int | None, places: int | None, profile: Profile, token: int) -> str:
    if digits is None:
        return "12345678901234567890.123456789" if profile == "edge" else f"{token}.25"
    scale = places or 0
    whole = digits - scale
    if profile == "edge":
        return ("9" * whole or "0") + ("." + "9" * scale if scale else "")
    return ("1" if whole > 0 else "0") + ("." + "5" * scale if scale else "")


def field_value(field: FieldDescription, profile: Profile, token: int) -> str | NoValue:
    """A value `field`'s model allows, as text the column's type reads (sent untyped, as Django
    sends its parameters, so a column narrower than the model rejects it rather than cutting it)."""
    if field["choice"] is not None:
        return str(field["choice"]).lower() if isinstance(field["choice"], bool) else str(field["choice"])
    db_type = (field["db_type"] or "").strip().lower()
    if db_type.endswith("[]"):
        return "{}"
    text = TEXT_TYPE.match(db_type)
    if text or db_type in ("text", "citext"):
        length = field["max_length"] or (int(text.group(1)) if text and text.group(1) else None)
        return text_value(length, profile, token)
    if db_type in INTEGER_MAX:
        if profile == "small":
            return str(1 + token % 50)
        return str(INTEGER_MAX[db_type] - token % 100 if profile == "edge" else 20000 + token % 1000)
    numeric = NUMERIC_TYPE.match(db_type)
    if numeric:
        digits = field["max_digits"] or (int(numeric.group(1)) if numeric.group(1) else None)
        places = field["decimal_places"] if field["decimal_places"] is not None else \
            (int(numeric.group(2)) if numeric.group(2) else None)
        return numeric_value(digits, places, profile, token)
    if db_type == "uuid":
        return str(uuid.UUID(int=(0x7E57C0 << 100) + token))
    if db_type in SCALAR_VALUES:
        return SCALAR_VALUES[db_type][0 if profile == "edge" else 1]
    return NoValue(f"no value known for column {field['column']} of type {field['db_type'] or '?'}")


# -- statements ------------------------------------------------------------------------------------


def row_lookup(model: ModelDescription) -> Lookup:
    return Lookup(model["table"], (model["primary_key"] or "",))


def reference_lookups(model: ModelDescription) -> dict[str, tuple[Lookup, int]]:
    """Foreign key column -> (its lookup, its position in it): the foreign keys of a unique set
    (an M2M table's pair) in one lookup, each other one alone."""
    references = {f["column"]: f["references"] for f in model["fields"] if f["references"]}
    found: dict[str, tuple[Lookup, int]] = {}
    for unique in model["unique_together"]:
        columns = tuple(c for c in unique if c in references and c not in found)
        if len(columns) > 1:
            lookup = Lookup(model["table"], columns, tuple((t[0], t[1]) for t in (references[c] for c in columns)))
            found.update({column: (lookup, position) for position, column in enumerate(columns)})
    for column, target in references.items():
        if column not in found:
            found[column] = (Lookup(model["table"], (column,), ((target[0], target[1]),)), 0)
    return found


def lookups_for(models: Sequence[ModelDescription]) -> list[Lookup]:
    """What the statements need from the database before they can be built."""
    found: list[Lookup] = []
    for model in models:
        if model["primary_key"]:
            found.append(row_lookup(model))
        found += list(dict.fromkeys(lookup for lookup, _ in reference_lookups(model).values()))
    return found


def column_value(model: ModelDescription, field: FieldDescription, profile: Profile, token: int,
                 resolved: Resolved) -> str | None | NoValue:
    """The value the code writes into one column (None: NULL)."""
    if field["references"]:
        lookup, position = reference_lookups(model)[field["column"]]
        values = resolved.get(lookup)
        if values is None and not field["null"]:
            target = ".".join(field["references"])
            return NoValue(f"no row in {target} for the foreign key {field['column']} to refer to")
        return None if values is None else values[position]
    value = field_value(field, profile, token)
    return None if isinstance(value, NoValue) and field["null"] else value  # NULL: allowed, and untyped


def select_probe(model: ModelDescription) -> Probe:
    columns = ", ".join(quote_ident(f["column"]) for f in model["fields"])
    sql = f"SELECT {columns} FROM {quote_ident(model['table'])} LIMIT 1"
    return Probe(model["model"], model["table"], "SELECT", (Statement(sql),))


def insert_statement(model: ModelDescription, profile: Profile, token: int,
                     resolved: Resolved, defaults: bool = False,
                     expressions: Mapping[str, str] | None = None) -> Statement | NoValue:
    """The model's INSERT of one row; with `defaults`, the fields that have a default the code
    writes when it leaves them unset (`FieldDescription.default`) get it; `expressions` are SQL
    written in place of a column's value (a fresh parent row's key)."""
    names, placeholders, params = [], [], []
    for index, field in enumerate(f for f in model["fields"] if f["inserted"]):
        names.append(quote_ident(field["column"]))
        if field["db_default"]:  # Django sends DEFAULT for a db_default the code did not set
            placeholders.append("DEFAULT")
            continue
        if expressions and field["column"] in expressions:
            placeholders.append(expressions[field["column"]])
            continue
        value = field["default"][0] if defaults and "default" in field else \
            column_value(model, field, profile, token + index, resolved)
        if isinstance(value, NoValue):
            return value
        placeholders.append("%s")
        params.append(value)
    table = quote_ident(model["table"])
    values = f"({', '.join(names)}) VALUES ({', '.join(placeholders)})" if names else "DEFAULT VALUES"
    returning = f" RETURNING {quote_ident(model['primary_key'])}" if model["primary_key"] else ""
    return Statement(f"INSERT INTO {table} {values}{returning}", tuple(params))


def update_statement(model: ModelDescription, profile: Profile, token: int,
                     resolved: Resolved, kept: frozenset[str] = frozenset()) -> Statement | NoValue:
    """Django's `save()` of a loaded row: every concrete non-key column, by primary key; the
    `kept` columns keep the row's own value (as save() writes an unchanged foreign key)."""
    row = resolved.get(row_lookup(model)) if model["primary_key"] else None
    if row is None:
        return NoValue("no existing row to update")
    assignments, params = [], []
    for index, field in enumerate(f for f in model["fields"] if not f["primary_key"] and f["inserted"]):
        if field["column"] in kept:
            assignments.append(f"{quote_ident(field['column'])} = {quote_ident(field['column'])}")
            continue
        value = column_value(model, field, profile, token + index, resolved)
        if isinstance(value, NoValue):
            if not field["db_default"]:
                return value
            assignments.append(f"{quote_ident(field['column'])} = DEFAULT")
            continue
        assignments.append(f"{quote_ident(field['column'])} = %s")
        params.append(value)
    if not assignments:
        return NoValue("no column to update")
    sql = (f"UPDATE {quote_ident(model['table'])} SET {', '.join(assignments)} "
           f"WHERE {quote_ident(model['primary_key'] or '')} = %s")
    return Statement(sql, (*params, row[0]))


def unique_references(model: ModelDescription) -> list[str]:
    """Foreign key columns a row cannot share with another row: a one-to-one, or the first
    foreign key of a unique set (an M2M table's pair)."""
    references = [f["column"] for f in model["fields"] if f["references"] and f["inserted"]]
    found = [f["column"] for f in model["fields"] if f["references"] and f["inserted"] and f["unique"]]
    for unique in model["unique_together"]:
        first = next((c for c in unique if c in references), None)
        if first is not None and not set(unique) & set(found):
            found.append(first)
    return found


def fresh_insert(model: ModelDescription, models: Sequence[ModelDescription], resolved: Resolved,
                 token: int) -> Statement | None:
    """The INSERT with a fresh parent row for each of its unique foreign keys, inserted by the same
    statement (a CTE running the parent model's own INSERT): when every parent row already has its
    one-to-one child, the generated row would collide with an existing key. None when a parent is
    not among `models` (another app's table) or no row can be made."""
    by_table = {m["table"]: m for m in models}
    ctes: list[str] = []
    params: list[str | None] = []
    expressions: dict[str, str] = {}
    for number, column in enumerate(unique_references(model)):
        target = next(f["references"] for f in model["fields"] if f["column"] == column)
        parent = by_table.get(target[0]) if target else None
        if target is None or parent is None or parent["primary_key"] != target[1] or parent is model:
            return None
        statement = insert_statement(parent, "typical", token + 10 * number, resolved)
        if isinstance(statement, NoValue):
            return None
        name = f"tm_fresh_{number}"
        ctes.append(f"{name} AS ({statement.sql})")
        params += statement.params
        expressions[column] = f"(SELECT {quote_ident(target[1])} FROM {name})"
    if not ctes:
        return None
    child = insert_statement(model, "typical", token, resolved, expressions=expressions)
    if isinstance(child, NoValue):
        return None
    return Statement(f"WITH {', '.join(ctes)} {child.sql}", (*params, *child.params))


def fresh_candidates(model: ModelDescription, action: str, models: Sequence[ModelDescription], resolved: Resolved,
                     token: int) -> list[Statement]:
    """The rows tried last, when the generated ones collide with an existing key: an INSERT with
    fresh parent rows, an UPDATE that keeps the row's own unique foreign keys."""
    if action == "INSERT":
        statement = fresh_insert(model, models, resolved, token)
        return [statement] if statement is not None else []
    kept = frozenset(unique_references(model))
    update = update_statement(model, "typical", token, resolved, kept) if kept else None
    return [update] if isinstance(update, Statement) else []


def written_probe(model: ModelDescription, action: str, resolved: Resolved, token: int,
                  models: Sequence[ModelDescription] = ()) -> Probe:
    """An INSERT or UPDATE: the edge row, then the fallbacks for when the baseline rejects it
    (a constraint, then a collision with an existing key: `fresh_candidates`)."""
    build = insert_statement if action == "INSERT" else update_statement
    candidates: list[Statement] = []
    missing = None
    for profile, offset in PROFILES:
        statement = build(model, profile, token + offset, resolved)
        if isinstance(statement, NoValue):
            missing = statement.reason
        elif statement not in candidates:
            candidates.append(statement)
    if candidates:
        candidates += [c for c in fresh_candidates(model, action, models, resolved, token + 600) if c not in candidates]
    return Probe(model["model"], model["table"], action, tuple(candidates), None if candidates else missing)


def defaults_probe(model: ModelDescription, resolved: Resolved, token: int) -> list[Probe]:
    """The INSERT of a row whose fields are left unset wherever the code may leave them (a
    nullable field without a default writes NULL, one with a default writes it), the other fields
    set as in `written_probe`: what the previous release writes when its users fill in only what
    they must. None when no field has such a default."""
    if not any("default" in field for field in model["fields"] if field["inserted"]):
        return []
    candidates: list[Statement] = []
    missing = None
    for profile, offset in PROFILES[1:]:  # the edge values are the INSERT probe's: ordinary ones here
        statement = insert_statement(model, profile, token + offset, resolved, defaults=True)
        if isinstance(statement, NoValue):
            missing = statement.reason
        elif statement not in candidates:
            candidates.append(statement)
    return [Probe(model["model"], model["table"], DEFAULTS_ACTION, tuple(candidates),
                  None if candidates else missing)]


def build_probes(models: Sequence[ModelDescription], resolved: Resolved) -> list[Probe]:
    """SELECT, INSERT (edge values, then the fields' defaults) and UPDATE of every model, in table order."""
    probes: list[Probe] = []
    for number, model in enumerate(models):
        token = 1000 * (number + 1)
        probes += [select_probe(model), written_probe(model, "INSERT", resolved, token, models),
                   *defaults_probe(model, resolved, token + 50),
                   written_probe(model, "UPDATE", resolved, token + 100, models)]
    return probes


# -- display and verdict ---------------------------------------------------------------------------


def literal(value: str | None) -> str:
    """A parameter as the reader sees it in a statement (long strings shortened, with their length)."""
    if value is None:
        return "NULL"
    if len(value) > 40:
        return f"'{value[:12]}…' ({len(value)} characters)"
    return "'" + value.replace("'", "''") + "'"


def display_statement(statement: Statement) -> str:
    pieces = statement.sql.split("%s")
    shown = [pieces[0]]
    for piece, value in zip(pieces[1:], statement.params, strict=False):
        shown += [literal(value), piece]
    return "".join(shown)


REMOVE_FIELD = ("remove the field from the state first (SeparateDatabaseAndState with only the RemoveField in "
                "state_operations, and the column nullable or with a db_default), then drop the column a release later")
RENAME = ("add the new field (or model) and copy the values instead of renaming; drop the old one a release later "
          "(or keep the old name with db_column= / Meta.db_table)")
DELETE_MODEL = ("remove the model from the state first (SeparateDatabaseAndState with only the DeleteModel in "
                "state_operations), then drop the table a release later")
NEW_COLUMN = ("give the new column a database default (db_default=) or null=True, so that INSERTs which do not "
              "name it still work")
NARROWING = ("limit the values in the code first (a state-only change with SeparateDatabaseAndState), and narrow "
             "the column a release later, once no running code writes longer values")
TYPE_CHANGE = "add a column of the new type and copy the values, instead of changing the type in place"
CONSTRAINT = "reject those values in the code first, and add the constraint a release later"
TWO_STEPS = ("split it: first a change the running code tolerates, then the rest a release later, once that code "
             "is gone")
POST_NOT_NULL = ("make the column nullable (or give it a db_default) in a migration that runs before the deploy; "
                 "remove it after the deploy")
OLD_NULL_DEFAULT = ("keep the column nullable until no running code writes NULL into it (the previous release's "
                    "field is null=True without a default): first change the field's default (or give the column a "
                    "db_default=) and backfill, then make it NOT NULL a release later")
POST_MISSING = ("what the new code reads must exist before it is live: create it in a migration that runs before "
                "the deploy (not after it)")


def safe_pattern(direction: CompatDirection, code: str | None, operations: Sequence[str]) -> str:
    """The way to make this change without breaking the code that runs beside the schema."""
    ops = set(operations)
    if direction == NEW_ON_OLD:
        return {"23502": POST_NOT_NULL, "42703": POST_MISSING, "42P01": POST_MISSING}.get(code or "", TWO_STEPS)
    if code == "42703":
        return RENAME if "RenameField" in ops else REMOVE_FIELD if "RemoveField" in ops else TWO_STEPS
    if code == "42P01":
        if ops & {"RenameModel", "AlterModelTable"}:
            return RENAME
        return DELETE_MODEL if "DeleteModel" in ops else TWO_STEPS
    by_code = {"23502": NEW_COLUMN, "22001": NARROWING, "22003": NARROWING, "42804": TYPE_CHANGE,
               "22P02": TYPE_CHANGE, "42883": TYPE_CHANGE, "23514": CONSTRAINT, "23505": CONSTRAINT}
    return by_code.get(code or "", TWO_STEPS)


NULL_COLUMN = re.compile(r'null value in column "((?:[^"]|"")+)"')


def null_written(statement: Statement, error: StatementError) -> bool:
    """Whether the NOT NULL violation is on a column the INSERT names (the NULL the old code's
    field default writes), not on one it leaves out (a new column without a database default).
    True when the message does not name the column (a server speaking another language)."""
    match = NULL_COLUMN.search(error.message)
    named = statement.sql.partition(" (")[2].partition(") VALUES")[0]  # the column list
    return match is None or f'"{match.group(1)}"' in named


def failure_finding(plan: CompatPlan, probe: Probe, statement: Statement, error: StatementError,
                    migration: str, operations: Sequence[str]) -> Finding:
    pattern = safe_pattern(plan.direction, error.code, operations)
    if (probe.action == DEFAULTS_ACTION and error.code == "23502" and plan.direction == OLD_ON_NEW
            and null_written(statement, error)):
        pattern = OLD_NULL_DEFAULT
    shown = display_statement(statement)
    if plan.direction == OLD_ON_NEW:
        who = f"the previous release's {probe.model} (the state before {migration}) fails on the schema after it"
        if plan.release_start:  # --since: the code before the release, not the state just before the migration
            who = (f"the previous release's {probe.model} (the state before the release, whose first migration of "
                   f"the app is {plan.release_start}) fails on the schema after {migration}")
    else:
        who = (f"the new release's {probe.model} (the state after {migration}) fails on the schema before it, "
               f"which is live until this post-deploy migration runs ({plan.marker})")
    message = f"{who}: {probe.action} {probe.table}: {error.message}; statement: {shown}; safe pattern: {pattern}"
    return Finding(FindingKind.COMPAT, message, {
        "direction": plan.direction, "model": probe.model, "table": probe.table, "action": probe.action,
        "statement": shown, "error": error.message, "sqlstate": error.code, "pattern": pattern},
        rules.BREAKS_OLD_CODE if plan.direction == OLD_ON_NEW else rules.BREAKS_NEW_CODE)


def unchecked_finding(plan: CompatPlan, probe: Probe, baseline: Sequence[Outcome], migration: str) -> Finding:
    side = "before" if plan.direction == OLD_ON_NEW else "after"
    errors = [outcome for outcome in baseline if outcome is not None]
    if probe.missing or not errors:
        why = probe.missing or "no statement could be made"
    else:
        why = f"the schema {side} {migration} rejects the generated row too: {errors[-1].message}"
    return Finding(FindingKind.INFO, f"compat: {probe.action} {probe.table} ({probe.model}) not checked: {why}",
                   {"table": probe.table})


def statements_of(probes: Sequence[Probe]) -> list[Statement]:
    """Every candidate of every probe, in order: what runs on each of the two schemas."""
    return [statement for probe in probes for statement in probe.candidates]


def judge_compat(plan: CompatPlan, probes: Sequence[Probe], baseline: Sequence[Outcome],
                 tested: Sequence[Outcome], migration: str, operations: Sequence[str]) -> CompatVerdict:
    """`baseline` and `tested`: the outcome of each of `statements_of(probes)` on the schema the
    code was written for and on the other one. Per probe, the first candidate the baseline
    accepts is the one judged; a probe whose candidates the baseline rejects all is not checked."""
    if len(baseline) != len(tested) or len(tested) != sum(len(p.candidates) for p in probes):
        raise ValueError("one outcome per statement on each schema is needed")
    failures: list[Finding] = []
    unchecked: list[Finding] = []
    unchecked_tables: set[str] = set()
    start = 0
    for probe in probes:
        end = start + len(probe.candidates)
        chosen = next((i for i in range(start, end) if baseline[i] is None), None)
        if chosen is None:
            unchecked.append(unchecked_finding(plan, probe, baseline[start:end], migration))
            unchecked_tables.add(probe.table)
        elif (error := tested[chosen]) is not None:
            statement = probe.candidates[chosen - start]
            failures.append(failure_finding(plan, probe, statement, error, migration, operations))
        start = end
    if failures:
        return CompatVerdict(BREAKS, failures + unchecked)
    # A table the migration changes whose statement could not be made: "compatible" would be a
    # verdict over a check that did not run (wagtailsearch.0010: a tsvector column had no value).
    return CompatVerdict(Compat.NOT_CHECKED if unchecked_tables & plan.changed else Compat.COMPATIBLE, unchecked)
