"""The compat check's pure part (statements, values, verdicts) on hand-made model descriptions,
the deploy-stage markers read by name, and the server part on a real PostgreSQL database."""

from __future__ import annotations

import enum
import importlib.util
import secrets
import sys
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType

import psycopg2
import pytest

from migration_check.inside_django.historical import declared_name, deploy_stage
from migration_check.proofs.compat.sql import resolve, run_rolled_back
from migration_check.proofs.compat.statements import (
    BREAKS,
    NARROWING,
    NEW_COLUMN,
    NEW_ON_OLD,
    OLD_ON_NEW,
    POST_NOT_NULL,
    REMOVE_FIELD,
    RENAME,
    CompatPlan,
    Lookup,
    NoValue,
    Probe,
    Statement,
    StatementError,
    build_probes,
    changed_tables,
    compat_plan,
    display_statement,
    field_value,
    judge_compat,
    lookups_for,
    safe_pattern,
    statements_of,
)
from tests.migration_check.conftest import FIXTURES


def field(column: str, db_type: str | None, **overrides) -> dict:
    described = {"name": column, "column": column, "db_type": db_type, "internal_type": "CharField",
                 "null": False, "primary_key": False, "unique": False, "db_default": False, "inserted": True,
                 "max_length": None, "max_digits": None, "decimal_places": None, "choice": None,
                 "references": None}
    described.update(overrides)
    return described


ID = field("id", "bigint", primary_key=True, inserted=False, internal_type="BigAutoField")


def model(table: str, *fields: dict, unique_together: list | None = None) -> dict:
    return {"model": f"shop.{table}", "table": table, "primary_key": "id", "fields": [ID, *fields],
            "unique_together": unique_together or []}


TAG = model("shop_tag", field("name", "varchar(50)", max_length=50))
LINE = model("shop_line", field("amount", "numeric(5, 2)", max_digits=5, decimal_places=2),
             field("tag_id", "bigint", references=["shop_tag", "id"]),
             field("state", "varchar(10)", max_length=10, choice="open"),
             field("code", "varchar(5)", max_length=5, db_default=True))
TAG_ROW = Lookup("shop_tag", ("id",))
LINE_ROW = Lookup("shop_line", ("id",))
LINE_TAG = Lookup("shop_line", ("tag_id",), (("shop_tag", "id"),))


# -- values ------------------------------------------------------------------------------------


def test_text_at_the_edge_is_exactly_max_length_characters_and_unique():
    edge = field_value(field("name", "varchar(50)", max_length=50), "edge", 7)
    other = field_value(field("name", "varchar(50)", max_length=50), "edge", 8)
    assert isinstance(edge, str) and len(edge) == 50 and edge.endswith("tm7") and edge.startswith("é")
    assert edge != other
    assert field_value(field("name", "varchar(50)", max_length=50), "typical", 7) == "tm7"


@pytest.mark.parametrize(("db_type", "extra", "edge", "typical"), [
    ("numeric(5, 2)", {"max_digits": 5, "decimal_places": 2}, "999.99", "1.55"),
    ("numeric(3, 3)", {"max_digits": 3, "decimal_places": 3}, "0.999", "0.555"),
    ("smallint", {}, "32760", "20007"),
    ("bigint", {}, "9223372036854775800", "20007"),
    ("boolean", {}, "true", "false"),
    ("timestamp with time zone", {}, "2999-12-31 23:59:59.999999+00", "2024-01-02 03:04:05+00"),
    ("varchar(10)[]", {}, "{}", "{}"),
    # django.contrib.postgres fields (wagtailsearch's tsvector had no value: compat skipped its statements)
    ("tsvector", {}, "'compat':1 'test':2", "'compat':1"),
    ("hstore", {}, '"test_migrations"=>"compat"', ""),
    ("int4range", {}, "[1,2147483647)", "[1,10)"),
    ("tstzrange", {}, "[2024-01-02 03:04:05+00,2999-12-31 23:59:59+00)",
     "[2024-01-02 03:04:05+00,2024-01-03 00:00:00+00)"),
])
def test_values_by_type(db_type, extra, edge, typical):
    assert field_value(field("c", db_type, **extra), "edge", 1007) == edge
    assert field_value(field("c", db_type, **extra), "typical", 1007) == typical


