"""The fixture projects really contain their defects, shown without the tool.

Project rule: a defect the tool claims to detect has a test project that really contains it.
These tests drive the fixtures with plain ``manage.py migrate`` on databases of their own and
look at the result in the PostgreSQL catalog, so a verdict asserted in end_to_end/ is
known to be about a real defect (and a clean twin about a real non-defect).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from migration_check.config import MARKER_ALLOW_DATA_LOSS, MARKER_ALLOW_IRREVERSIBLE
from tests.migration_check.conftest import FIXTURES, PgAdmin

MANAGE_TIMEOUT_S = 120


class FixtureDb:
    """A database of its own for one fixture project, driven through its manage.py."""

    def __init__(self, admin: PgAdmin, project: str, settings: str | None = None, suffix: str = "") -> None:
        self.admin, self.project = admin, project
        self.settings = settings or f"{project}.settings"
        self.name = f"fixture_check_{project}_{secrets.token_hex(3)}{suffix}"
        admin.create_database(self.name)

    def manage(self, *args: str, timeout: float = MANAGE_TIMEOUT_S, extra_env: dict[str, str] | None = None,
               manage_py: Path | None = None) -> subprocess.CompletedProcess:
        """`manage.py ARGS` on this database (another copy of the project's manage.py: `manage_py`)."""
        env = {**os.environ, "DATABASE_URL": self.admin.url_for(self.name),
               "DJANGO_SETTINGS_MODULE": self.settings, **(extra_env or {})}
        return subprocess.run(
            [sys.executable, str(manage_py or FIXTURES / self.project / "manage.py"), *args],
            env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL)

    def migrate(self, *args: str) -> subprocess.CompletedProcess:
        done = self.manage("migrate", "--noinput", *args)
        assert done.returncode == 0, f"migrate {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        return done

    def migrate_fails(self, *args: str) -> str:
        done = self.manage("migrate", "--noinput", *args)
        assert done.returncode != 0, f"migrate {' '.join(args)} passed:\n{done.stdout[-2000:]}"
        return done.stderr

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.admin.rows(sql, params, dbname=self.name)

    def value(self, sql: str, params: tuple = ()) -> object:
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def drop(self) -> None:
        self.admin.drop_database(self.name)


def fixture_db(admin: PgAdmin, project: str, migrate: bool = True,
               settings: str | None = None) -> Iterator[FixtureDb]:
    db = FixtureDb(admin, project, settings)
    try:
        if migrate:
            db.migrate()
        yield db
    finally:
        db.drop()


@pytest.fixture(scope="module")
def defects(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "defects_project")


@pytest.fixture(scope="module")
def clean(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "clean_project")


def index_def(db: FixtureDb, name: str) -> str | None:
    return db.value("SELECT indexdef FROM pg_indexes WHERE indexname = %s", (name,))


# --- defects_project -------------------------------------------------------------------------


@pytest.mark.parametrize(("app", "operation"), [
    ("irreversible_python", "RunPython"), ("irreversible_sql", "RunSQL")])
def test_irreversible_operation(defects, app, operation):
    stderr = defects.migrate_fails(app, "0001")
    assert "IrreversibleError" in stderr and operation in stderr, stderr[-2000:]
    defects.migrate(app)


@pytest.mark.parametrize(("app", "message"), [
    ("reverse_typo", 'syntax error at or near "INDEXX"'),
    ("reverse_drops_missing", 'table "reverse_drops_missing_staging" does not exist'),
])
def test_reverse_errors(defects, app, message):
    assert message in defects.migrate_fails(app, "0001")


def test_reapply_fails_after_noop_reverse(defects):
    defects.migrate("reapply_fails", "0001")
    assert index_def(defects, "reapply_fails_item_unsold_idx") is not None
    stderr = defects.migrate_fails("reapply_fails")
    assert 'relation "reapply_fails_item_unsold_idx" already exists' in stderr


TRACE_QUERIES = {
    "trace_index": ("SELECT count(*) FROM pg_indexes WHERE indexname = %s",
                    "trace_index_article_slug_idx"),
    "trace_default": ("SELECT count(*) FROM information_schema.columns WHERE table_name = "
                      "'trace_default_ticket' AND column_name = %s AND column_default IS NOT NULL",
                      "priority"),
    "trace_constraint": ("SELECT count(*) FROM pg_constraint WHERE conname = %s",
                         "trace_constraint_stock_quantity_nonneg"),
    "trace_trigger": ("SELECT count(*) FROM pg_trigger WHERE tgname = %s",
                      "trace_trigger_page_skip_noop_updates"),
    "trace_table": ("SELECT count(*) FROM pg_tables WHERE tablename = %s",
                    "trace_table_upload_log"),
}


@pytest.mark.parametrize("app", sorted(TRACE_QUERIES))
def test_rollback_leaves_a_trace_and_reapply_still_works(defects, app):
    query, name = TRACE_QUERIES[app]
    assert defects.value(query, (name,)) == 1
    defects.migrate(app, "0001")
    assert defects.value(query, (name,)) == 1, f"{name} is gone after the rollback"
    defects.migrate(app)
    assert defects.value(query, (name,)) == 1


def test_trace_default_reverse_drops_the_other_default(defects):
    defects.migrate("trace_default", "0001")
    defaults = defects.rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        "'trace_default_ticket' AND column_default IS NOT NULL")
    assert defaults == [("priority",)]
    defects.migrate("trace_default")


