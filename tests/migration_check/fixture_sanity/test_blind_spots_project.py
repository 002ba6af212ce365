"""blind_spots_project really contains its cases, shown without the tool: plain ``manage.py
migrate`` moves a database of its own between the states, rows are written with ``psql`` (or by
the previous release's model, run by ``manage.py shell``), and the catalog says what happened.
end_to_end/test_blind_spots_project.py asserts the tool's verdicts on the same apps.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .test_compat_project import fails, works
from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow

FOLLOW = "INSERT INTO {app}_follow (\"user\", content_type, object_id, flag) VALUES (1, 'post', 7, %s)"


@pytest.fixture(scope="module")
def db(pg_admin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "blind_spots_project", migrate=False)


def follows(db: FixtureDb, app: str) -> None:
    """After the release: one user follows one object twice, with two flags (the new key allows it)."""
    db.migrate(app, "0002")
    works(db, FOLLOW.format(app=app).replace("%s", "'follow'"))
    works(db, FOLLOW.format(app=app).replace("%s", "'like'"))


def test_relaxed_unique_key_cannot_come_back_over_rows_that_repeat_it(db):
    follows(db, "relaxed")
    error = db.migrate_fails("relaxed", "0001")
    assert "could not create unique index" in error and "is duplicated" in error, error
    assert db.value("SELECT count(*) FROM relaxed_follow") == 2


def test_relaxed_twin_deduplicates_before_the_old_key_comes_back(db):
    follows(db, "relaxed_copes")
    db.migrate("relaxed_copes", "0001")
    assert db.rows("SELECT flag FROM relaxed_copes_follow") == [("follow",)]  # the newer row is gone


AUTHENTICATOR = "INSERT INTO {app}_authenticator (\"user\", type) VALUES (1, %s)"


def authenticators(db: FixtureDb, app: str) -> None:
    """Before the release a user has a TOTP device; after it, two security keys (the new
    constraint leaves only type 'webauthn' free to repeat)."""
    db.migrate(app, "0001")
    works(db, AUTHENTICATOR.format(app=app).replace("%s", "'totp'"))
    db.migrate(app, "0002")
    error = fails(db, AUTHENTICATOR.format(app=app).replace("%s", "'totp'"))
    assert "duplicate key value violates unique constraint" in error  # the old row cannot be repeated
    works(db, AUTHENTICATOR.format(app=app).replace("%s", "'webauthn'"))
    works(db, AUTHENTICATOR.format(app=app).replace("%s", "'webauthn'"))


def test_conditionally_relaxed_key_cannot_come_back_over_two_security_keys(db):
    authenticators(db, "relaxed_conditional")
    error = db.migrate_fails("relaxed_conditional", "0001")
    assert "could not create unique index" in error and "(1, webauthn) is duplicated" in error, error


def test_conditionally_relaxed_twin_deduplicates_before_the_old_key_comes_back(db):
    authenticators(db, "relaxed_conditional_copes")
    db.migrate("relaxed_conditional_copes", "0001")
    assert db.rows("SELECT type FROM relaxed_conditional_copes_authenticator ORDER BY id") == [("totp",), ("webauthn",)]


def test_tightened_unique_key_cannot_be_applied_over_duplicates(db):
    db.migrate("tightened", "0001")
    works(db, "INSERT INTO tightened_member (name, email) VALUES ('a', 'x@example.com'), ('b', 'x@example.com')")
    error = db.migrate_fails("tightened", "0002")
    assert "could not create unique index" in error and "is duplicated" in error, error


def test_tightened_twin_deduplicates_first(db):
    db.migrate("tightened_dedup", "0001")
    works(db, "INSERT INTO tightened_dedup_member (name, email) VALUES ('a', 'x@example.com'), "
              "('b', 'x@example.com')")
    db.migrate("tightened_dedup", "0002")
    assert db.value("SELECT count(DISTINCT email) FROM tightened_dedup_member") == 2


# The previous release's code: the model of the state just before 0002, saving a profile whose
# nickname its user left unset (Django writes the field's default).
OLD_CODE = """
from django.db import connection
from django.db.migrations.loader import MigrationLoader
state = MigrationLoader(connection).project_state(("{app}", "0001_initial"))
Profile = state.apps.get_model("{app}", "Profile")
profile = Profile.objects.create(name="old release")
print("nickname:", repr(Profile.objects.get(pk=profile.pk).nickname))
"""


def old_code_saves(db: FixtureDb, app: str):
    db.migrate(app, "0002")
    return db.manage("shell", "-c", OLD_CODE.replace("{app}", app))


def test_old_default_none_breaks_the_previous_release(db):
    done = old_code_saves(db, "old_default")
    assert done.returncode != 0
    assert 'null value in column "nickname" of relation "old_default_profile" violates not-null constraint' \
        in done.stderr, done.stderr[-2000:]


def test_old_default_twin_writes_its_default(db):
    done = old_code_saves(db, "old_default_set")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nickname: 'anon'" in done.stdout


def tokens_after_the_round_trip(db: FixtureDb, app: str) -> list[tuple]:
    """Two rows before the release, one after it, then the rollback."""
    table = f"{app}_token"
    db.migrate(app, "0001")
    works(db, f"INSERT INTO {table} (key, label) VALUES ('a', 'first'), ('b', 'second')")
    db.migrate(app, "0002")
    assert db.rows(f"SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                   f"AND a.attnum = ANY(i.indkey) WHERE i.indisprimary AND i.indrelid = '{table}'::regclass") == \
        [("id",)]
    works(db, f"INSERT INTO {table} (key, label) VALUES ('c', 'after the release')")
    db.migrate(app, "0001")
    return db.rows(f"SELECT key, label FROM {table} ORDER BY key")


def test_moved_primary_key_keeps_every_row_through_the_rollback(db):
    assert tokens_after_the_round_trip(db, "pk_move") == [
        ("a", "first"), ("b", "second"), ("c", "after the release")]


def test_moved_primary_key_twin_really_deletes_the_newest_row(db):
    assert tokens_after_the_round_trip(db, "pk_move_lost") == [("a", "first"), ("b", "second")]


# A hand-made sql_drop trigger: the locks the migrating backend holds on each table it drops.
DROP_PROOF = """
CREATE TABLE drop_proof (tbl text, mode text);
CREATE FUNCTION drop_proof() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN
    INSERT INTO drop_proof SELECT d.object_name, l.mode FROM pg_event_trigger_dropped_objects() d
        JOIN pg_locks l ON l.relation = d.objid AND l.pid = pg_backend_pid() WHERE d.object_type = 'table';
