"""End to end: findings accepted on purpose (acknowledged_project).

irrev_marker and loss_marker carry the documented marker comments; irrev_flag and loss_flag are
accepted on the command line. With the flags every finding is acknowledged and the run exits 0;
without them, the marked ones stay acknowledged and the flagged ones fail the run. The two
destructive migrations also break the previous release (compat), accepted the same two ways.
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
    detail_text,
    fixture_in_fork,
)

pytestmark = pytest.mark.slow

WINDOWS = {
    "irrev_marker": ["0003_setting_updated", "0002_lowercase_setting_keys", "0001_initial"],
    "irrev_flag": ["0002_flag_name_idx", "0001_initial"],
    "loss_marker": ["0002_remove_contact_fax", "0001_initial"],
    "loss_flag": ["0002_delete_legacyhit", "0001_initial"],
}
FLAGS = ["--allow-irreversible", "irrev_flag.0002_flag_name_idx",
         "--allow-data-loss", "loss_flag.0002_delete_legacyhit",
         "--allow-breaking", "loss_flag.0002_delete_legacyhit"]


# Fork isolation only, both runs: their steps end as defects_project's do (irreversible
# operations refused, rows lost, newer migrations blocked), and those are compared in both
# isolations there; acknowledging is the tool's reading of the verdicts (docs/tests.md).
with_flags = fixture_in_fork("acknowledged_project", *FLAGS, name="with_flags")
without_flags = fixture_in_fork("acknowledged_project", name="without_flags")


def test_the_flags_change_no_step(with_flags, without_flags):
    """The flags are read, never run: the same steps (Django commands) with and without them, and
    the same verdicts but the acknowledgements and the exit status."""
    assert without_flags.require_report()["steps"] == with_flags.require_report()["steps"]
    assert verdicts_of(with_flags) == verdicts_of(without_flags)


def verdicts_of(run: ToolRun) -> dict[str, dict[str, str]]:
    return {f"{app['app']}.{m['name']}": {key: m[key] for key in ("rollback", "reapply", "schema", "data", "compat")}
            for app in run.require_report()["apps"] for m in app["migrations"]}


def assert_irreversible(run: ToolRun, app: str, name: str, operation: str, acknowledged: bool):
    migration = run.assert_verdicts(app, name, rollback="irreversible", **NOT_ROLLED_BACK)
    assert operation in (migration["error"] or ""), migration
    assert migration.get("acknowledged", False) is acknowledged, migration


def assert_lost(run: ToolRun, app: str, name: str, words: list[str], acknowledged: bool):
    migration = run.assert_verdicts(app, name, rollback="passed", reapply="passed",
                                    schema="identical", data="lost")
    for word in words:
        assert word in detail_text(migration), migration
    assert migration.get("acknowledged", False) is acknowledged, migration


def assert_breaking(run: ToolRun, app: str, name: str, error: str, acknowledged: bool):
    migration = run.migration(app, name)
    assert (migration["compat"], migration["compat_direction"], migration["compat_acknowledged"]) == (
        "breaks_old_code", "old_code_on_new_schema", acknowledged), migration
    compat = [d for d in migration["details"] if d["kind"] == "compat"]
    assert compat and all(error in d["error"] for d in compat), compat


def test_all_acknowledged_exits_0(with_flags):
    assert with_flags.returncode == 0, with_flags.context()
    assert with_flags.require_report()["ok"] is True


def test_report_follows_the_contract(with_flags):
    assert_report_shape(with_flags, WINDOWS)


def test_marker_acknowledges_irreversible(with_flags):
    with_flags.assert_verdicts("irrev_marker", "0003_setting_updated", **PASSED)
    assert_irreversible(with_flags, "irrev_marker", "0002_lowercase_setting_keys", "RunPython",
                        True)
    with_flags.assert_verdicts("irrev_marker", "0001_initial", **BLOCKED)


def test_flag_acknowledges_irreversible(with_flags):
    assert_irreversible(with_flags, "irrev_flag", "0002_flag_name_idx", "RunSQL", True)
    with_flags.assert_verdicts("irrev_flag", "0001_initial", **BLOCKED)


def test_marker_acknowledges_data_loss(with_flags):
    assert_lost(with_flags, "loss_marker", "0002_remove_contact_fax",
                ["RemoveField", "loss_marker_contact", "fax"], True)
    with_flags.assert_verdicts("loss_marker", "0001_initial", **PASSED)


def test_flag_acknowledges_data_loss(with_flags):
    assert_lost(with_flags, "loss_flag", "0002_delete_legacyhit",
                ["DeleteModel", "loss_flag_legacyhit"], True)
    with_flags.assert_verdicts("loss_flag", "0001_initial", **PASSED)


def test_marker_and_flag_acknowledge_breaking_changes(with_flags):
    assert_breaking(with_flags, "loss_marker", "0002_remove_contact_fax", 'column "fax"', True)
    assert_breaking(with_flags, "loss_flag", "0002_delete_legacyhit", 'relation "loss_flag_legacyhit" does not exist',
                    True)
    assert "breaks_old_code*" in with_flags.stdout, with_flags.context()


def test_cleanup_and_url_database_untouched(with_flags):
    assert_cleaned_up(with_flags)


def test_without_flags_the_unmarked_findings_fail_the_run(without_flags):
    assert without_flags.returncode == 1, without_flags.context()
    assert_irreversible(without_flags, "irrev_flag", "0002_flag_name_idx", "RunSQL", False)
    assert_lost(without_flags, "loss_flag", "0002_delete_legacyhit", ["DeleteModel"], False)
    assert_breaking(without_flags, "loss_flag", "0002_delete_legacyhit", "does not exist", False)
    assert "loss_flag.0002_delete_legacyhit: data lost, breaks old code" in without_flags.stdout


def test_without_flags_the_markers_still_acknowledge(without_flags):
    assert_irreversible(without_flags, "irrev_marker", "0002_lowercase_setting_keys", "RunPython",
                        True)
    assert_lost(without_flags, "loss_marker", "0002_remove_contact_fax", ["RemoveField"], True)
    assert_breaking(without_flags, "loss_marker", "0002_remove_contact_fax", 'column "fax"', True)