def test_round_trip_changes_the_index_definition(defects):
    name = "roundtrip_changes_event_recent_idx"
    first = index_def(defects, name)
    defects.migrate("roundtrip_changes", "0001")
    assert index_def(defects, name) is None, "the rollback itself is clean"
    defects.migrate("roundtrip_changes")
    second = index_def(defects, name)
    assert first is not None and second is not None and first != second


def test_lossy_data_migration_does_not_restore_emails(defects):
    defects.migrate("lossy_data", "0001")
    defects.rows("INSERT INTO lossy_data_customer (name, email) VALUES ('Ada', 'ada@example.com')")
    defects.migrate("lossy_data")
    defects.migrate("lossy_data", "0001")
    email = defects.value("SELECT email FROM lossy_data_customer WHERE name = 'Ada'")
    assert email != "ada@example.com" and email.endswith("@example.invalid"), email
    defects.migrate("lossy_data")


def test_destructive_forward_loses_values_a_rollback_cannot_restore(defects):
    defects.migrate("destructive_remove", "0001")
    account = defects.value("INSERT INTO destructive_remove_account (name, legacy_code) "
                            "VALUES ('Acme', 'LEG-42') RETURNING id")
    defects.rows("INSERT INTO destructive_remove_auditentry (account_id, message) "
                 "VALUES (%s, 'created')", (account,))
    defects.migrate("destructive_remove")
    defects.migrate("destructive_remove", "0001")
    assert defects.value("SELECT legacy_code FROM destructive_remove_account") == ""
    assert defects.value("SELECT count(*) FROM destructive_remove_auditentry") == 0
    defects.migrate("destructive_remove")


@pytest.mark.parametrize(("app", "table", "post_release_row", "message"), [
    ("rollback_needs_data_null", "rollback_needs_data_null_profile", "(nickname) VALUES (NULL)",
     "contains null values"),
    ("rollback_needs_data_length", "rollback_needs_data_length_label",
     "(code) VALUES (repeat('x', 50))", "value too long for type character varying(20)"),
])
def test_rollback_fails_only_with_post_release_data(defects, app, table, post_release_row,
                                                     message):
    defects.migrate(app, "0001")  # without post-release rows the rollback works
    defects.migrate(app)
    defects.rows(f"INSERT INTO {table} {post_release_row}")
    assert message in defects.migrate_fails(app, "0001")


# --- the clean twins -------------------------------------------------------------------------


def schema_objects(db: FixtureDb) -> list[tuple]:
    """A small catalog snapshot: columns with defaults, indexes, constraints, triggers."""
    return db.rows("""
        SELECT 'column', table_name || '.' || column_name,
            data_type || coalesce('(' || character_maximum_length || ')', '') || is_nullable
            || coalesce(column_default, '')
        FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL SELECT 'index', indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'
        UNION ALL SELECT 'constraint', conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE connamespace = 'public'::regnamespace
        UNION ALL SELECT 'trigger', tgname, pg_get_triggerdef(oid) FROM pg_trigger
            WHERE NOT tgisinternal
        UNION ALL SELECT 'function', proname, pg_get_functiondef(oid) FROM pg_proc
            WHERE pronamespace = 'public'::regnamespace
        ORDER BY 1, 2""")


