"""End to end: no false alarm on the clean twins (clean_project, cross_app_project).

clean_project holds the clean twin of every defect of DEFECTS.md, a merge migration and a
squashed one; cross_app_project has an app whose newest migration depends on another app's
newest one. Every migration of every window must pass every proof, and the run exit 0.
"""

from __future__ import annotations

import pytest

from tests.migration_check import conftest
from tests.migration_check.conftest import (
    PASSED,
    ToolRun,
    assert_cleaned_up,
    fixture_in_fork,
)

pytestmark = pytest.mark.slow

CLEAN_WINDOWS = {
    "catalog": [
        "0005_discount_index_constraint",
        "0004_widen_code_nullable_note",
        "0003_rename_sku_article_number",
        "0002_product_description_prefix",
        "0001_initial",
    ],
    "sqlops": [
        "0003_entry_sql_trigger_audit_table",
        "0002_entry_sql_index_default_constraint",
        "0001_initial",
    ],
    # the squash, then the migrations it replaces (the path of a database older than the squash)
    "legacy": ["0003_record_created", "0001_squashed_0002_record_value", "0002_record_value", "0001_initial"],
}
# The two branches of a merge have no order of their own: they are checked as a set.
MERGE_APP, MERGE, BRANCHES, MERGE_ROOT = (
    "notes", "0003_merge_0002_note_pinned_0002_note_title",
    {"0002_note_pinned", "0002_note_title"}, "0001_initial")

CROSS_APP_WINDOWS = {
    "alpha": ["0003_region", "0002_country_iso_code", "0001_initial"],
    "beta": ["0002_store_region", "0001_initial"],
}


# Fork isolation only: every step of these runs passes, as the passing steps of the
# configurations compared in both isolations do (defects_project's, apply_project's); the
# isolation changes how a step runs, not how it is judged (docs/tests.md).
clean = fixture_in_fork("clean_project", "--depth", "5", name="clean")
# --jobs 2 (the default on two CPUs, named here because the console test below relies on it):
# alpha and beta are tested side by side, each in a chain of its own.
cross_app = fixture_in_fork("cross_app_project", "--depth", "all", "--jobs", "2", name="cross_app")


def assert_app_passed(run: ToolRun, label: str) -> None:
    for migration in run.app(label):
        run.assert_verdicts(label, migration["name"], **PASSED)
        assert migration["error"] is None, migration
        assert migration.get("acknowledged", False) is False, migration


def test_clean_project_exits_0(clean):
    assert clean.returncode == 0, clean.context()
    assert clean.require_report()["ok"] is True


def test_clean_project_report_follows_the_contract(clean):
    windows = dict(CLEAN_WINDOWS)
    windows[MERGE_APP] = [m["name"] for m in clean.app(MERGE_APP)]
    conftest.assert_report_shape(clean, windows)


def test_clean_project_checks_pass_deploy_warnings_do_not_fail(clean):
    for name in ("forward", "check_deploy", "missing_migrations"):
        assert clean.check(name)["status"] == "passed", clean.check(name)
    # The fixtures have no security middleware and a short SECRET_KEY: warnings, shown.
    assert "security.W009" in (clean.check("check_deploy")["detail"] or "") + clean.stdout


def test_post_release_values_in_new_columns_are_information_not_loss(clean):
    migration = clean.migration("catalog", "0005_discount_index_constraint")
    assert migration["data"] == "preserved"
    assert "discount_percent" in conftest.detail_text(migration), migration


@pytest.mark.parametrize("app", [*CLEAN_WINDOWS, MERGE_APP])
def test_clean_project_every_migration_passes_every_proof(clean, app):
    assert_app_passed(clean, app)


def test_merge_migration_window(clean):
    names = [m["name"] for m in clean.app(MERGE_APP)]
    assert names[0] == MERGE and names[-1] == MERGE_ROOT, names
    assert set(names[1:-1]) == BRANCHES, names


def test_squashed_migration_is_tested_under_its_own_name_and_through_what_it_replaces(clean):
    """The squash is what a fresh database runs; a database older than it migrates through
    0001_initial and 0002_record_value, which are tested on that path and listed below it."""
    names = [m["name"] for m in clean.app("legacy")]
    assert names == CLEAN_WINDOWS["legacy"]
    for name in ("0002_record_value", "0001_initial"):
        replaced = clean.assert_verdicts("legacy", name, apply="passed", **PASSED)
        assert replaced["details"][0]["message"] == (
            "replaced by 0001_squashed_0002_record_value: tested on the path of a database older than the squash "
            "(forward through 0001_initial, 0002_record_value)")


def test_rolling_back_a_squash_does_not_claim_its_replaced_migrations_were_re_applied(clean):
    """Django records a squash as the migrations it replaces too; those are not in the plan, so
    nothing re-applies them. The tool once said "also rolled back 0001_initial, 0002_record_value,
    re-applied before comparing" here."""
    squash = clean.migration("legacy", "0001_squashed_0002_record_value")
    assert "also rolled back" not in conftest.detail_text(squash), conftest.detail_text(squash)
    details = conftest.detail_text(squash)
    assert "0001_initial" not in details and "0002_record_value," not in details


def test_clean_project_cleanup_and_url_database_untouched(clean):
    assert_cleaned_up(clean)


def test_cross_app_exits_0(cross_app):
    assert cross_app.returncode == 0, cross_app.context()


def test_cross_app_report_follows_the_contract(cross_app):
    conftest.assert_report_shape(cross_app, CROSS_APP_WINDOWS)


@pytest.mark.parametrize("app", CROSS_APP_WINDOWS)
def test_cross_app_rollback_of_alpha_causes_no_false_alarm(cross_app, app):
    assert_app_passed(cross_app, app)


def test_cross_app_cleanup_and_url_database_untouched(cross_app):
    assert_cleaned_up(cross_app)


def test_cross_app_console_keeps_each_apps_lines_together(cross_app):
    """Issue 21, part 6: with --jobs 2 the two apps' lines used to alternate line by line. Each
    app's lines now stand under its heading, one block each, and the block holds every line of
    the app's chain; nothing is rewritten in place in a pipe (no live line: no carriage return)."""
    assert "\r" not in cross_app.stdout and "\x1b" not in cross_app.stdout
    lines = cross_app.stdout.splitlines()
    headings = [index for index, line in enumerate(lines) if line.startswith("== ")]
    table = next(index for index, line in enumerate(lines) if line.startswith("migration  "))
    ends = {index: next((later for later in headings if later > index), table) for index in headings}
    blocks = {lines[index]: lines[index + 1:end] for index, end in ends.items()}
    assert {"== alpha ==", "== beta =="} <= set(blocks), cross_app.context()
    for app, other in (("alpha", "beta"), ("beta", "alpha")):
        block = blocks[f"== {app} =="]
        # every line the chain wrote (steps start with the label `app.`, notes with `app:`)
        written = [line for line in lines[headings[0]:table] if line.startswith((f"{app}.", f"{app}:"))]
        assert written and [line for line in block if line in written] == written, cross_app.context()
        assert not [line for line in block if line.startswith((f"{other}.", f"{other}:"))], cross_app.context()
        assert f"{app}.0001_initial: reapply ... OK" in "\n".join(block)
    assert "manage.py migrate" not in cross_app.stdout  # the commands are for -v (verbosity 2)
