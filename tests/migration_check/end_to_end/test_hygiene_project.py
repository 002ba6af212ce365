"""End to end: verdicts nobody can argue with (hygiene_project, search_path_project; issue 13).

Each app of tests/fixtures/hygiene_project is a case the tool used to get wrong. The verdict the
old tool gave (commit d7e05db, run on these fixtures) is in each test's docstring; the test
asserts the right one. tests/migration_check/fixture_sanity/test_hygiene_project.py shows each case with
plain manage.py and psql.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import (
    BLOCKED,
    NOT_ROLLED_BACK,
    PASSED,
    ToolRun,
    assert_cleaned_up,
    assert_report_shape,
)

pytestmark = pytest.mark.slow

WINDOWS = {
    "coincide": ["0002_fill_description", "0001_initial"],
    "choices_seeded": ["0002_ticket_rank", "0001_initial"],
    "reapply_midway": ["0004_item_sku", "0003_remove_item_legacy_code", "0002_item_name_idx", "0001_initial"],
    "blocked_findings": ["0003_note_text_idx", "0002_empty_notes_on_rollback", "0001_initial"],
    "coverage": ["0002_wipe_typed_columns_on_rollback", "0001_initial"],
    "post_release": ["0002_entry_origin", "0001_initial"],
    "post_release_twin": ["0002_entry_origin", "0001_initial"],
    "composite_keys": ["0003_drop_a_pair_on_rollback", "0002_pairs_with_commas", "0001_initial"],
    "partitioned": ["0003_widen_partition_a", "0002_empty_notes_on_rollback", "0001_initial"],
    "seeded_edges": ["0004_holder_label", "0003_badge_code_not_empty", "0002_badge", "0001_initial"],
    "nonatomic": ["0003_item_extra_idx", "0002_item_extra", "0001_initial"],
    "reverse_commit": ["0003_item_extra_idx", "0002_item_extra", "0001_initial"],
    # the squash, then the migrations it replaces (the path of a database older than the squash)
    "squashed_path": ["0003_record_note", "0001_squashed_0002_record_key_idx", "0002_record_key_idx",
                      "0001_initial"],
    "shared_parent": ["0003_one_primary_address", "0002_address_label", "0001_initial"],
    "cast_truncates": ["0002_alter_note_body", "0001_initial"],
    "cast_truncates_twin": ["0002_alter_note_body", "0001_initial"],
}


@pytest.fixture(scope="module")
def run(run_tool) -> ToolRun:
    return run_tool("hygiene_project")


def kinds(migration: dict, kind: str) -> list[dict]:
    return [d for d in migration["details"] if d["kind"] == kind]


def test_exits_1_and_cleans_up(run):
    assert run.returncode == 1, run.context()
    assert_report_shape(run, WINDOWS)
    assert_cleaned_up(run)


@pytest.mark.parametrize("name", WINDOWS["coincide"])
def test_seeded_columns_never_coincide(run, name):
    """Old: 0002 data lost ("column coincide_product.description: 2 row(s) changed or emptied"):
    every text column of a seeded row held the same text, so the reverse emptied them all."""
    run.assert_verdicts("coincide", name, apply="passed", **PASSED)


def test_choice_fields_are_seeded_with_their_choices(run):
    """Old: apply failed, re-apply failed (KeyError on a seeded max-length string)."""
    run.assert_verdicts("choices_seeded", "0002_ticket_rank", apply="passed", **PASSED)


@pytest.mark.parametrize("name", WINDOWS["shared_parent"])
def test_seeded_rows_never_share_a_parent(run, name):
    """Old (run with --app shared_parent): 0003 apply failed, "could not create unique index"
    (two seeded primary addresses of one account, made up by the seeding)."""
    run.assert_verdicts("shared_parent", name, apply="passed", **PASSED)


def test_a_failed_reapply_does_not_hide_the_newer_migrations(run):
    """Old: 0003 and 0004 rollback not_run, "not tested: 0002_item_name_idx could not be re-applied"."""
    failed = run.assert_verdicts("reapply_midway", "0002_item_name_idx", apply="passed", rollback="passed",
                                 reapply="failed", schema="differs")
    assert 'relation "reapply_midway_item_name_idx" already exists' in failed["error"]
    lost = run.assert_verdicts("reapply_midway", "0003_remove_item_legacy_code", apply="passed", rollback="passed",
                               reapply="passed", schema="identical", data="lost")
    assert [d["operation"] for d in kinds(lost, "data_lost")] == ["RemoveField: Remove field legacy_code from item"]
    assert lost["error"] is None
    run.assert_verdicts("reapply_midway", "0004_item_sku", apply="passed", **PASSED)
    assert "this database stops here, 0003_remove_item_legacy_code and newer are tested on a database built " \
           "forward past 0002_item_name_idx" in run.stdout


def test_blocked_migrations_keep_their_findings(run):
    """Old: 0002 blocked with details [] (its data_lost finding was thrown away); then kept in
    details only, with data not_checked and no problem."""
    run.assert_verdicts("blocked_findings", "0003_note_text_idx", apply="passed", rollback="failed",
                        **{k: v for k, v in NOT_ROLLED_BACK.items()})
    blocked = run.assert_verdicts("blocked_findings", "0002_empty_notes_on_rollback", **{**BLOCKED, "data": "lost"})
    assert (blocked["blocked_by"], blocked["error"]) == ("0003_note_text_idx", None)
    assert "  - blocked_findings.0002_empty_notes_on_rollback: data lost (its rollback is also blocked by " \
           "0003_note_text_idx)" in run.stdout  # before issue 18 its loss was in details only, not a problem
    assert [(d["table"], d["column"]) for d in kinds(blocked, "data_lost")] == [
        ("blocked_findings_note", "text"), ("blocked_findings_note", "text")]  # pre- and post-release rows


def test_types_the_seeder_used_to_leave_null_are_compared(run):
    """Old: data lost naming coverage_shape.spans only (the array, which the old seeder filled with
    an empty array); without it, "preserved" for columns that were NULL in every row."""
    lost = run.assert_verdicts("coverage", "0002_wipe_typed_columns_on_rollback", apply="passed", rollback="passed",
                               reapply="passed", schema="identical", data="lost")
    columns = sorted({d["column"] for d in kinds(lost, "data_lost")})
    assert columns == ["attrs", "doc", "flags", "mask", "outline", "period", "spot", "stay"]


def test_what_the_data_proof_did_not_cover_is_named(run):
    """Old: nothing said that coverage_shape.pair (a composite type) was NULL in every row, or that
    coverage_code had no row at all."""
    migration = run.migration("coverage", "0002_wipe_typed_columns_on_rollback")
    gaps = {(d["table"], d["column"]): d["message"] for d in kinds(migration, "coverage")}
    assert sorted(gaps) == [("coverage_code", None), ("coverage_shape", "pair")]
    assert gaps[("coverage_shape", "pair")] == ("column coverage_shape.pair: not covered, the seeder has no value "
                                                "for its type coverage_pair")
    assert gaps[("coverage_code", None)].startswith("table coverage_code: no pre-release rows, every seeded row "
                                                    "was rejected (")
    assert "coverage_code_format" in gaps[("coverage_code", None)]
    assert "Not covered by the data proof (2): a 'preserved' says nothing about these" in run.stdout
    assert ("  - coverage: column coverage_shape.pair: not covered, the seeder has no value for its type "
            "coverage_pair (0002_wipe_typed_columns_on_rollback)") in run.stdout
    assert not kinds(run.migration("coincide", "0002_fill_description"), "coverage")  # the twin: all covered


def test_a_reverse_that_deletes_post_release_rows_loses_data(run):
    """Old: data preserved (post-release rows were never compared)."""
    lost = run.assert_verdicts("post_release", "0002_entry_origin", apply="passed", rollback="passed",
                               reapply="passed", schema="identical", data="lost")
    found = kinds(lost, "data_lost")
    assert [(d["table"], d["column"], d["rows_written"]) for d in found] == [
        ("post_release_entry", None, "post-release")]
    assert found[0]["message"].startswith("table post_release_entry: 1 post-release row(s) deleted by rolling "
                                          "back 0002_entry_origin (e.g. primary key ")


@pytest.mark.parametrize("name", WINDOWS["post_release_twin"])
def test_a_reverse_that_deletes_only_its_own_row_is_fine(run, name):
    run.assert_verdicts("post_release_twin", name, apply="passed", **PASSED)


def test_a_rollback_whose_cast_cuts_post_release_values_loses_data(run):
    """Old: data preserved with an info line ("the old one may not hold them"), while the same
    widening between two varchars is `rollback: failed` (survey 4: wagtailembeds.0008)."""
    lost = run.assert_verdicts("cast_truncates", "0002_alter_note_body", apply="passed", rollback="passed",
                               reapply="passed", schema="identical", data="lost")
    (found,) = kinds(lost, "data_lost")
    assert (found["table"], found["column"], found["rows_written"], found["rule"]) == (
        "cast_truncates_note", "body", "post-release", "post-release-data-lost")
    assert found["message"].startswith("column cast_truncates_note.body: 1 post-release value(s) cut to 50 "
                                       "characters by rolling back 0002_alter_note_body: its reverse casts")
    assert found["cut_to"] == 50
    assert "Next: keep the column wide enough on rollback" in run.stdout


def test_a_reverse_that_shortens_values_on_purpose_is_information(run):
    twin = run.assert_verdicts("cast_truncates_twin", "0002_alter_note_body", apply="passed", **PASSED)
    assert [d["message"] for d in kinds(twin, "info") if "cast_truncates_twin_note.body" in d["message"]] == [
        "column cast_truncates_twin_note.body: 1 post-release value(s) changed by the rollback to fit the column's "
        "definition before 0002_alter_note_body (its reverse adapts them: a NULL filled in, a long value shortened "
        "first)"]


def test_composite_keys_with_commas_are_told_apart(run):
    """Old: 0003 data preserved: ('a', 'b,c') and ('a,b', 'c') had the same key "a,b,c"."""
    lost = run.assert_verdicts("composite_keys", "0003_drop_a_pair_on_rollback", apply="passed", rollback="passed",
                               reapply="passed", schema="identical", data="lost")
    assert [(d["table"], d["column"], d["rows"], d["example_pk"]) for d in kinds(lost, "data_lost")] == [
        ("composite_keys_pair", None, 1, '["a", "b,c"]')]
    run.assert_verdicts("composite_keys", "0002_pairs_with_commas", apply="passed", **PASSED)


def test_a_partitioned_table_loss_is_reported_once(run):
    """Old: reported for partitioned_reading and again for partitioned_reading_rest."""
    lost = run.assert_verdicts("partitioned", "0002_empty_notes_on_rollback", apply="passed", rollback="passed",
                               reapply="passed", schema="identical", data="lost")
    assert {d["table"] for d in kinds(lost, "data_lost")} == {"partitioned_reading"}


def test_partition_bounds_are_part_of_the_schema(run):
    """Old: schema identical (the bounds were not in the snapshot)."""
    differs = run.assert_verdicts("partitioned", "0003_widen_partition_a", apply="passed", rollback="passed",
                                  reapply="passed", schema="differs", data="preserved")
    assert [d["message"] for d in kinds(differs, "schema")] == [
        "table partitioned_reading_a: partition of is partitioned_reading FOR VALUES IN ('a', 'z'), expected "
        "partitioned_reading FOR VALUES IN ('a') after rolling back 0003_widen_partition_a"]
    run.assert_verdicts("partitioned", "0001_initial", apply="passed", **PASSED)


# app -> why a failed rollback of its 0002 keeps what it reversed before failing. Old, both: 0003
# apply failed ('column "extra" does not exist'), tested on the half-reversed database (for
# reverse_commit the rollback was trusted to be atomic).
HALF_REVERSED = {"nonatomic": "atomic = False",
                 "reverse_commit": "its reverse SQL ends the transaction part-way (`COMMIT`)"}


@pytest.mark.parametrize("app", sorted(HALF_REVERSED))
def test_a_half_reversed_rollback_stops_its_database(run, app):
    why = HALF_REVERSED[app]
    failed = run.assert_verdicts(app, "0002_item_extra", apply="passed", rollback="failed", **NOT_ROLLED_BACK)
    assert failed["error"] == (
        f'ProgrammingError: index "{app}_item_nme_idx" does not exist; {why}: the operations reversed before the '
        f"failure stay reversed, the database is left half reversed (column {app}_item.extra is missing after the "
        "failed rollback)")
    run.assert_verdicts(app, "0003_item_extra_idx", apply="passed", **PASSED)
    run.assert_verdicts(app, "0001_initial", **BLOCKED)
    assert f"the failed rollback of 0002_item_extra ({why}) left it half reversed; this database stops here" \
        in run.stdout


def test_a_squash_is_also_tested_through_the_migrations_it_replaces(run):
    """Old: only the squash and 0003 were tested (both passed)."""
    run.assert_verdicts("squashed_path", "0001_squashed_0002_record_key_idx", apply="passed", **PASSED)
    run.assert_verdicts("squashed_path", "0003_record_note", apply="passed", **PASSED)
    replaced = run.assert_verdicts("squashed_path", "0002_record_key_idx", apply="passed", rollback="failed",
                                   **NOT_ROLLED_BACK)
    assert replaced["error"] == 'ProgrammingError: index "squashed_path_key_idx_typo" does not exist'
    assert replaced["details"][0]["message"] == (
        "replaced by 0001_squashed_0002_record_key_idx: tested on the path of a database older than the squash "
        "(forward through 0001_initial, 0002_record_key_idx)")
    run.assert_verdicts("squashed_path", "0001_initial", **BLOCKED)


# -- the edges a migration is seeded with do not depend on --jobs ---------------------------------


@pytest.fixture(scope="module", params=["1", "2"])
def edges_run(request, run_tool) -> ToolRun:
    """seeded_edges alone, depth 4: with --jobs 2 its window is split into 0001-0002 | 0003-0004."""
    return run_tool("hygiene_project", "--app", "seeded_edges", "--depth", "4", "--jobs", request.param)


def test_the_same_edges_whatever_the_jobs(run, edges_run):
    """Old: with --jobs 1, 0003 apply passed (the Seeder remembered seeding '' into badge.code at
    0002, in a table 0002's rollback then dropped); with --jobs 2, apply failed."""
    for result in (run, edges_run):
        failed = result.assert_verdicts("seeded_edges", "0003_badge_code_not_empty", apply="failed",
                                        rollback="passed", reapply="passed", schema="identical", data="not_checked")
        assert ('check constraint "seeded_edges_badge_code_not_empty" of relation "seeded_edges_badge" is violated '
                "by some row") in failed["error"]  # the seeded '' fails the constraint's validation
    for name in ("0004_holder_label", "0002_badge", "0001_initial"):
        edges_run.assert_verdicts("seeded_edges", name, apply="passed", **PASSED)


# -- search_path_project: tables outside the default search path ----------------------------------


@pytest.fixture(scope="module")
def search_path_run(run_tool) -> ToolRun:
    return run_tool("search_path_project")


def test_tables_outside_the_default_search_path_are_seeded_and_compared(search_path_run):
    """Old: data preserved (the tool's own connection did not find books_entry, which is in the
    schema ledger, and seeded nothing there)."""
    assert search_path_run.returncode == 1, search_path_run.context()
    lost = search_path_run.assert_verdicts("books", "0002_empty_memos_on_rollback", apply="passed",
                                           rollback="passed", reapply="passed", schema="identical", data="lost")
    assert {(d["table"], d["column"]) for d in kinds(lost, "data_lost")} == {("books_entry", "memo")}
    search_path_run.assert_verdicts("books", "0001_initial", apply="passed", **PASSED)
    assert_cleaned_up(search_path_run)
