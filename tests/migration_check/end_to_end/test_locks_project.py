"""End to end: the locks, rewrites and hazards observed while each migration of locks_project is
applied over pre-release rows, each defect next to its clean twin (shown real, without the tool,
in fixture_sanity/test_locks_project.py).

The observing runs work as a superuser role (event triggers need one); a CREATEDB role gets
`not_checked` with the reason, and the run still passes.
"""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from tests.migration_check.conftest import ToolRun, assert_cleaned_up, run_variants

pytestmark = pytest.mark.slow

# app -> (migration, rewritten tables, [(rule, table)] of its hazards)
DEFECTS = {
    "int_to_bigint": ("0002_alter_counter_hits", ["int_to_bigint_counter"],
                      [("table-rewrite", "int_to_bigint_counter")]),
    "decimal_scale": ("0002_alter_rate_percent", ["decimal_scale_rate"], [("table-rewrite", "decimal_scale_rate")]),
    "plain_index": ("0002_event_plain_index_happened_idx", [],
                    [("index-without-concurrently", "plain_index_event")]),
    "fk_field": ("0002_book_author", [], [("index-without-concurrently", "fk_field_book")]),
    "check_constraint": ("0002_stock_check_constraint_quantity_nonneg", [],
                         [("check-constraint-validation", "check_constraint_stock")]),
    "not_null_backfill": ("0002_alter_member_nickname", [], [("set-not-null-scan", "not_null_backfill_member")]),
}
TWINS = {
    "char_to_text": "0002_alter_note_title",
    "concurrent_index": "0002_event_concurrent_index_happened_idx",
    "fk_field_no_index": "0002_book_author",
    "check_not_valid": "0003_validate_stock_check_not_valid_quantity_nonneg",
    "not_null_checked": "0003_alter_member_nickname",
}
FIXES = {"table-rewrite": "AddField", "index-without-concurrently": "DROP INDEX CONCURRENTLY IF EXISTS",
         "check-constraint-validation": "AddConstraintNotValid", "set-not-null-scan": "CHECK (column IS NOT NULL)"}


@pytest.fixture(scope="module")
def run(run_tool, tmp_path_factory) -> tuple[ToolRun, ElementTree.Element]:
    junit = tmp_path_factory.mktemp("locks-junit") / "junit.xml"
    done = run_tool("locks_project", "--junit-xml", str(junit), superuser=True)
    return done, ElementTree.parse(junit).getroot()


def test_hazards_warn_and_the_run_passes(run):
    done, _ = run
    assert done.returncode == 0, done.context()
    assert_cleaned_up(done)
    assert done.require_report()["observation"]["status"] == "observed"
    assert "hazards: 8 (warnings; --fail-on-hazards makes them fail)" in done.stdout, done.context()


@pytest.mark.parametrize("app", sorted(DEFECTS))
def test_defect_is_observed_with_its_fix(run, app):
    name, rewrites, expected = DEFECTS[app]
    migration = run[0].migration(app, name)
    assert migration["rewrites"] == rewrites
    observed = [h for h in migration["hazards"] if h["source"] == "observed"]
    assert [(h["rule"], h["table"]) for h in observed] == expected, migration["hazards"]
    assert FIXES[expected[0][0]] in observed[0]["fix"]
    assert observed[0]["statement"] in migration["statements"]


@pytest.mark.parametrize("app", sorted(TWINS))
def test_clean_twin_has_no_hazard(run, app):
    migration = run[0].migration(app, TWINS[app])
    assert migration["rewrites"] == [] and migration["hazards"] == [], migration


def test_rewrite_names_postgresql_reason_and_access_exclusive(run):
    migration = run[0].migration("decimal_scale", "0002_alter_rate_percent")
    (hazard,) = migration["hazards"]
    assert "table_rewrite reason 4" in hazard["message"] and hazard["mode"] == "AccessExclusiveLock"
    assert migration["statements"] == ['ALTER TABLE "decimal_scale_rate" ALTER COLUMN "percent" TYPE numeric(6, 3)']


def test_add_index_holds_share_lock_and_the_twin_share_update_exclusive(run):
    assert run[0].migration("plain_index", "0002_event_plain_index_happened_idx")["locks"] == [
        {"table": "plain_index_event", "mode": "ShareLock"}]
    # CREATE INDEX CONCURRENTLY holds SHARE UPDATE EXCLUSIVE for the whole build: it blocks no writes
    assert run[0].migration("concurrent_index", "0002_event_concurrent_index_happened_idx")["locks"] == [
        {"table": "concurrent_index_event", "mode": "ShareUpdateExclusiveLock"}]