def test_a_choice_wins_and_an_unknown_type_has_no_value():
    assert field_value(field("state", "varchar(10)", max_length=10, choice="open"), "edge", 1) == "open"
    assert field_value(field("flag", "boolean", choice=True), "edge", 1) == "true"
    missing = field_value(field("shape", "geometry"), "edge", 1)
    assert isinstance(missing, NoValue) and "geometry" in missing.reason


# -- statements --------------------------------------------------------------------------------


def test_lookups_are_the_row_to_update_and_each_foreign_key():
    assert lookups_for([TAG, LINE]) == [TAG_ROW, LINE_ROW, LINE_TAG]


def test_foreign_keys_of_a_unique_set_are_looked_up_together():
    through = model("shop_line_tags", field("line_id", "bigint", references=["shop_line", "id"]),
                    field("tag_id", "bigint", references=["shop_tag", "id"]),
                    unique_together=[["line_id", "tag_id"]])
    pair = Lookup("shop_line_tags", ("line_id", "tag_id"), (("shop_line", "id"), ("shop_tag", "id")))
    assert lookups_for([through]) == [Lookup("shop_line_tags", ("id",)), pair]
    (_, insert, _) = build_probes([through], {pair: ("4", "9")})
    assert insert.candidates[0] == Statement(
        'INSERT INTO "shop_line_tags" ("line_id", "tag_id") VALUES (%s, %s) RETURNING "id"', ("4", "9"))


def test_statements_as_django_writes_them():
    select, insert, update = build_probes([LINE], {LINE_ROW: ("3",), LINE_TAG: ("5",)})
    assert select == Probe("shop.shop_line", "shop_line", "SELECT", (
        Statement('SELECT "id", "amount", "tag_id", "state", "code" FROM "shop_line" LIMIT 1'),))
    # every concrete column but the auto primary key; DEFAULT for a db_default
    assert [c.sql for c in insert.candidates] == [
        'INSERT INTO "shop_line" ("amount", "tag_id", "state", "code") VALUES (%s, %s, %s, DEFAULT) RETURNING "id"'] * 2
    assert [c.params for c in insert.candidates] == [("999.99", "5", "open"), ("1.55", "5", "open")]
    # a loaded row's save() writes every column, the db_default one too (5 characters at most)
    assert update.candidates[0] == Statement(
        'UPDATE "shop_line" SET "amount" = %s, "tag_id" = %s, "state" = %s, "code" = %s WHERE "id" = %s',
        ("999.99", "5", "open", "m1103", "3"))
    assert statements_of([select, insert, update]) == [*select.candidates, *insert.candidates, *update.candidates]


def test_integers_get_a_third_row_of_small_values():
    counted = model("shop_stock", field("quantity", "smallint", internal_type="PositiveSmallIntegerField"))
    _, insert, update = build_probes([counted], {Lookup("shop_stock", ("id",)): ("1",)})
    assert [c.params for c in insert.candidates] == [("32767",), ("20300",), ("1",)]
    assert [c.params for c in update.candidates] == [("32767", "1"), ("20400", "1"), ("1", "1")]


def test_a_nullable_column_of_an_unknown_type_is_null():
    shaped = model("shop_place", field("area", "geometry(Polygon,4326)", null=True))
    _, insert, _ = build_probes([shaped], {})
    assert insert.candidates[0].params == (None,) and insert.missing is None


def test_without_rows_to_refer_to_nothing_is_written():
    _, insert, update = build_probes([LINE], {})
    assert insert.candidates == () and "no row in shop_tag.id" in (insert.missing or "")
    assert update.candidates == () and update.missing == "no existing row to update"


def test_a_nullable_foreign_key_without_rows_is_null():
    nullable = model("shop_note", field("tag_id", "bigint", references=["shop_tag", "id"], null=True))
    _, insert, _ = build_probes([nullable], {})
    assert insert.candidates[0].params == (None,)


