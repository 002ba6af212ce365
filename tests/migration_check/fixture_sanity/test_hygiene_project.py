"""The cases of hygiene_project, search_path_project and alias_project are real, shown without the
tool: plain `manage.py migrate` on databases of their own, and what PostgreSQL then holds.

So each verdict asserted in end_to_end/test_hygiene_project.py (and the refusal in
end_to_end/test_own_database_project.py) is about a real property of the migrations, and each
"passed" about a real non-defect.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.migration_check.conftest import FIXTURES, PgAdmin

from .test_defect_corpus import FixtureDb, fixture_db

pytestmark = pytest.mark.slow


@pytest.fixture
def hygiene(pg_admin: PgAdmin) -> Iterator[FixtureDb]:
    yield from fixture_db(pg_admin, "hygiene_project", migrate=False)


def test_coincide_loses_nothing_of_real_rows(hygiene):
    hygiene.migrate("coincide", "0001")
    hygiene.rows("INSERT INTO coincide_product (name, description) VALUES ('Chair', ''), ('Desk', 'oak, 2 m')")
    hygiene.migrate("coincide", "0002")
    assert hygiene.rows("SELECT name, description FROM coincide_product ORDER BY id") == [
        ("Chair", "Chair"), ("Desk", "oak, 2 m")]
    hygiene.migrate("coincide", "0001")
    assert hygiene.rows("SELECT name, description FROM coincide_product ORDER BY id") == [
        ("Chair", ""), ("Desk", "oak, 2 m")]


def test_coincide_empties_only_a_description_equal_to_the_name(hygiene):
    """What the old seeder wrote (the same text in both columns) is the one row it empties."""
    hygiene.migrate("coincide", "0002")
    hygiene.rows("INSERT INTO coincide_product (name, description) VALUES ('7 Sample café', '7 Sample café')")
    hygiene.migrate("coincide", "0001")
    assert hygiene.value("SELECT description FROM coincide_product") == ""


def test_choices_seeded_applies_over_the_fields_choices_only(hygiene):
    hygiene.migrate("choices_seeded", "0001")
    hygiene.rows("INSERT INTO choices_seeded_ticket (title, priority) VALUES ('a', 'high'), ('b', 'low')")
    hygiene.migrate("choices_seeded", "0002")
    assert hygiene.rows("SELECT priority, rank FROM choices_seeded_ticket ORDER BY id") == [("high", 3), ("low", 1)]
    hygiene.migrate("choices_seeded", "0001")
    hygiene.rows("INSERT INTO choices_seeded_ticket (title, priority) VALUES ('c', 'Ωé漢🦄')")
    assert "KeyError" in hygiene.migrate_fails("choices_seeded", "0002")


def test_shared_parent_0003_fails_only_over_two_primary_addresses_of_one_account(hygiene):
    hygiene.migrate("shared_parent", "0002")
    accounts = [hygiene.value("INSERT INTO shared_parent_account (name) VALUES (%s) RETURNING id", (name,))
                for name in ("a", "b")]
    for account, primary in ((accounts[0], True), (accounts[0], False), (accounts[1], True)):
        hygiene.rows("INSERT INTO shared_parent_address (account_id, email, \"primary\", label) "
                     "VALUES (%s, 'x@example.com', %s, '')", (account, primary))
    hygiene.migrate("shared_parent", "0003")  # one primary per account: what the application writes
    hygiene.migrate("shared_parent", "0002")
    hygiene.rows("INSERT INTO shared_parent_address (account_id, email, \"primary\", label) "
                 "VALUES (%s, 'y@example.com', true, '')", (accounts[1],))
    assert 'could not create unique index "shared_parent_one_primary_address"' in \
        hygiene.migrate_fails("shared_parent", "0003")


def test_reapply_midway_cannot_be_reapplied_but_the_newer_ones_can_be_tested(hygiene):
    hygiene.migrate("reapply_midway", "0002")
    hygiene.migrate("reapply_midway", "0001")
    assert hygiene.value("SELECT count(*) FROM pg_indexes WHERE indexname = 'reapply_midway_item_name_idx'") == 1
    assert 'relation "reapply_midway_item_name_idx" already exists' in hygiene.migrate_fails("reapply_midway", "0002")


def test_reapply_midway_0003_loses_legacy_codes_on_a_database_built_forward(hygiene):
    hygiene.migrate("reapply_midway", "0002")
    hygiene.rows("INSERT INTO reapply_midway_item (name, legacy_code) VALUES ('bolt', 'L-1')")
    hygiene.migrate("reapply_midway", "0003")
    hygiene.migrate("reapply_midway", "0002")
    assert hygiene.value("SELECT legacy_code FROM reapply_midway_item") == ""
    hygiene.migrate("reapply_midway", "0004")
    hygiene.migrate("reapply_midway", "0003")
    hygiene.migrate("reapply_midway", "0004")


def test_blocked_findings_0002_empties_notes_and_0003_cannot_be_rolled_back(hygiene):
    hygiene.migrate("blocked_findings", "0002")
    hygiene.rows("INSERT INTO blocked_findings_note (text) VALUES ('keep me')")
    hygiene.migrate("blocked_findings", "0001")
    assert hygiene.value("SELECT text FROM blocked_findings_note") == ""
    hygiene.migrate("blocked_findings")
    assert 'index "blocked_findings_note_txt_idx" does not exist' in hygiene.migrate_fails("blocked_findings", "0002")


TYPED_ROW = """INSERT INTO coverage_shape (name, period, spot, outline, flags, mask, doc, attrs, spans, stay, pair)
    VALUES ('s', '[1,5)', '(1,2)', '(1,1),(0,0)', B'10101010', B'101', '<a/>', 'k=>v', '{"[1,2)"}',
            '[2024-01-01,2024-02-01)', ROW(1, 'x'))"""


def test_coverage_0002_empties_the_typed_columns(hygiene):
    hygiene.migrate("coverage", "0002")
    hygiene.rows(TYPED_ROW)
    hygiene.migrate("coverage", "0001")
    assert hygiene.rows("SELECT period, spot, outline, flags, mask, doc, attrs, stay, spans::text, pair::text "
                        "FROM coverage_shape") == [(None,) * 8 + ('{"[1,2)"}', "(1,x)")]


def test_coverage_code_takes_no_value_the_seeder_makes(hygiene):
    hygiene.migrate("coverage", "0001")
    hygiene.rows("INSERT INTO coverage_code (code) VALUES ('ABC-1234')")  # what the application writes
    for seeded in ("1k9 code", ""):
        with pytest.raises(Exception, match="coverage_code_format"):
            hygiene.rows("INSERT INTO coverage_code (code) VALUES (%s)", (seeded,))


@pytest.mark.parametrize(("app", "kept"), [("post_release", []), ("post_release_twin", [("imported later",)])])
def test_post_release_rows_deleted_by_the_rollback(hygiene, app, kept):
    hygiene.migrate(app, "0002")
    hygiene.rows(f"INSERT INTO {app}_entry (title, origin) VALUES ('imported later', 'import')")
    hygiene.migrate(app, "0001")
    assert hygiene.rows(f"SELECT title FROM {app}_entry WHERE title = 'imported later'") == kept
    assert hygiene.rows(f"SELECT count(*) FROM {app}_entry WHERE title LIKE 'Welcome%%'") == [(0,)]


@pytest.mark.parametrize("app", ["cast_truncates", "cast_truncates_twin"])
def test_cast_truncates_the_rollback_cuts_post_release_values_and_says_ok(hygiene, app):
    """Both rollbacks leave 50 characters of a 120-character body and succeed: cast_truncates'
    by Django's explicit cast alone (nobody chose it), the twin's by its own reverse RunPython
    first (its author did)."""
    hygiene.migrate(app, "0002")
    hygiene.rows(f"INSERT INTO {app}_note (body) VALUES (repeat('x', 120))")
    backwards = hygiene.manage("sqlmigrate", app, "0002", "--backwards").stdout
    assert 'ALTER COLUMN "body" TYPE varchar(50) USING "body"::varchar(50)' in backwards, backwards
    assert ("Raw Python operation" in backwards) is (app == "cast_truncates_twin"), backwards
    hygiene.migrate(app, "0001")
    assert hygiene.rows(f"SELECT length(body) FROM {app}_note") == [(50,)]


def test_composite_keys_0003_deletes_one_of_two_rows_whose_joined_keys_are_equal(hygiene):
    hygiene.migrate("composite_keys", "0003")
    keys = "SELECT \"left\" || ',' || \"right\", \"left\", \"right\" FROM composite_keys_pair ORDER BY 2"
    assert hygiene.rows(keys) == [("a,b,c", "a", "b,c"), ("a,b,c", "a,b", "c")]
    hygiene.migrate("composite_keys", "0002")
    assert hygiene.rows(keys) == [("a,b,c", "a,b", "c")]


def test_partitioned_0002_empties_notes_in_every_partition(hygiene):
    hygiene.migrate("partitioned", "0002")
    hygiene.rows("INSERT INTO partitioned_reading (kind, note) VALUES ('a', 'first'), ('b', 'second')")
    assert hygiene.rows("SELECT tableoid::regclass::text, note FROM partitioned_reading ORDER BY id") == [
        ("partitioned_reading_a", "first"), ("partitioned_reading_rest", "second")]
    hygiene.migrate("partitioned", "0001")
    assert hygiene.rows("SELECT note FROM partitioned_reading ORDER BY id") == [("",), ("",)]


def test_partitioned_0003_rollback_leaves_the_wider_bounds(hygiene):
    bounds = "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'partitioned_reading_a'"
    hygiene.migrate("partitioned", "0002")
    assert hygiene.value(bounds) == "FOR VALUES IN ('a')"
    hygiene.migrate("partitioned", "0003")
    hygiene.migrate("partitioned", "0002")
    assert hygiene.value(bounds) == "FOR VALUES IN ('a', 'z')"


def test_seeded_edges_0003_cannot_be_applied_over_an_empty_code(hygiene):
    hygiene.migrate("seeded_edges", "0002")
    hygiene.rows("INSERT INTO seeded_edges_badge (code) VALUES ('')")
    assert 'check constraint "seeded_edges_badge_code_not_empty"' in hygiene.migrate_fails("seeded_edges", "0003")


@pytest.mark.parametrize("app", ["nonatomic", "reverse_commit"])
def test_0002_rollback_leaves_it_half_reversed(hygiene, app):
    """nonatomic.0002 is `atomic = False`; reverse_commit.0002 is atomic, but the reverse SQL that
    drops `extra` ends with COMMIT: either way the drop stays when the next reverse fails."""
    hygiene.migrate(app, "0002")
    assert f'index "{app}_item_nme_idx" does not exist' in hygiene.migrate_fails(app, "0001")
    assert hygiene.value("SELECT count(*) FROM information_schema.columns WHERE table_name = %s "
                         "AND column_name = 'extra'", (f"{app}_item",)) == 0  # reversed and committed
    assert hygiene.value("SELECT count(*) FROM pg_indexes WHERE indexname = %s", (f"{app}_item_name_idx",)) == 1
    assert hygiene.value("SELECT count(*) FROM django_migrations WHERE app = %s AND name = '0002_item_extra'",
                         (app,)) == 1  # still recorded as applied
    assert 'column "extra" does not exist' in hygiene.migrate_fails(app, "0003")  # on this database


@pytest.mark.parametrize("app", ["nonatomic", "reverse_commit"])
def test_0003_round_trips_on_a_database_built_forward(hygiene, app):
    hygiene.migrate(app, "0003")
    hygiene.migrate(app, "0002")
    hygiene.migrate(app, "0003")


def test_squashed_path_a_database_older_than_the_squash_cannot_roll_back(hygiene, tmp_path):
    """The database is first migrated by the code before the squash existed (a copy of the
    project without the squash and what came after it), then by the code with it."""
    old_code = tmp_path / "hygiene_project"
    shutil.copytree(FIXTURES / "hygiene_project", old_code, ignore=shutil.ignore_patterns("__pycache__"))
    for newer in ("0001_squashed_0002_record_key_idx.py", "0003_record_note.py"):
        (old_code / "squashed_path" / "migrations" / newer).unlink()
    shutil.copy(FIXTURES / "fixture_manage.py", tmp_path)
    shutil.copy(FIXTURES / "fixture_settings_base.py", tmp_path)
    done = hygiene.manage("migrate", "--noinput", "squashed_path", "0001_initial", manage_py=old_code / "manage.py")
    assert done.returncode == 0, done.stderr[-2000:]
    hygiene.migrate("squashed_path", "0002")  # the new code: through the replaced 0002
    assert hygiene.value("SELECT count(*) FROM pg_indexes WHERE indexname = 'squashed_path_key_idx'") == 1
    assert 'index "squashed_path_key_idx_typo" does not exist' in hygiene.migrate_fails("squashed_path", "0001_initial")
    # a fresh database takes the squash, whose reverse works
    for fresh in fixture_db(hygiene.admin, "hygiene_project", migrate=False):
        fresh.migrate("squashed_path", "0001_squashed_0002_record_key_idx")
        fresh.migrate("squashed_path", "zero")


def test_search_path_project_tables_are_outside_the_default_search_path(pg_admin):
    for db in fixture_db(pg_admin, "search_path_project", migrate=False):
        db.migrate("books", "0002")
        assert db.value("SELECT schemaname FROM pg_tables WHERE tablename = 'books_entry'") == "ledger"
        assert db.value("SELECT to_regclass('books_entry')") is None  # not on the default search path
        db.rows("INSERT INTO ledger.books_entry (memo) VALUES ('paid')")
        db.migrate("books", "0001")
        assert db.value("SELECT memo FROM ledger.books_entry") == ""


def test_alias_project_writes_into_the_other_alias_database(pg_admin):
    archive = FixtureDb(pg_admin, "alias_project")
    try:
        db = FixtureDb(pg_admin, "alias_project")
        try:
            done = db.manage("migrate", "--noinput", extra_env={"ARCHIVE_DATABASE_URL": pg_admin.url_for(archive.name)})
            assert done.returncode == 0, done.stderr[-2000:]
            assert archive.rows("SELECT note FROM written_by_migration") == [("copied",)]
        finally:
            db.drop()
    finally:
        archive.drop()
