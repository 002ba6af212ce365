"""End to end: a migration that cannot be applied over the data that existed before it.

apply_project/required_without_backfill.0002 makes a nullable column NOT NULL with no default
and no backfill; the rows seeded before it hold NULL there, so the forward fails as it would in
production (`apply: failed`). The tool then empties the tables, applies it again, and still tests
its rollback and re-application. required_with_default.0002 tightens the same column with a
default: it applies, but the NULLs become '' and no rollback can bring them back (data lost).
column_with_default.0002, a NOT NULL column added with a default, is the clean twin.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import (
    PASSED,
    assert_cleaned_up,
    assert_report_shape,
    assert_same_verdicts,
    fixtures_in_both_isolations,
)

pytestmark = pytest.mark.slow

WINDOWS = {
    "required_without_backfill": ["0002_member_nickname_required", "0001_initial"],
    "required_with_default": ["0002_member_nickname_required", "0001_initial"],
    "column_with_default": ["0002_member_joined", "0001_initial"],
}


run_runs, run = fixtures_in_both_isolations("apply_project")


def test_same_verdicts_in_both_isolations(run_runs):
    assert_same_verdicts(run_runs)


def test_exits_1_and_cleans_up(run):
    assert run.returncode == 1, run.context()
    assert_report_shape(run, WINDOWS)
    assert_cleaned_up(run)


def test_forward_over_pre_release_nulls_fails(run):
    migration = run.assert_verdicts("required_without_backfill", "0002_member_nickname_required",
                                    apply="failed", rollback="passed", reapply="passed",
                                    schema="identical", data="not_checked")
    assert "over pre-release data failed" in migration["error"], migration
    assert 'column "nickname"' in migration["error"] and "contains null values" in migration["error"], migration


def test_the_failure_is_named_in_the_summary(run):
    assert "required_without_backfill.0002_member_nickname_required: apply failed" in run.stdout, run.context()


def test_not_null_with_a_default_loses_the_nulls(run):
    migration = run.assert_verdicts("required_with_default", "0002_member_nickname_required",
                                    apply="passed", rollback="passed", reapply="passed",
                                    schema="identical", data="lost")
    lost = [d for d in migration["details"] if d["kind"] == "data_lost"]
    assert [(d["table"], d["column"]) for d in lost] == [("required_with_default_member", "nickname")], lost
    assert lost[0]["operation"] == "AlterField: Alter field nickname on member", lost
    assert migration.get("acknowledged", False) is False


def test_older_migration_of_the_defective_app_passes(run):
    run.assert_verdicts("required_without_backfill", "0001_initial", apply="passed", **PASSED)


@pytest.mark.parametrize("name", WINDOWS["column_with_default"])
def test_clean_twin_passes(run, name):
    run.assert_verdicts("column_with_default", name, apply="passed", **PASSED)
