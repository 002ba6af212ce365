"""End to end: a window migration tested in the state a fresh database before it holds
(catch_up_project; shown by hand in fixture_sanity/test_catch_up_project.py).

Found on django-oscar (docs/survey-4.md): a chain that tested customer.0004-0005 went on to 0006
and 0007 without applying order.0008, which depends on them and which a fresh database before
0006 holds; the state did not load any more, and the verdicts differed from a run where --jobs
split the window (and so with the other apps in the run). Here, before: `--jobs 1` ended with
"restoring the full state after testing kinds failed" (exit 1), `--jobs 2` passed. Expected now:
the same verdicts with either, every check passed, exit 0, and the log names the catch-up.
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import PASSED, ToolRun, assert_cleaned_up

pytestmark = pytest.mark.slow

NAMES = ["0004_note", "0003_move_kind", "0002_kind_code", "0001_initial"]


@pytest.fixture(scope="module")
def runs(run_tool) -> dict[int, ToolRun]:
    return {jobs: run_tool("catch_up_project", "--app", "kinds", "--depth", "4", "--jobs", str(jobs))
            for jobs in (1, 2)}


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_migration_passes_whatever_the_split(runs, jobs):
    run = runs[jobs]
    assert run.returncode == 0, run.context()
    assert_cleaned_up(run)
    assert [m["name"] for m in run.app("kinds")] == NAMES
    for name in NAMES:
        run.assert_verdicts("kinds", name, apply="passed", compat="compatible", **PASSED)


def test_one_chain_applies_the_other_apps_migration_before_the_next_test(runs):
    assert "kinds: apply holders.0002_kind_moved first ... OK" in runs[1].stdout, runs[1].context()
    assert "restoring the full state" not in runs[1].stdout


def test_the_verdicts_do_not_depend_on_the_split(runs):
    def verdicts(run):
        return [{k: m[k] for k in ("apply", "rollback", "reapply", "schema", "data", "compat", "retry")}
                for m in run.app("kinds")]
    assert verdicts(runs[1]) == verdicts(runs[2])
