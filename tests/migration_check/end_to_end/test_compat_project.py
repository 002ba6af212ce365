"""End to end: the compat check on compat_project (see its settings.py).

`breaking` has one migration per way a schema change breaks the previous release, `safe` the
clean twin of each, `staged` two migrations declared to run after the deploy (checked the
other way: the new release on the schema before them), `opaque` a change the check cannot test
(a column of a type it has no value for) beside a twin that leaves that table alone. The proof
that each case is real, with plain manage.py and psql, is in fixture_sanity/test_compat_project.py.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import ToolRun, assert_cleaned_up

pytestmark = pytest.mark.slow

BREAKING = {  # migration -> (model, table, the actions that fail, the database's error)
    "0002_remove_note_legacy_code": ("breaking.Note", "breaking_note", ["SELECT", "INSERT", "UPDATE"],
                                     'column "legacy_code"'),
    "0003_rename_article_headline_title": ("breaking.Article", "breaking_article", ["SELECT", "INSERT", "UPDATE"],
                                           'column "headline"'),
    "0004_rename_client_customer": ("breaking.Client", "breaking_client", ["SELECT", "INSERT", "UPDATE"],
                                    'relation "breaking_client" does not exist'),
    "0005_delete_auditentry": ("breaking.AuditEntry", "breaking_auditentry", ["SELECT", "INSERT", "UPDATE"],
                               'relation "breaking_auditentry" does not exist'),
    "0006_ticket_code": ("breaking.Ticket", "breaking_ticket", ["INSERT"],
                         'null value in column "code" of relation "breaking_ticket" violates not-null constraint'),
    "0007_alter_label_text": ("breaking.Label", "breaking_label", ["INSERT", "UPDATE"],
                              "value too long for type character varying(40)"),
}
PATTERNS = {  # the safe pattern each failure names
    "0002_remove_note_legacy_code": "SeparateDatabaseAndState with only the RemoveField",
    "0003_rename_article_headline_title": "copy the values instead of renaming",
    "0004_rename_client_customer": "copy the values instead of renaming",
    "0005_delete_auditentry": "SeparateDatabaseAndState with only the DeleteModel",
    "0006_ticket_code": "db_default=",
    "0007_alter_label_text": "narrow the column a release later",
}
SAFE = ["0002_remove_note_legacy_code_from_state", "0003_article_title", "0004_rename_client_customer",
        "0005_delete_auditentry_from_state", "0006_ticket_code", "0007_badge_code", "0008_alter_label_text"]


@pytest.fixture(scope="module")
def run(run_tool) -> ToolRun:
    return run_tool("compat_project", "--depth", "all")


@pytest.fixture(scope="module")
def off(run_tool) -> ToolRun:
    return run_tool("compat_project", "--app", "staged", "--depth", "all", "--no-compat")


def compat_findings(migration: dict) -> list[dict]:
    return [d for d in migration["details"] if d["kind"] == "compat"]


def test_exits_1_and_cleans_up(run):
    assert run.returncode == 1, run.context()
    assert_cleaned_up(run)


def test_every_migration_was_applied_rolled_back_and_reapplied(run):
    for app in ("breaking", "safe", "staged"):
        for migration in run.app(app):
            assert (migration["apply"], migration["rollback"], migration["reapply"]) == ("passed",) * 3, migration


@pytest.mark.parametrize("name", sorted(BREAKING))
def test_breaking_change_names_model_statement_and_error(run, name):
    model, table, actions, error = BREAKING[name]
    migration = run.migration("breaking", name)
    assert (migration["compat"], migration["compat_direction"], migration["compat_acknowledged"]) == (
        "breaks_old_code", "old_code_on_new_schema", False), migration
    findings = compat_findings(migration)
    assert [f["action"] for f in findings] == actions, findings
    for finding in findings:
        assert (finding["model"], finding["table"]) == (model, table)
        assert error in finding["error"], finding
        assert finding["statement"].startswith(f'{finding["action"]} ') and table in finding["statement"]
        assert PATTERNS[name] in finding["pattern"] and PATTERNS[name] in finding["message"]


def test_only_the_changed_model_is_blamed(run):
    """Every model of the state before is checked; the untouched ones pass."""
    for name, (model, *_rest) in BREAKING.items():
        assert {f["model"] for f in compat_findings(run.migration("breaking", name))} == {model}


@pytest.mark.parametrize("name", SAFE)
def test_safe_twin_is_compatible(run, name):
    migration = run.migration("safe", name)
    assert (migration["compat"], migration["compat_direction"]) == ("compatible", "old_code_on_new_schema"), migration
    assert compat_findings(migration) == []
    assert not [d for d in migration["details"] if d["message"].startswith("compat:")], migration["details"]


def test_initial_migrations_have_no_previous_code_to_break(run):
    for app in ("breaking", "safe", "staged"):
        assert run.migration(app, "0001_initial")["compat"] == "compatible"


def test_post_deploy_removal_of_a_not_null_column_breaks_the_new_code(run):
    migration = run.migration("staged", "0002_remove_item_legacy")
    assert (migration["compat"], migration["compat_direction"]) == ("breaks_old_code", "new_code_on_old_schema")
    (finding,) = compat_findings(migration)
    assert (finding["model"], finding["action"]) == ("staged.Item", "INSERT")
    assert 'null value in column "legacy" of relation "staged_item"' in finding["error"]
    assert finding["statement"].startswith('INSERT INTO "staged_item" ("name") VALUES (')
    assert "safe = Safe.after_deploy()" in finding["message"]
    assert "make the column nullable" in finding["pattern"]


def test_post_deploy_removal_after_making_it_nullable_is_compatible(run):
    made_nullable = run.migration("staged", "0003_record_legacy_nullable")
    assert (made_nullable["compat"], made_nullable["compat_direction"]) == ("compatible", "old_code_on_new_schema")
    removed = run.migration("staged", "0004_remove_record_legacy")
    assert (removed["compat"], removed["compat_direction"]) == ("compatible", "new_code_on_old_schema"), removed
    assert compat_findings(removed) == []


def test_summary_and_problems(run):
    assert "breaking.0006_ticket_code: breaks old code" in run.stdout, run.context()
    assert "staged.0002_remove_item_legacy: data lost, breaks the new code (post-deploy)" in run.stdout
    header = next(line for line in run.stdout.splitlines() if line.startswith("migration "))
    assert header.split() == ["migration", "apply", "rollback", "re-apply", "schema", "data", "compat", "retry",
                              "time"]
    assert "safe.0002_remove_note_legacy_code_from_state" not in "".join(
        line for line in run.stdout.splitlines() if line.startswith("  - "))


def test_no_compat_means_not_checked(off):
    assert off.returncode == 1, off.context()  # the data losses remain
    for migration in off.app("staged"):
        assert (migration["compat"], migration["compat_direction"]) == ("not_checked", None), migration
        assert compat_findings(migration) == []
    assert "breaks" not in off.stdout


def test_a_changed_table_the_check_cannot_write_is_not_checked(run):
    """opaque.0002 breaks the previous release (fixture_sanity shows it), but no row of Tag can be
    made (a domain type): `not_checked`, never `compatible` (wagtailsearch.0010 was, survey 4)."""
    migration = run.migration("opaque", "0002_tag_label")
    assert (migration["compat"], migration["compat_direction"]) == ("not_checked", None), migration
    reasons = [d["message"] for d in migration["details"] if d["message"].startswith("compat:")]
    assert reasons[0] == ("compat: INSERT opaque_tag (opaque.Tag) not checked: no value known for column code of "
                          "type compat_code"), reasons
    assert all(reason.startswith(("compat: INSERT opaque_tag", "compat: UPDATE opaque_tag")) for reason in reasons)
    assert "opaque.0002_tag_label" in next(line for line in run.stdout.splitlines() if "not fully tested" in line)


def test_an_untouched_table_the_check_cannot_write_leaves_the_verdict_alone(run):
    migration = run.migration("opaque", "0003_plain")
    assert (migration["compat"], migration["compat_direction"]) == ("compatible", "old_code_on_new_schema"), migration
    assert any(d["message"].startswith("compat: INSERT opaque_tag") for d in migration["details"])