END $$;
CREATE EVENT TRIGGER drop_proof ON sql_drop EXECUTE FUNCTION drop_proof();
"""


def dropped_tables(db: FixtureDb, app: str) -> list[tuple]:
    db.migrate(app, "0001")
    works(db, f"INSERT INTO {app}_crate (label) VALUES ('full')")
    works(db, DROP_PROOF)
    try:
        db.migrate(app, "0002")
        return db.rows("SELECT tbl, mode FROM drop_proof ORDER BY 1, 2")
    finally:
        works(db, "DROP EVENT TRIGGER drop_proof; DROP FUNCTION drop_proof(); DROP TABLE drop_proof")


def test_delete_model_drops_its_table_under_access_exclusive(db):
    assert ("dropped_crate", "AccessExclusiveLock") in dropped_tables(db, "dropped")
    assert db.value("SELECT to_regclass('dropped_crate')") is None


def test_delete_model_from_the_state_only_drops_nothing(db):
    assert dropped_tables(db, "dropped_state") == []
    assert db.value("SELECT count(*) FROM dropped_state_crate") == 1


def test_concurrent_build_runs_create_index_concurrently(db):
    done = db.manage("sqlmigrate", "concurrent_build", "0002")
    assert 'CREATE INDEX CONCURRENTLY "concurrent_build_happened_idx"' in done.stdout, done.stdout + done.stderr
    db.migrate("concurrent_build", "0002")
    assert db.value("SELECT indisvalid FROM pg_index WHERE indexrelid = 'concurrent_build_happened_idx'::regclass")


def test_relaxed_and_tightened_fail_with_postgresql_s_words(db):
    """The words the tool keys on (unique_keys.DUPLICATED) are PostgreSQL's, seen here."""
    db.migrate("tightened", "0001")
    works(db, "INSERT INTO tightened_member (name, email) VALUES ('c', 'y@example.com'), ('d', 'y@example.com')")
    error = fails(db, "CREATE UNIQUE INDEX proof_email ON tightened_member (email)")
    assert "could not create unique index" in error and "is duplicated" in error


# The previous release's INSERT of a profile: every account already has one, so a new account.
OLD_PROFILE_INSERT = ("WITH account AS (INSERT INTO {app}_account (name) VALUES ('new') RETURNING id) "
                      "INSERT INTO {app}_profile (bio, account_id) SELECT 'old release', id FROM account")


def test_one_to_one_generated_row_collides_and_the_old_insert_breaks(db):
    db.migrate("one_to_one", "0001")
    works(db, "INSERT INTO one_to_one_account (name) VALUES ('a')")
    works(db, "INSERT INTO one_to_one_profile (bio, account_id) SELECT 'a', id FROM one_to_one_account")
    error = fails(db, "INSERT INTO one_to_one_profile (bio, account_id) SELECT 'b', id FROM one_to_one_account")
    assert "duplicate key value violates unique constraint" in error  # an existing parent: a collision
    db.migrate("one_to_one", "0002")
    assert 'null value in column "code"' in fails(db, OLD_PROFILE_INSERT.format(app="one_to_one"))


def test_one_to_one_twin_keeps_the_old_insert_working(db):
    db.migrate("one_to_one_safe", "0002")
    works(db, OLD_PROFILE_INSERT.format(app="one_to_one_safe"))
    assert db.value("SELECT code FROM one_to_one_safe_profile") == "new"


def test_models_match_migrations(db):
    done = db.manage("makemigrations", "--check", "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