@pytest.mark.parametrize(("app", "target"), [
    ("catalog", "zero"), ("sqlops", "zero"), ("notes", "zero"), ("legacy", "zero")])
def test_clean_twins_round_trip_to_the_same_schema(clean, app, target):
    before = schema_objects(clean)
    clean.migrate(app, target)
    clean.migrate(app)
    assert schema_objects(clean) == before


def test_clean_twin_rollback_survives_post_release_data(clean):
    category = clean.value("INSERT INTO catalog_category (name) VALUES ('c') RETURNING id")
    clean.rows(
        "INSERT INTO catalog_product (category_id, name, article_number, code, description, note, "
        "price, released_on, active, attributes, public_id, discount_percent) VALUES "
        "(%s, 'post-release', 'A1', repeat('x', 50), 'v2:d', NULL, 1.5, '2024-01-01', true, '{}', "
        "gen_random_uuid(), 0)", (category,))
    clean.migrate("catalog", "0003")
    post_release = "SELECT {} FROM catalog_product WHERE name = 'post-release'"
    assert clean.value(post_release.format("code || '|' || note")) == "x" * 20 + "|"
    clean.migrate("catalog", "0001")
    assert clean.value(post_release.format("description")) == "d"
    clean.migrate("catalog")


def test_clean_twin_data_migration_is_undone_exactly(clean):
    clean.migrate("catalog", "0001")
    category = clean.value("INSERT INTO catalog_category (name) VALUES ('c') RETURNING id")
    clean.rows(
        "INSERT INTO catalog_product (category_id, name, sku, code, description, note, price, "
        "released_on, active, attributes, public_id) VALUES (%s, 'pre-release', 'S', 'C', "
        "'v2:already', 'n', 1, '2024-01-01', true, '{}', gen_random_uuid())", (category,))
    pre_release = "SELECT description FROM catalog_product WHERE name = 'pre-release'"
    clean.migrate("catalog", "0002")
    assert clean.value(pre_release) == "v2:v2:already"
    clean.migrate("catalog", "0001")
    assert clean.value(pre_release) == "v2:already"
    clean.migrate("catalog")


# --- the other projects ----------------------------------------------------------------------


def test_cross_app_rollback_of_alpha_unapplies_beta(pg_admin):
    for db in fixture_db(pg_admin, "cross_app_project"):
        output = db.migrate("alpha", "0002", "-v", "1").stdout
        assert "Unapplying beta.0002_store_region" in output, output
        db.migrate()


def test_missing_migration_is_missing(pg_admin):
    for db in fixture_db(pg_admin, "missing_migration_project", migrate=False):
        done = db.manage("makemigrations", "--check", "--dry-run")
        assert done.returncode == 1 and "barcode" in done.stdout, done.stdout


def test_conflicting_leaves_stop_migrate(pg_admin):
    for db in fixture_db(pg_admin, "conflict_project", migrate=False):
        assert "Conflicting migrations detected" in db.migrate_fails()


def test_broken_settings_do_not_load(pg_admin):
    for db in fixture_db(pg_admin, "broken_settings_project", migrate=False):
        done = db.manage("check")
        assert done.returncode != 0 and "PAYMENT_API_KEY is not set" in done.stderr


HANG_PROOF_S = 5


def test_hanging_forward_really_hangs(pg_admin):
    for db in fixture_db(pg_admin, "hanging_project", migrate=False,
                         settings="hanging_project.settings_forward"):
        with pytest.raises(subprocess.TimeoutExpired):
            db.manage("migrate", "--noinput", timeout=HANG_PROOF_S)


def test_hanging_reverse_really_hangs(pg_admin):
    for db in fixture_db(pg_admin, "hanging_project"):
        with pytest.raises(subprocess.TimeoutExpired):
            db.manage("migrate", "--noinput", "sleepy_reverse", "0002", timeout=HANG_PROOF_S)


