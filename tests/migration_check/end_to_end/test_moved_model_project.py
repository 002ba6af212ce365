"""End to end: a migration whose own dependencies' state does not render (moved_model_project).

Found on django-oscar (docs/survey-4.md): customer.0008 depends on order.0001, whose foreign key
points at a model customer.0006 moved to another app, and not on order.0008, which re-points it.
Django's `migrate` renders every applied migration and has no trouble; the tool described each
migration of the window from the state of its own dependencies, and one that did not render
stopped the whole window: "could not build the state before 0004_email_save", every migration of
it `rollback: not_run` and counted as a problem, exit 1 (this fixture: the same for 0003_note).
Expected now: the migration is tested (apply, rollback, re-apply, schema); the data and compat
checks, which need the app's models around it, did not run (`not_checked`), and a `coverage`
finding names Django's error. The twin (its 0003 depends on holders.0002) passes every check.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import PASSED, ToolRun, assert_cleaned_up, assert_report_shape

pytestmark = pytest.mark.slow

PROJECT = "moved_model_project"


@pytest.fixture(scope="module")
def runs(run_tool) -> dict[str, ToolRun]:
    return {name: run_tool(PROJECT, "--app", "kinds", "--depth", "2", settings=f"{PROJECT}.{name}")
            for name in ("settings", "settings_twin")}


def test_the_migration_is_tested_and_what_could_not_be_checked_is_said(runs):
    run = runs["settings"]
    assert run.returncode == 0, run.context()
    assert_report_shape(run, {"kinds": ["0003_note", "0002_move_kind"]})
    # the migration before it renders, and keeps every check: one that does not no longer stops the window
    run.assert_verdicts("kinds", "0002_move_kind", apply="passed", compat="compatible", **PASSED)
    assert_cleaned_up(run)
    migration = run.assert_verdicts("kinds", "0003_note", apply="passed", rollback="passed", reapply="passed",
                                    schema="identical", data="not_checked", compat="not_checked", error=None)
    coverage = [d for d in migration["details"] if d["kind"] == "coverage"]
    assert len(coverage) == 1, migration["details"]
    assert coverage[0]["rule"] == "data-not-covered"
    assert "cannot be rendered from the migrations it depends on" in coverage[0]["message"]
    assert "lazy reference to 'kinds.kind'" in coverage[0]["message"]
    assert "could not build the state" not in run.stdout + run.stderr


def test_the_twin_passes_every_check(runs):
    run = runs["settings_twin"]
    assert run.returncode == 0, run.context()
    assert_cleaned_up(run)
    migration = run.assert_verdicts("kinds", "0003_note", apply="passed", compat="compatible", **PASSED)
    assert not [d for d in migration["details"] if d["kind"] == "coverage"], migration["details"]
