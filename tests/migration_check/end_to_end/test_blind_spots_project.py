"""End to end: the tool on blind_spots_project, each former blind spot next to its twin (shown
real, without the tool, in fixture_sanity/test_blind_spots_project.py). The run works as a superuser role, so
the locks are observed.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import ToolRun, assert_cleaned_up, detail_text

pytestmark = pytest.mark.slow

RELAX = "0002_relax_follow"
TIGHTEN = "0002_alter_member_email"
NOT_NULL = "0002_alter_profile_nickname"
PK = "0002_token_id"
DELETE = "0002_delete_crate"


@pytest.fixture(scope="module")
def run(run_tool) -> ToolRun:
    return run_tool("blind_spots_project", superuser=True)


def test_run_fails_and_cleans_up(run):
    assert run.returncode == 1, run.context()
    assert_cleaned_up(run)


def test_relaxed_unique_key_fails_the_rollback_over_a_post_release_row(run):
    migration = run.assert_verdicts("relaxed", RELAX, rollback="failed", reapply="not_run")
    assert "could not create unique index" in migration["error"] and "is duplicated" in migration["error"]
    assert "relaxes the unique key (content_type, object_id, user) of relaxed_follow" in detail_text(migration)
    assert run.migration("relaxed", "0001_initial")["rollback"] == "blocked"
    assert "relaxed.0002_relax_follow" in run.stdout.split("FAILED")[-1]


def test_relaxed_twin_rolls_back_and_names_the_row_it_deletes(run):
    migration = run.assert_verdicts("relaxed_copes", RELAX, rollback="passed", reapply="passed", schema="identical",
                                    data="lost")
    assert migration["acknowledged"] is True  # the marker in the file: de-duplicating throws a row away
    lost = [d for d in migration["details"] if d["kind"] == "data_lost"]
    assert len(lost) == 1 and lost[0]["rows_written"] == "post-release" and lost[0]["column"] is None, lost


CONDITIONAL = "0002_authenticator_unique_type"


def test_conditionally_relaxed_key_fails_the_rollback_over_a_new_pair_of_rows(run):
    # No pre-release row can be repeated (the new constraint still covers their types): the tool
    # writes a new pair on the type it leaves free (it reported a coverage gap before, and the
    # survey's django-allauth mfa.0003 rollback fails like this in production).
    migration = run.assert_verdicts("relaxed_conditional", CONDITIONAL, rollback="failed", reapply="not_run")
    assert "could not create unique index" in migration["error"] and "webauthn) is duplicated" in migration["error"]
    assert [d for d in migration["details"] if d["kind"] == "coverage"] == []
    assert "relaxed_conditional.0002_authenticator_unique_type" in run.stdout.split("FAILED")[-1]


def test_conditionally_relaxed_twin_rolls_back_and_names_the_row_it_deletes(run):
    migration = run.assert_verdicts("relaxed_conditional_copes", CONDITIONAL, rollback="passed", reapply="passed",
                                    schema="identical", data="lost")
    assert migration["acknowledged"] is True
    lost = [d for d in migration["details"] if d["kind"] == "data_lost"]
    assert len(lost) == 1 and lost[0]["rows_written"] == "post-release", lost


def test_tightened_unique_key_is_a_hazard_with_the_fix(run):
    migration = run.assert_verdicts("tightened", TIGHTEN, apply="passed", data="preserved")
    (hazard,) = [h for h in migration["hazards"] if h["rule"] == "unique-over-duplicates"]
    assert hazard["table"] == "tightened_member" and "(email)" in hazard["message"]
    assert "is duplicated" in hazard["message"] and "RunPython" in hazard["fix"]
    assert "GROUP BY email HAVING count(*) > 1" in hazard["fix"]


def test_tightened_twin_has_no_such_hazard(run):
    migration = run.assert_verdicts("tightened_dedup", TIGHTEN, apply="passed")
    assert [h for h in migration["hazards"] if h["rule"] == "unique-over-duplicates"] == []
    assert "unique probe" not in detail_text(migration)


def test_old_default_none_breaks_old_code(run):
    migration = run.assert_verdicts("old_default", NOT_NULL, compat="breaks_old_code")
    (finding,) = [d for d in migration["details"] if d["kind"] == "compat"]
    assert finding["action"] == "INSERT (defaults)" and finding["sqlstate"] == "23502"
    assert finding["statement"].startswith('INSERT INTO "old_default_profile" ("name", "nickname") VALUES (')
    assert finding["statement"].endswith(', NULL) RETURNING "id"'), finding["statement"]
    assert "null=True without a default" in finding["pattern"]
    assert "old_default.0002_alter_profile_nickname" in run.stdout.split("FAILED")[-1]


def test_old_default_twin_is_compatible(run):
    run.assert_verdicts("old_default_set", NOT_NULL, compat="compatible")


def test_moved_primary_key_keeps_its_rows(run):
    migration = run.assert_verdicts("pk_move", PK, rollback="passed", reapply="passed", data="preserved")
    assert "post-release row(s) deleted" not in detail_text(migration)


def test_moved_primary_key_twin_loses_the_newest_row(run):
    migration = run.assert_verdicts("pk_move_lost", PK, rollback="passed", data="lost")
    lost = [d for d in migration["details"] if d["kind"] == "data_lost"]
    assert [(d["table"], d["column"], d["rows"], d["rows_written"]) for d in lost] == [
        ("pk_move_lost_token", None, 1, "post-release")], lost


def test_dropped_table_is_locked_access_exclusive(run):
    assert run.migration("dropped", DELETE)["locks"] == [{"table": "dropped_crate", "mode": "AccessExclusiveLock"}]


def test_state_only_delete_locks_nothing(run):
    assert run.migration("dropped_state", DELETE)["locks"] == []


def test_concurrent_build_holds_share_update_exclusive_and_no_hazard(run):
    migration = run.migration("concurrent_build", "0002_event_concurrent_build_happened_idx")
    assert migration["locks"] == [{"table": "concurrent_build_event", "mode": "ShareUpdateExclusiveLock"}]
    assert migration["hazards"] == []


def test_a_colliding_one_to_one_row_gets_a_fresh_parent_and_breaks_old_code(run):
    migration = run.assert_verdicts("one_to_one", "0002_profile_code", compat="breaks_old_code")
    (finding,) = [d for d in migration["details"] if d["kind"] == "compat"]
    assert finding["action"] == "INSERT" and finding["sqlstate"] == "23502"
    assert finding["statement"].startswith('WITH tm_fresh_0 AS (INSERT INTO "one_to_one_account"')
    assert "not checked" not in detail_text(migration)  # the UPDATE keeps its own account: checked too


def test_one_to_one_twin_is_compatible_and_fully_checked(run):
    migration = run.assert_verdicts("one_to_one_safe", "0002_profile_code", compat="compatible")
    assert "not checked" not in detail_text(migration)
