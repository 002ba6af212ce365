"""End to end: the retry proof on retry_project, each case next to its clean twin (shown real,
without the tool, in fixture_sanity/test_retry_project.py): a deploy cut off part-way and run
again must end where a clean apply does."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from tests.migration_check.conftest import ToolRun, assert_cleaned_up

pytestmark = pytest.mark.slow

FAILED = {  # app -> (migration, what the finding must say)
    "plain_concurrently": ("0002_event_happened_idx",
                           ["cancelled during statement 1 of 1 (CREATE INDEX CONCURRENTLY",
                            'the retry failed: ProgrammingError: relation "plain_conc_happened_idx" already exists']),
    "if_not_exists": ("0002_event_happened_idx",
                      ["cancelled during statement 1 of 1 (CREATE INDEX CONCURRENTLY IF NOT EXISTS",
                       "the schema differs from a clean apply: index if_not_exists_happened_idx: validity INVALID"]),
    "batch_counter": ("0002_count_a_hit",
                      ["cut off after statement", "the data differs from a clean apply",
                       "value(s) of batch_counter_counter.hits differ"]),
    # atomic, but its RunSQL script commits part-way (sent in one piece: one statement to cut after)
    "atomic_commit": ("0002_event_tag",
                      ["cut off after statement 1 of ", "(CREATE TABLE atomic_commit_tag",
                       'the retry failed: ProgrammingError: relation "atomic_commit_tag" already exists']),
}
PASSED = {"drop_first": "0002_event_happened_idx", "batch_idempotent": "0002_hits_from_name",
          "atomic_index": "0002_event_happened_idx", "atomic_commit_idempotent": "0002_event_tag"}
# The apps whose atomic 0002 has a RunSQL that ends the transaction part-way (a COMMIT).
COMMITS_PART_WAY = ("atomic_commit", "atomic_commit_idempotent")
COMMIT_NOTE = "atomic, but its RunSQL ends the transaction part-way (`COMMIT`)"


@pytest.fixture(scope="module")
def run(run_tool, tmp_path_factory) -> tuple[ToolRun, ElementTree.Element]:
    junit = tmp_path_factory.mktemp("retry-junit") / "junit.xml"
    done = run_tool("retry_project", "--junit-xml", str(junit))
    return done, ElementTree.parse(junit).getroot()


def test_the_run_fails_naming_each_migration_whose_retry_fails(run):
    done, _ = run
    assert done.returncode == 1, done.context()
    problems = [line for line in done.stdout.splitlines() if "retry after a cut-off apply fails" in line]
    assert sorted(line.split(":")[0].strip(" -") for line in problems) == sorted(
        f"{app}.{name}" for app, (name, _) in FAILED.items())
    assert_cleaned_up(done)


@pytest.mark.parametrize("app", sorted(FAILED))
def test_a_retry_that_does_not_converge_is_failed_with_the_cut_and_the_fix(run, app):
    name, words = FAILED[app]
    migration = run[0].migration(app, name)
    assert (migration["apply"], migration["retry"], migration["retry_acknowledged"]) == ("passed", "failed", False)
    findings = [d for d in migration["details"] if d["kind"] == "retry"]
    assert findings and all(d["rule"] == "retry-not-idempotent" for d in findings)
    assert all(word in findings[0]["message"] for word in words), findings[0]["message"]
    assert "DROP INDEX CONCURRENTLY IF EXISTS" in findings[0]["fix"]


@pytest.mark.parametrize("app", sorted(PASSED))
def test_the_twins_converge(run, app):
    migration = run[0].migration(app, PASSED[app])
    assert migration["retry"] == "passed" and not [d for d in migration["details"] if d["kind"] == "retry"]


def test_an_atomic_migration_that_commits_part_way_is_cut_as_a_non_atomic_one_is(run):
    """Said once per such migration (an info line); its twin's three cuts (after the CREATE
    TABLE, after the COMMIT, after the index) all converge; atomic_index stays uncut."""
    for app in [*FAILED, *PASSED]:
        name = FAILED[app][0] if app in FAILED else PASSED[app]
        notes = [d["message"] for d in run[0].migration(app, name)["details"]
                 if d["kind"] == "info" and d["message"].startswith(COMMIT_NOTE)]
        assert len(notes) == (1 if app in COMMITS_PART_WAY else 0), (app, notes)


def test_every_initial_migration_is_atomic_and_passes(run):
    for app in [*FAILED, *PASSED]:
        assert run[0].migration(app, "0001_initial")["retry"] == "passed"


def test_junit_has_a_retry_case_per_migration_failing_where_the_retry_fails(run):
    cases = {c.get("classname"): c for c in run[1].findall("testcase") if c.get("name") == "retry"}
    assert len(cases) == 2 * len([*FAILED, *PASSED])
    failing = sorted(name for name, case in cases.items() if case.find("failure") is not None)
    assert failing == sorted(f"{app}.{name}" for app, (name, _) in FAILED.items())


def test_acknowledged_the_run_passes_and_off_it_is_not_checked(run_tool):
    acknowledged = run_tool("retry_project", "--app", "plain_concurrently",
                            "--allow-unsafe-retry", "plain_concurrently.0002_event_happened_idx")
    assert acknowledged.returncode == 0, acknowledged.context()
    migration = acknowledged.migration("plain_concurrently", "0002_event_happened_idx")
    assert (migration["retry"], migration["retry_acknowledged"]) == ("failed", True)
    off = run_tool("retry_project", "--app", "plain_concurrently", "--no-retry")
    assert off.returncode == 0, off.context()
    assert {m["retry"] for m in off.app("plain_concurrently")} == {"not_checked"}