def test_display_shortens_long_values():
    statement = Statement('INSERT INTO "t" ("a", "b", "c") VALUES (%s, %s, %s)', ("é" * 60, "O'Brien", None))
    assert display_statement(statement) == (
        """INSERT INTO "t" ("a", "b", "c") VALUES ('éééééééééééé…' (60 characters), 'O''Brien', NULL)""")


# -- the plan and the verdict ------------------------------------------------------------------


def test_plan_direction_follows_the_deploy_stage():
    before, after = [TAG], [TAG, LINE]
    meta = {"tables_before": {}, "tables_after": {}, "effects": [], "models_before": before, "models_after": after}
    assert compat_plan(meta) == CompatPlan(OLD_ON_NEW, before, None, frozenset({"shop_line"}))
    staged = {**meta, "deploy_stage": {"stage": "post_deploy", "marker": "stage = Stage.POST_DEPLOY"}}
    assert compat_plan(staged) == CompatPlan(NEW_ON_OLD, after, "stage = Stage.POST_DEPLOY", frozenset({"shop_line"}))
    assert compat_plan({"tables_before": {}, "tables_after": {}, "effects": []}) is None


def test_in_a_release_the_old_code_is_the_models_before_the_release():
    """--since, a migration after its release's first: the code the deploy replaces is the models
    before the release; what the migration itself changes stays its own (release_project's tags)."""
    start, before, after = [model("shop_tag", field("name", "varchar(20)"))], [TAG], [TAG, LINE]
    meta = {"tables_before": {}, "tables_after": {}, "effects": [], "models_before": before, "models_after": after}
    assert compat_plan(meta, ("0002_colour", start)) == \
        CompatPlan(OLD_ON_NEW, start, None, frozenset({"shop_line"}), "0002_colour")
    assert compat_plan(meta, ("0002_colour", None)) is None  # nothing described before the release
    staged = {**meta, "deploy_stage": {"stage": "post_deploy", "marker": "m"}}
    assert compat_plan(staged, ("0002_colour", start)).models == after  # the new code is the new code


NOT_NULL = StatementError("23502", 'null value in column "slug" of relation "shop_tag" violates not-null constraint')
CHECK = StatementError("23514", 'new row for relation "shop_tag" violates check constraint "x"')


PREVIOUS_RELEASE = CompatPlan(OLD_ON_NEW, [TAG], None)


def judge(baseline, tested, plan=PREVIOUS_RELEASE):
    probes = build_probes([TAG], {TAG_ROW: ("1",)})
    assert len(statements_of(probes)) == 5  # SELECT, INSERT edge/typical, UPDATE edge/typical
    return judge_compat(plan, probes, baseline, tested, "0002_tag_slug", ["AddField"])


def test_a_statement_that_works_before_and_fails_after_breaks_old_code():
    verdict = judge([None] * 5, [None, NOT_NULL, NOT_NULL, None, None])
    assert verdict.status == BREAKS
    (finding,) = verdict.findings  # the typical INSERT is not judged: the edge one was
    assert finding.kind == "compat"
    assert finding.extra["action"] == "INSERT" and finding.extra["model"] == "shop.shop_tag"
    assert finding.extra["error"] == NOT_NULL.message and finding.extra["pattern"] == NEW_COLUMN
    assert finding.extra["statement"].startswith('INSERT INTO "shop_tag" ("name") VALUES (\'éééé')
    assert "the previous release's shop.shop_tag (the state before 0002_tag_slug) fails" in finding.message


def test_a_row_the_baseline_rejects_too_is_no_verdict():
    verdict = judge([None, CHECK, CHECK, None, None], [None, NOT_NULL, NOT_NULL, None, None])
    assert verdict.status == "compatible"
    assert [f.kind for f in verdict.findings] == ["info"]
    assert "not checked" in verdict.findings[0].message and CHECK.message in verdict.findings[0].message


def test_the_fallback_candidate_is_judged_when_the_edge_row_is_rejected():
    verdict = judge([None, CHECK, None, None, None], [None, CHECK, NOT_NULL, None, None])
    assert verdict.status == BREAKS
    statement = verdict.findings[0].extra["statement"]
    assert statement == """INSERT INTO "shop_tag" ("name") VALUES ('tm1300') RETURNING "id\""""


