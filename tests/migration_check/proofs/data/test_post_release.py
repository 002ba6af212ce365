"""post_release: rows written after the release, judged after the rollback (pure, no database)."""

from __future__ import annotations

import dataclasses

import pytest

from migration_check.project.discovery import OperationInfo
from migration_check.proofs.data.fingerprints import TableFingerprint, changed_cells, value_hash
from migration_check.proofs.data.post_release import (
    cast_truncates,
    compared_columns,
    judge_post_release,
    null_cells,
    post_release_scope,
    rolled_back_changes,
)
from tests.migration_check.fake_database import migration

MIGRATION = migration("shop", "0002_origin", ("shop", "0001_initial"))


def table(types: dict[str, str], **rows: dict[str, str | None]) -> TableFingerprint:
    return TableFingerprint(list(types), ["id"], {key: {c: value_hash(v) for c, v in values.items()}
                                                   for key, values in rows.items()}, types)


BEFORE = {"shop_entry": table({"id": "bigint NOT NULL", "title": "varchar(20)", "size": "varchar(10)"},
                              **{"1": {"id": "1", "title": "old", "size": "s"}})}
# after the migration (adds `origin`, widens `size`) and the post-release seeding (rows 2 and 3)
APPLIED = {"shop_entry": table({"id": "bigint NOT NULL", "title": "varchar(20)", "size": "varchar(30)",
                                "origin": "varchar(10)"},
                               **{"1": {"id": "1", "title": "old", "size": "s", "origin": "user"},
                                  "2": {"id": "2", "title": "new", "size": "x" * 30, "origin": "import"},
                                  "3": {"id": "3", "title": "kept", "size": "m", "origin": "user"}})}
COLUMNS_BEFORE = {"shop_entry": {"id", "title", "size"}}
SEEDED = {"shop_entry": ["2", "3"]}


def scope():
    return post_release_scope(SEEDED, BEFORE, APPLIED, COLUMNS_BEFORE, frozenset())


def rolled_back(**rows):
    types = {"id": "bigint NOT NULL", "title": "varchar(20)", "size": "varchar(10)"}
    return {"shop_entry": table(types, **rows)}


def test_scope_is_the_seeded_rows_in_the_columns_that_existed_before():
    found = scope()
    assert found.keys == {"shop_entry": {"2", "3"}}  # row 1 is pre-release: judged elsewhere
    assert found.compared == {"shop_entry": {"id", "title"}}  # origin is new
    assert found.altered == {"shop_entry": {"size"}}
    assert compared_columns(found) == {"shop_entry": {"id", "title", "size"}}


def test_a_post_release_row_the_rollback_deletes_is_lost():
    after = rolled_back(**{"1": {"id": "1", "title": "old", "size": "s"}, "3": {"id": "3", "title": "kept",
                                                                                 "size": "m"}})
    found = scope()
    changed = changed_cells(APPLIED, after, found.keys, compared_columns(found))
    verdict = judge_post_release(MIGRATION, found, changed, changed_cells(APPLIED, after, found.keys, found.compared))
    assert verdict.lost
    assert [f.message for f in verdict.findings] == [
        "table shop_entry: 1 post-release row(s) deleted by rolling back 0002_origin (e.g. primary key 2)"]
    assert verdict.findings[0].extra["rows_written"] == "post-release"


def test_a_value_changed_by_the_rollback_and_given_back_by_the_reapply_is_not_lost():
    after = rolled_back(**{"2": {"id": "2", "title": "void", "size": "x" * 10}, "3": {"id": "3", "title": "kept",
                                                                                       "size": "m"}})
    found = scope()
    changed = changed_cells(APPLIED, after, found.keys, compared_columns(found))
    assert changed == {("shop_entry", "title", "2"), ("shop_entry", "size", "2")}
    verdict = judge_post_release(MIGRATION, found, changed, reapplied=set())
    assert not verdict.lost
    assert [f.kind for f in verdict.findings] == ["info"]  # the narrowed size: its reverse shortened it on purpose
    assert verdict.findings[0].message.startswith("column shop_entry.size: 1 post-release value(s) changed by the "
                                                  "rollback to fit the column's definition before 0002_origin")