@pytest.mark.parametrize(("app", "returncode"), [("crash_exit", 3), ("crash_segv", -signal.SIGSEGV)])
def test_crashing_reverse_really_ends_its_process(pg_admin, app, returncode):
    for db in fixture_db(pg_admin, "crash_project"):
        done = db.manage("migrate", "--noinput", app, "0001")
        assert done.returncode == returncode, done.stdout + done.stderr
        assert "Traceback" not in done.stderr and f"Unapplying {app}.0002_add_counter..." in done.stdout
        # The process died inside the reverse's transaction: 0002 is still applied.
        assert db.value("SELECT count(*) FROM django_migrations WHERE app = %s AND name = '0002_add_counter'",
                        (app,)) == 1


def test_crash_free_twin_rolls_back(pg_admin):
    for db in fixture_db(pg_admin, "crash_project"):
        assert db.value("SELECT count(*) FROM crash_free_counter WHERE name = 'added by 0002'") == 1
        db.migrate("crash_free", "0001")
        assert db.value("SELECT count(*) FROM crash_free_counter") == 0


@pytest.mark.parametrize(("path", "marker"), [
    ("irrev_marker/migrations/0002_lowercase_setting_keys.py", "allow-irreversible"),
    ("loss_marker/migrations/0002_remove_contact_fax.py", "allow-data-loss"),
])
def test_acknowledged_markers_are_in_the_files(path, marker):
    text = (FIXTURES / "acknowledged_project" / path).read_text()
    expected = {"allow-irreversible": MARKER_ALLOW_IRREVERSIBLE,
                "allow-data-loss": MARKER_ALLOW_DATA_LOSS}[marker]
    assert f"# {expected}" in text


def test_required_column_cannot_be_applied_over_nulls_and_its_twin_can(pg_admin):
    for db in fixture_db(pg_admin, "apply_project", migrate=False):
        for app in ("required_without_backfill", "column_with_default"):
            db.migrate(app, "0001")
            db.rows(f"INSERT INTO {app}_member (name, nickname) VALUES ('before the release', NULL)")
        error = db.migrate_fails("required_without_backfill", "0002")
        assert 'column "nickname" of relation "required_without_backfill_member" contains null values' in error
        db.migrate("column_with_default", "0002")
        assert db.value("SELECT joined::text FROM column_with_default_member") == "2024-01-01"


def test_not_null_with_a_default_cannot_give_the_nulls_back(pg_admin):
    for db in fixture_db(pg_admin, "apply_project", migrate=False):
        db.migrate("required_with_default", "0001")
        db.rows("INSERT INTO required_with_default_member (name, nickname) VALUES ('before the release', NULL)")
        db.migrate("required_with_default", "0002")
        db.migrate("required_with_default", "0001")
        assert db.value("SELECT nickname IS NULL FROM required_with_default_member") is False


def test_auto_now_column_really_changes_on_a_data_migration_round_trip(pg_admin):
    for db in fixture_db(pg_admin, "auto_now_project", migrate=False):
        db.migrate("stamped", "0001")
        db.rows("INSERT INTO stamped_note (title, updated_at) VALUES ('kept', '2000-01-01T00:00:00Z')")
        db.migrate("stamped", "0002")
        db.migrate("stamped", "0001")
        assert db.value("SELECT title FROM stamped_note") == "kept"
        assert db.value("SELECT updated_at > '2000-01-01T00:00:00Z' FROM stamped_note") is True


@pytest.mark.parametrize(("project", "settings"), [
    ("clean_project", None), ("defects_project", None), ("acknowledged_project", None), ("apply_project", None),
    ("auto_now_project", None), ("hygiene_project", None), ("search_path_project", None),
    ("cross_app_project", None), ("hanging_project", None), ("crash_project", None),
    ("hanging_project", "hanging_project.settings_forward"),
])
def test_models_match_migrations_except_where_intended(pg_admin, project, settings):
    for db in fixture_db(pg_admin, project, migrate=False, settings=settings):
        done = db.manage("makemigrations", "--check", "--dry-run")
        assert done.returncode == 0, done.stdout + done.stderr