def test_the_changed_tables_are_those_whose_model_differs_or_exists_on_one_side():
    slugged = model("shop_tag", field("name", "varchar(50)", max_length=50), field("slug", "varchar(50)"))
    assert changed_tables([TAG, LINE], [slugged, LINE]) == {"shop_tag"}
    assert changed_tables([TAG, LINE], [TAG]) == {"shop_line"}
    assert changed_tables([TAG], [TAG, LINE]) == {"shop_line"}
    assert changed_tables([TAG, LINE], [TAG, LINE]) == frozenset()


def test_a_changed_table_whose_statements_could_not_be_made_is_not_checked():
    """wagtailsearch.0010 was `compatible` with every statement of its changed table unchecked
    (no value for a tsvector column): a verdict over a check that did not run."""
    changed = CompatPlan(OLD_ON_NEW, [TAG], None, frozenset({"shop_tag"}))
    verdict = judge([None, CHECK, CHECK, CHECK, CHECK], [None] * 5, changed)
    assert verdict.status == "not_checked"
    assert [f.kind for f in verdict.findings] == ["info", "info"]
    untouched = CompatPlan(OLD_ON_NEW, [TAG], None, frozenset({"shop_line"}))
    assert judge([None, CHECK, CHECK, CHECK, CHECK], [None] * 5, untouched).status == "compatible"
    # a failure found elsewhere still breaks old code, whatever else could not be checked
    assert judge([None, CHECK, CHECK, None, None], [None, None, None, NOT_NULL, NOT_NULL], changed).status == BREAKS


def test_outcomes_must_match_the_statements():
    with pytest.raises(ValueError):
        judge([None] * 4, [None] * 4)


def test_post_deploy_message_names_the_new_release_and_the_marker():
    plan = CompatPlan(NEW_ON_OLD, [TAG], "safe = Safe.after_deploy()")
    verdict = judge([None] * 5, [None, NOT_NULL, None, None, None], plan)
    (finding,) = verdict.findings
    assert finding.extra["direction"] == NEW_ON_OLD and finding.extra["pattern"] == POST_NOT_NULL
    assert "the new release's shop.shop_tag (the state after 0002_tag_slug) fails on the schema before it" \
        in finding.message
    assert "(safe = Safe.after_deploy())" in finding.message


@pytest.mark.parametrize(("code", "operations", "pattern"), [
    ("42703", ["RemoveField"], REMOVE_FIELD),
    ("42703", ["RenameField"], RENAME),
    ("42P01", ["RenameModel"], RENAME),
    ("23502", ["AddField"], NEW_COLUMN),
    ("22001", ["RunPython", "AlterField"], NARROWING),
])
def test_safe_patterns(code, operations, pattern):
    assert safe_pattern(OLD_ON_NEW, code, operations) == pattern


def test_delete_model_pattern_removes_from_state_first():
    assert "DeleteModel in state_operations" in safe_pattern(OLD_ON_NEW, "42P01", ["DeleteModel"])


# -- markers, read by name (shapes of the real packages' classes) ------------------------------
# django-safemigrate 2.0-4.x (src/django_safemigrate/__init__.py at 284d6d4): an Enum;
# 5.x (at 17056c1 and later): `@dataclass Safe(when: When, delay)` with classmethods, as in the
# fixture's safemigrate_shaped.py; django-syzygy (syzygy/constants.py): `Stage(Enum)`,
# POST_DEPLOY = "post_deployment", as in the fixture's syzygy_shaped.py.


def fixture_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, FIXTURES / "compat_project" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


Safe = fixture_module("safemigrate_shaped").Safe
Stage = fixture_module("syzygy_shaped").Stage


class OldSafe(enum.Enum):
    always = "always"
    before_deploy = "before_deploy"
    after_deploy = "after_deploy"


def migration_with(**attributes: object) -> object:
    return type("Migration", (), attributes)()


