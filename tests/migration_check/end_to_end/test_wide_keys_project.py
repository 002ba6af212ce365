"""End to end: migrations that widen a key the database generates (wide_keys_project).

Found in survey 2 (docs/survey-2.md): django-invitations 0004, django-mailer 0005 and
django-robots 0002 turn AutoField into BigAutoField; the tool at bf45424 said "rollback passed,
data preserved" and nothing else, while by hand their rollback fails with "integer out of range"
once an id has passed 2,147,483,647 (fixture_sanity/test_wide_keys_project.py). The post-release
rows take their ids from the sequence, so the verdicts stay, with a `coverage` finding saying
what they do not speak for; it fails nothing. The twin (an AddField) gets none. `invites.0002`
is also `schema: differs` (Django puts the foreign key back under another name), so the whole
project exits 1, and the run without it exits 0.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import PASSED, ToolRun, assert_cleaned_up, assert_report_shape

pytestmark = pytest.mark.slow

WIDEN = "0002_alter_invitation_id"
WIDEN_TOKEN = "0002_alter_token_id"
TWIN = "0002_invitation_note"
WINDOWS = {"invites": [WIDEN, "0001_initial"], "tokens": [WIDEN_TOKEN, "0001_initial"],
           "invites_twin": [TWIN, "0001_initial"]}
INVITATION = ("table invites_invitation: column id is bigint after 0002_alter_invitation_id and integer before "
              "(and with it invites_reminder.invitation_id); post-release keys come from its sequence, so none "
              "passed integer's range here: in production the rollback fails once id passes 2,147,483,647 "
              "(check the sequence: SELECT last_value FROM invites_invitation_id_seq)")
TOKEN = ("table tokens_token: column id is bigint after 0002_alter_token_id and integer before; post-release "
         "keys come from its sequence, so none passed integer's range here: in production the rollback fails "
         "once id passes 2,147,483,647 (check the sequence: SELECT last_value FROM tokens_token_id_seq)")


def coverage(migration: dict) -> list[dict]:
    return [d for d in migration["details"] if d["kind"] == "coverage"]


@pytest.fixture(scope="module")
def run(run_tool) -> ToolRun:
    return run_tool("wide_keys_project")


@pytest.fixture(scope="module")
def run_green(run_tool) -> ToolRun:
    return run_tool("wide_keys_project", "--app", "tokens", "--app", "invites_twin")


def test_the_project_fails_on_the_renamed_foreign_key_only(run):
    assert run.returncode == 1, run.context()
    assert_report_shape(run, WINDOWS)
    assert_cleaned_up(run)
    migration = run.assert_verdicts("invites", WIDEN, rollback="passed", reapply="passed", schema="differs",
                                    data="preserved")
    schema = [d["message"] for d in migration["details"] if d["kind"] == "schema"]
    assert schema == [
        "constraint invites_reminder_invitation_id_a58441ea_fk on invites_reminder still exists after rolling "
        "back 0002_alter_invitation_id",
        "constraint invites_reminder_invitation_id_a58441ea_fk_invites_i on invites_reminder is missing after "
        "rolling back 0002_alter_invitation_id"], schema


def test_the_widened_key_and_its_foreign_key_get_one_coverage_finding(run):
    migration = run.migration("invites", WIDEN)
    assert coverage(migration) == [{"kind": "coverage", "message": INVITATION, "table": "invites_invitation",
                                    "column": "id", "rule": "data-not-covered"}]


def test_the_widened_key_without_foreign_keys_stays_green_with_the_finding(run):
    migration = run.assert_verdicts("tokens", WIDEN_TOKEN, **PASSED)
    assert coverage(migration) == [{"kind": "coverage", "message": TOKEN, "table": "tokens_token",
                                    "column": "id", "rule": "data-not-covered"}]


@pytest.mark.parametrize(("app", "name"), [("invites_twin", TWIN), ("invites_twin", "0001_initial"),
                                           ("invites", "0001_initial"), ("tokens", "0001_initial")])
def test_no_finding_where_no_key_is_widened(run, app, name):
    assert coverage(run.assert_verdicts(app, name, **PASSED)) == []


def test_the_finding_fails_nothing(run_green):
    assert run_green.returncode == 0, run_green.context()
    assert_report_shape(run_green, {"tokens": WINDOWS["tokens"], "invites_twin": WINDOWS["invites_twin"]})
    assert_cleaned_up(run_green)
    run_green.assert_verdicts("tokens", WIDEN_TOKEN, **PASSED)
    section = run_green.stdout.split("Not covered by the data proof")[1]
    assert f"- tokens: {TOKEN} ({WIDEN_TOKEN})" in section, run_green.context()
    assert "not fully tested" not in run_green.stdout, run_green.context()