def test_a_value_changed_by_the_rollback_and_still_changed_after_the_reapply_is_lost():
    found = scope()
    changed = {("shop_entry", "title", "2")}
    verdict = judge_post_release(MIGRATION, found, changed, reapplied={("shop_entry", "title", "2")})
    assert verdict.lost
    assert verdict.findings[0].message == ("column shop_entry.title: 1 post-release row(s) changed by rolling back "
                                           "0002_origin and not given back by re-applying it (e.g. primary key 2)")


@pytest.mark.parametrize(("before", "applied", "length"), [
    ("character varying(50)", "text", 50),  # TextField back to CharField(max_length=50): USING body::varchar(50)
    ("character varying(255) NOT NULL", "jsonb NOT NULL", 255),  # django-oscar basket.0011
    ("character(3)", "text", 3),
    ("character varying(50)[]", "text[]", 50),
    # SlugField(30) back to CharField(20): Django writes USING, which truncates (without it the rollback
    # fails, and then no value is compared)
    ("character varying(20)", "character varying(30)", 20),
    ("character varying(30)", "character varying(20)", None),  # a rollback that widens cuts nothing
    ("character varying(20)", "character varying(20)", None),
    ("character varying(20) NOT NULL", "character varying(20)", None),  # made nullable, not narrowed
    ("text", "character varying(50)", None),
    ("integer", "bigint", None),
])
def test_a_rollback_that_casts_to_a_bounded_character_type_truncates(before, applied, length):
    assert cast_truncates(before, applied) == length


# `body` was varchar(50) before the migration, text after it (a CharField made a TextField)
TRUNCATING_BEFORE = {"t": table({"id": "bigint NOT NULL", "body": "character varying(50)"},
                                **{"1": {"id": "1", "body": "old"}})}
TRUNCATING_APPLIED = {"t": table({"id": "bigint NOT NULL", "body": "text"},
                                 **{"1": {"id": "1", "body": "old"}, "2": {"id": "2", "body": "x" * 120},
                                    "3": {"id": "3", "body": None}})}


def test_a_value_the_rollbacks_cast_cut_is_lost():
    found = post_release_scope({"t": ["2", "3"]}, TRUNCATING_BEFORE, TRUNCATING_APPLIED, {"t": {"id", "body"}},
                               frozenset())
    assert found.truncating == {("t", "body"): 50}
    cut = {("t", "body", "2")}
    verdict = judge_post_release(MIGRATION, found, cut, reapplied=cut)
    assert verdict.lost
    (finding,) = verdict.findings
    assert (finding.kind, finding.rule, finding.extra["rows_written"]) == ("data_lost", "post-release-data-lost",
                                                                           "post-release")
    assert finding.extra["cut_to"] == 50
    assert finding.message == (
        "column t.body: 1 post-release value(s) cut to 50 characters by rolling back 0002_origin: its reverse casts "
        "the column back to a 50-character type with an explicit cast (ALTER ... USING), which PostgreSQL "
        "truncates instead of failing (e.g. primary key 2)")


def test_a_null_filled_in_or_a_value_given_back_by_the_reapply_is_not_cut():
    found = post_release_scope({"t": ["2", "3"]}, TRUNCATING_BEFORE, TRUNCATING_APPLIED, {"t": {"id", "body"}},
                               frozenset())
    changed = {("t", "body", "2"), ("t", "body", "3")}
    written_null = null_cells(TRUNCATING_APPLIED, changed)
    assert written_null == {("t", "body", "3")}
    verdict = judge_post_release(MIGRATION, found, changed, reapplied=changed, written_null=written_null)
    assert [f.kind for f in verdict.findings] == ["data_lost", "info"]  # row 3's NULL filled in: information
    assert "1 post-release value(s) cut" in verdict.findings[0].message
    translated = judge_post_release(MIGRATION, found, {("t", "body", "2")}, reapplied=set())
    assert not translated.lost and [f.kind for f in translated.findings] == ["info"]