@pytest.mark.parametrize(("attributes", "marker"), [
    ({"safe": OldSafe.after_deploy}, "safe = OldSafe.after_deploy"),
    ({"safe": Safe.after_deploy()}, "safe = Safe.after_deploy()"),
    ({"safe": Safe.after_deploy(delay=timedelta(days=1))}, "safe = Safe.after_deploy()"),
    ({"safe": Safe.after_deploy}, "safe = Safe.after_deploy"),
    ({"safe": False}, "safe = False"),
    ({"stage": Stage.POST_DEPLOY}, "stage = Stage.POST_DEPLOY"),
])
def test_post_deploy_declarations(attributes, marker):
    assert deploy_stage(migration_with(**attributes)) == {"stage": "post_deploy", "marker": marker}


@pytest.mark.parametrize("attributes", [
    {}, {"safe": OldSafe.before_deploy}, {"safe": Safe.before_deploy()}, {"safe": OldSafe.always},
    {"safe": True}, {"stage": Stage.PRE_DEPLOY}, {"safe": None},
])
def test_everything_else_runs_before_the_deploy(attributes):
    assert deploy_stage(migration_with(**attributes)) == {"stage": "pre_deploy", "marker": None}


def test_declared_names():
    assert declared_name(Safe.after_deploy()) == "after_deploy"
    assert declared_name(Stage.POST_DEPLOY) == "POST_DEPLOY"
    assert declared_name("post_deployment") == "post_deployment"


# -- the server part, on PostgreSQL ------------------------------------------------------------


@pytest.fixture(scope="module")
def database(pg_admin) -> Iterator[psycopg2.extensions.connection]:
    name = f"compat_unit_{secrets.token_hex(3)}"
    pg_admin.create_database(name)
    connection = psycopg2.connect(pg_admin.url_for(name))
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE shop_tag (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                       "name varchar(50) NOT NULL)")
        cursor.execute("CREATE TABLE shop_line (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                       "tag_id bigint NOT NULL REFERENCES shop_tag DEFERRABLE INITIALLY DEFERRED)")
        cursor.execute("INSERT INTO shop_tag (name) VALUES ('a'), ('b'), ('c')")
        cursor.execute("INSERT INTO shop_line (tag_id) VALUES (1), (3)")
    yield connection
    connection.close()
    pg_admin.drop_database(name)


