"""End to end: a squash that replaces another app's migrations (cross_squash_project).

Found on django-two-factor-auth (docs/survey-2.md): its `phonenumber` plugin's squash replaces
the migrations of `two_factor`. The tool at f3eff59 tested the path of a database older than the
squash as if every replaced migration were of the squash's app, and failed the run with
"could not build the state before 0001_initial: KeyError: ('phones', '0002_device_number')" on
each of them (their verdicts `not_run`, exit 1), while Django migrates both paths
(fixture_sanity/test_cross_squash_project.py). Expected now: the squash passes with a note that
the older path is not tested; the twin `solo` (a squash of its own migrations) gets its replaced
path as before; exit 0.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import PASSED, ToolRun, assert_cleaned_up, assert_report_shape

pytestmark = pytest.mark.slow

WINDOWS = {
    "phones": ["0001_squashed_0001_initial"],
    # the squash, then the migrations it replaces (the path of a database older than the squash)
    "solo": ["0001_squashed_0002_record_value", "0002_record_value", "0001_initial"],
}


@pytest.fixture(scope="module")
def run(run_tool) -> ToolRun:
    return run_tool("cross_squash_project")


def test_exits_0_and_cleans_up(run):
    assert run.returncode == 0, run.context()
    assert_report_shape(run, WINDOWS)
    assert_cleaned_up(run)


def test_the_squash_passes_and_says_the_older_path_is_not_tested(run):
    squash = run.assert_verdicts("phones", "0001_squashed_0001_initial", apply="passed", compat="compatible",
                                 retry="passed", **PASSED)
    notes = [d["message"] for d in squash["details"] if d["kind"] == "info"]
    assert any("older than 0001_squashed_0001_initial is not tested" in note
               and "devices.0001_initial, devices.0002_device_number, devices.0003_delete_device" in note
               for note in notes), notes


def test_the_app_whose_migrations_another_app_replaces_is_said_not_tested(run):
    # `devices` has migration files, but the plan runs none of them: the run says so (it was
    # silently left out) and the report lists it with the apps it did not test
    note = "devices (every one is replaced by phones.0001_squashed_0001_initial; test phones instead)"
    assert f"not testing {note}" in run.stdout, run.context()
    assert note in run.require_report()["skipped_apps"]


def test_naming_that_app_is_refused_with_what_to_test(run_tool):
    refused = run_tool("cross_squash_project", "--app", "devices")
    assert refused.returncode == 2, refused.context()
    assert refused.stderr.strip().splitlines()[-1] == (
        "test_migrations: error: app devices has no migration of its own to test: every one is replaced by "
        "phones.0001_squashed_0001_initial; test phones instead"), refused.context()
    assert_cleaned_up(refused)


@pytest.mark.parametrize("name", WINDOWS["solo"])
def test_the_twin_squash_and_its_replaced_path_pass(run, name):
    run.assert_verdicts("solo", name, apply="passed", compat="compatible", retry="passed", **PASSED)
