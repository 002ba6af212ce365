"""End to end: migrations that leave a sequence behind the ids they wrote (sequence_project).

Found on django-helpdesk 2.6.1 (docs/survey-4.md): its 0003 loads 162 e-mail templates with their
ids and leaves the sequence at 1; the tool said only "pre-release seeding skipped 3 row(s) ...
duplicate key" on every migration, as information, and the run passed. Expected now: the
`sequences` check fails, naming each table and sequence, and the fix; the twin is not named; every
migration's own verdicts stay green; exit 1.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import PASSED, ToolRun, assert_cleaned_up

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(run_tool) -> ToolRun:
    return run_tool("sequence_project")


def test_the_sequences_check_names_each_sequence_behind_and_the_fix(run):
    assert run.returncode == 1, run.context()
    assert_cleaned_up(run)
    (check,) = [c for c in run.require_report()["checks"] if c["name"] == "sequences"]
    assert check["status"] == "failed"
    found = check["detail"].split("; the migration that wrote rows with their id must move it on")
    assert found[0].startswith("loaded_colour.id holds values up to 1003, but its sequence loaded_colour_id_seq "
                               "gives 1 next"), check["detail"]
    assert "loaded_legacy.id holds values up to 7, but its sequence loaded_legacy_id_seq gives 1 next" in found[1]
    assert """SELECT setval('loaded_colour_id_seq', (SELECT max("id") FROM loaded_colour))""" in check["detail"]
    assert "loaded_reset" not in check["detail"]
    assert "sequences failed: loaded_colour.id" in run.stdout
    assert "[sequence-behind: docs/rules/sequence-behind.md]" in run.stdout


@pytest.mark.parametrize(("app", "names"), [
    ("loaded", ["0003_legacy", "0002_colours", "0001_initial"]),
    ("loaded_reset", ["0002_colours", "0001_initial"]),
])
def test_the_migrations_own_verdicts_stay_green(run, app, names):
    assert [m["name"] for m in run.app(app)] == names
    for name in names:
        run.assert_verdicts(app, name, apply="passed", compat="compatible", **PASSED)