def rows(connection, sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_resolve_prefers_rows_nothing_refers_to(database):
    resolved = resolve(database, [Lookup("shop_tag", ("id",)), LINE_TAG, Lookup("missing_table", ("id",))])
    assert resolved == {Lookup("shop_tag", ("id",)): ("1",), LINE_TAG: ("2",), Lookup("missing_table", ("id",)): None}


def test_statements_run_isolated_and_leave_nothing(database):
    outcomes = run_rolled_back(database, [
        Statement("INSERT INTO shop_tag (name) VALUES (%s)", ("x" * 51,)),
        Statement("INSERT INTO shop_tag (name) VALUES (%s) RETURNING id", ("new",)),
        # a deferred foreign key is checked at once, as a commit would check it
        Statement("INSERT INTO shop_line (tag_id) VALUES (%s)", ("999",)),
        Statement("SELECT id, name FROM shop_tag LIMIT 1"),
        Statement("SELECT legacy FROM shop_tag LIMIT 1"),
    ])
    assert [o.code if o else None for o in outcomes] == ["22001", None, "23503", None, "42703"]
    assert outcomes[0].message == "value too long for type character varying(50)"
    assert rows(database, "SELECT name FROM shop_tag ORDER BY id") == [("a",), ("b",), ("c",)]
    assert rows(database, "SELECT count(*) FROM shop_line") == [(2,)]
    assert database.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE


# -- the row the previous release writes with its fields left unset -----------------------------

PROFILE = model("shop_profile", field("name", "varchar(50)", max_length=50),
                field("nickname", "varchar(50)", max_length=50, null=True, default=[None]),
                field("status", "varchar(10)", max_length=10, default=["active"]))


def test_the_fields_defaults_are_an_insert_of_their_own():
    select, insert, defaults, update = build_probes([PROFILE], {Lookup("shop_profile", ("id",)): ("1",)})
    assert defaults.action == "INSERT (defaults)" and insert.action == "INSERT"
    assert defaults.candidates and {c.params[1:] for c in defaults.candidates} == {(None, "active")}
    assert all(c.params[1] is not None for c in insert.candidates)  # the edge rows set every field


def test_a_model_without_defaults_has_no_such_insert():
    assert [p.action for p in build_probes([TAG], {TAG_ROW: ("1",)})] == ["SELECT", "INSERT", "UPDATE"]


def test_null_written_by_default_into_a_column_made_not_null_breaks_old_code():
    probes = build_probes([PROFILE], {Lookup("shop_profile", ("id",)): ("1",)})
    statements = statements_of(probes)
    not_null = StatementError("23502", 'null value in column "nickname" violates not-null constraint')
    tested = [not_null if s.params and s.params[1] is None else None for s in statements]
    verdict = judge_compat(CompatPlan(OLD_ON_NEW, [PROFILE], None), probes, [None] * len(statements), tested,
                           "0002_alter_profile_nickname", ["AlterField"])
    (finding,) = verdict.findings
    assert verdict.status == BREAKS and finding.extra["action"] == "INSERT (defaults)"
    assert finding.extra["statement"].endswith("NULL, 'active') RETURNING \"id\"")
    assert "null=True without a default" in finding.extra["pattern"]


def test_a_new_column_the_defaults_insert_leaves_out_gets_the_new_column_pattern():
    """django-admin-interface 0028 (docs/survey-2.md): the old code's INSERT of its defaults fails
    on a NOT NULL column it does not name; the fix is the new column's, not the old field's."""
    probes = build_probes([PROFILE], {Lookup("shop_profile", ("id",)): ("1",)})
    statements = statements_of(probes)
    not_null = StatementError("23502", 'null value in column "tabs" of relation "shop_profile" violates '
                                       'not-null constraint')
    verdict = judge_compat(CompatPlan(OLD_ON_NEW, [PROFILE], None), probes, [None] * len(statements),
                           [None if s.sql.startswith("SELECT") else not_null for s in statements],
                           "0002_profile_tabs", ["AddField"])
    defaults = [f for f in verdict.findings if f.extra["action"] == "INSERT (defaults)"]
    assert len(defaults) == 1 and '"tabs"' not in defaults[0].extra["statement"]
    assert defaults[0].extra["pattern"] == NEW_COLUMN


ACCOUNT = model("shop_account", field("name", "varchar(50)", max_length=50))
LINKED = model("shop_profile", field("bio", "varchar(50)", max_length=50),
               field("account_id", "bigint", references=["shop_account", "id"], unique=True))
LINKED_ROWS = {Lookup("shop_profile", ("id",)): ("7",),
               Lookup("shop_profile", ("account_id",), (("shop_account", "id"),)): ("3",)}


def test_a_row_colliding_on_a_one_to_one_is_tried_last_with_a_fresh_parent():
    probes = build_probes([ACCOUNT, LINKED], LINKED_ROWS)
    insert, update = (next(p for p in probes if p.table == "shop_profile" and p.action == action)
                      for action in ("INSERT", "UPDATE"))
    assert insert.candidates[0].params[1] == "3"  # the looked-up account first
    fresh = insert.candidates[-1]
    assert fresh.sql == ('WITH tm_fresh_0 AS (INSERT INTO "shop_account" ("name") VALUES (%s) RETURNING "id") '
                         'INSERT INTO "shop_profile" ("bio", "account_id") VALUES (%s, (SELECT "id" FROM tm_fresh_0)) '
                         'RETURNING "id"')
    assert len(fresh.params) == 2
    assert update.candidates[-1].sql == ('UPDATE "shop_profile" SET "bio" = %s, "account_id" = "account_id" '
                                         'WHERE "id" = %s')


def test_no_fresh_parent_from_another_app():
    _, insert, _ = build_probes([LINKED], LINKED_ROWS)
    assert all(not c.sql.startswith("WITH") for c in insert.candidates)