def test_a_reverse_of_the_migrations_own_that_shortens_values_first_cuts_them_on_purpose():
    """locks_project/char_to_text and upstream.0011 shorten long values in a reverse RunPython
    before the column is narrowed: information, as before."""
    found = post_release_scope({"t": ["2", "3"]}, TRUNCATING_BEFORE, TRUNCATING_APPLIED, {"t": {"id", "body"}},
                               frozenset())
    guarded = dataclasses.replace(MIGRATION, operations=(
        OperationInfo("AlterField", True, "Alter field body on note"),
        OperationInfo("RunPython", True, "Raw Python operation", reverse_code=True)))
    cut = {("t", "body", "2")}
    verdict = judge_post_release(guarded, found, cut, reapplied=cut)
    assert not verdict.lost and [f.kind for f in verdict.findings] == ["info"]


def test_an_empty_example_key_is_quoted():
    found = scope()
    verdict = judge_post_release(MIGRATION, found, {("shop_entry", None, "")}, reapplied=None)
    assert verdict.findings[0].message.endswith("(e.g. primary key '')")


def test_tables_created_by_the_migration_and_sibling_columns_are_left_out():
    applied = {**APPLIED, "shop_log": table({"id": "bigint NOT NULL"}, **{"9": {"id": "9"}})}
    found = post_release_scope({**SEEDED, "shop_log": ["9"]}, BEFORE, applied, COLUMNS_BEFORE,
                               frozenset({("shop_entry", "title")}))
    assert found.keys == {"shop_entry": {"2", "3"}}
    assert found.compared == {"shop_entry": {"id"}}


# A migration that moved the primary key from `key` to a new `id`: after the seeding the rows are
# keyed by id, after the rollback by key again.
def keyed(key_columns: list[str], types: dict[str, str], rows: dict[str, dict[str, str]]) -> TableFingerprint:
    return TableFingerprint(list(types), key_columns, {key: {c: value_hash(v) for c, v in values.items()}
                                                       for key, values in rows.items()}, types)


TOKEN_BEFORE = {"t": keyed(["key"], {"key": "varchar(40) NOT NULL", "label": "varchar(50) NOT NULL"},
                           {"a": {"key": "a", "label": "first"}})}
TOKEN_APPLIED = {"t": keyed(["id"], {"key": "varchar(40) NOT NULL", "label": "varchar(50) NOT NULL",
                                     "id": "bigint NOT NULL"},
                            {"1": {"key": "a", "label": "first", "id": "1"},
                             "2": {"key": "b", "label": "later", "id": "2"},
                             "3": {"key": "c", "label": "newest", "id": "3"}})}


def token_changes(rows: dict[str, dict[str, str]]) -> set:
    found = post_release_scope({"t": ["2", "3"]}, TOKEN_BEFORE, TOKEN_APPLIED, {"t": {"key", "label"}}, frozenset())
    after = {"t": keyed(["key"], {"key": "varchar(40) NOT NULL", "label": "varchar(50) NOT NULL"}, rows)}
    return rolled_back_changes(TOKEN_APPLIED, after, found)


def test_rows_of_a_moved_primary_key_are_found_by_what_survives_the_rollback():
    everything = {"a": {"key": "a", "label": "first"}, "b": {"key": "b", "label": "later"},
                  "c": {"key": "c", "label": "newest"}}
    assert token_changes(everything) == set()
    assert changed_cells(TOKEN_APPLIED, {"t": keyed(["key"], {}, everything)}, {"t": {"2", "3"}},
                         {"t": {"label"}}) == {("t", None, "2"), ("t", None, "3")}  # by the primary key: all gone


def test_a_row_really_gone_across_a_moved_primary_key_is_named_by_its_key_before_the_rollback():
    assert token_changes({"a": {"key": "a", "label": "first"}, "b": {"key": "b", "label": "later"}}) == {
        ("t", None, "3")}
    assert token_changes({"a": {"key": "a", "label": "first"}, "b": {"key": "b", "label": "changed"},
                          "c": {"key": "c", "label": "newest"}}) == {("t", "label", "2")}