def test_foreign_key_locks_the_referenced_table(run):
    locks = run[0].migration("fk_field_no_index", "0002_book_author")["locks"]
    assert locks == [{"table": "fk_field_no_index_author", "mode": "ShareRowExclusiveLock"},
                     {"table": "fk_field_no_index_book", "mode": "AccessExclusiveLock"}]


def test_squawk_finding_on_drop_index_and_not_on_its_twin(run):
    assert [(h["rule"], h["source"]) for h in run[0].migration(
        "plain_index", "0003_remove_event_plain_index_happened_idx")["hazards"]] == [
        ("require-concurrent-index-deletion", "squawk")]
    assert run[0].migration("concurrent_index", "0003_remove_event_concurrent_index_happened_idx")["hazards"] == []


def test_tables_created_by_the_migration_are_not_hazards(run):
    migration = run[0].migration("fk_field", "0001_initial")
    assert migration["hazards"] == [] and migration["locks"] == [] and migration["statements"]


def test_lock_timeout_is_one_hazard_for_the_whole_run(run):
    (hazard,) = run[0].require_report()["hazards"]
    assert hazard["rule"] == "access-exclusive-without-lock-timeout" and "lock_timeout" in hazard["fix"]
    assert "int_to_bigint.0002_alter_counter_hits" in hazard["migrations"]
    assert all(h["rule"] != hazard["rule"] for m in run[0].app("int_to_bigint") for h in m["hazards"])


def test_junit_has_a_passing_case_per_hazard(run):
    cases = [c for c in run[1].findall("testcase") if c.get("name").startswith("hazard ")]
    assert len(cases) == 8 and all(c.find("failure") is None for c in cases)
    assert any(c.get("name") == "hazard table-rewrite decimal_scale_rate" for c in cases)


def test_without_a_superuser_observation_is_not_checked_with_the_reason(run_tool):
    done = run_tool("locks_project", "--app", "int_to_bigint")
    assert done.returncode == 0, done.context()
    observation = done.require_report()["observation"]
    assert observation["status"] == "not_checked" and "need a superuser" in observation["reason"]
    assert sum("need a superuser" in line for line in done.stdout.splitlines()) == 2  # start and summary
    migration = done.migration("int_to_bigint", "0002_alter_counter_hits")
    assert {key: migration[key] for key in ("rewrites", "locks", "statements", "hazards")} == dict.fromkeys(
        ("rewrites", "locks", "statements", "hazards"), "not_checked")
    assert_cleaned_up(done)


def test_fail_on_hazards_fails_the_run(run_tool):
    done = run_tool("locks_project", "--app", "plain_index", "--fail-on-hazards", superuser=True)
    assert done.returncode == 1, done.context()
    assert "plain_index.0002_event_plain_index_happened_idx: index-without-concurrently" in done.stdout


def held(done: ToolRun) -> dict:
    migration = done.migration("int_to_bigint", "0002_alter_counter_hits")
    (hold,) = [h for h in migration["lock_holds"] if h["table"] == "int_to_bigint_counter"]
    return hold


def test_volume_measures_a_lock_that_grows_with_the_rows(run_tool):
    sizes = {"small": (("--volume", "1000"), {}), "large": (("--volume", "300000"), {})}
    runs = run_variants(run_tool, "locks_project", sizes, "--app", "int_to_bigint", superuser=True)  # side by side
    small, large = runs["small"], runs["large"]
    assert small.returncode == 0 and large.returncode == 0, small.context() + large.context()
    few, many = held(small), held(large)
    assert few["mode"] == many["mode"] == "AccessExclusiveLock"
    assert few["rows"] == 1003 and many["rows"] == 300003  # the 3 seeded rows and the volume
    assert many["held_s"] > few["held_s"], (few, many)
    assert "ACCESS EXCLUSIVE on int_to_bigint_counter for" in large.stdout and "at 300,003 rows" in large.stdout
    assert_cleaned_up(large)


@pytest.mark.parametrize(("app", "name"), [("not_null_backfill", "0002_alter_member_nickname"),
                                           ("not_null_checked", "0002_member_nickname_present")])
def test_not_null_under_an_old_nullable_field_breaks_old_code_acknowledged(run, app, name):
    """The previous release's Member leaves `nickname` unset: its INSERT writes NULL (the file's
    marker accepts it; the locks are what this fixture is about). In not_null_checked it is the
    NOT VALID check of 0002 that refuses it first: NOT VALID constraints hold for new rows."""
    migration = run[0].migration(app, name)
    assert migration["compat"] == "breaks_old_code" and migration["compat_acknowledged"] is True
    assert any(d.get("action") == "INSERT (defaults)" for d in migration["details"] if d["kind"] == "compat")
