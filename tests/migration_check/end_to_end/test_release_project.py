"""End to end: a release made of a data migration and the migration that relies on it
(release_project; shown by hand in fixture_sanity/test_release_project.py).

Found on django-oscar (order.0017/0018), wagtail (wagtailcore.0086/0087) and oscar's basket
(0010/0011) in docs/survey-4.md: the tool seeded each migration's pre-release rows at its own
state, so the migration after a data migration was applied over values that data migration fixes
in any deploy of the release, and failed (a false alarm). With --since the window is the release:
the rows are seeded before its first migration and carried through it.

The fixture's git history is made here: `v1` holds each app's 0001, `v2` adds orders 0002-0003
and codes 0002, `v3` the rest. Expected:
- `--since v1` (one release): every apply passes, data preserved, no unique-over-duplicates; the
  rows' path is said; orders.0004 still breaks the code before the release (true, shown by hand;
  accepted with --allow-breaking so the run's exit is 0).
  tags.0003 is `compatible` with the code before the release (which knows no `colour`), not with
  the models just before it (which write NULL), and its NULLs in the column the release created
  are no pre-release data: `preserved`.
- `--since v2` (0004 and codes.0003 a release later): orders.0004 `apply: failed`, codes.0003
  `unique-over-duplicates`, tags.0003 `breaks_old_code` and `data: lost`, exit 1, as plain
  migrate and SQL show.
- `--depth 3` (no releases known): the same failures, and the apply failure names the data
  migration just before it and --since.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.migration_check.conftest import PASSED, ToolRun, assert_cleaned_up, commit_all, git

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PROJECT = "release_project"
LATER = {  # files each tag adds
    "v2": ["orders/migrations/0002_order_reference.py", "orders/migrations/0003_fill_reference.py",
           "codes/migrations/0002_rename_duplicates.py", "tags/migrations/0002_tag_colour.py"],
    "v3": ["orders/migrations/0004_reference_required.py", "codes/migrations/0003_name_unique.py",
           "tags/migrations/0003_colour_required.py"],
}


@pytest.fixture(scope="module")
def manage(tmp_path_factory) -> Path:
    """The fixture in a git repository of its own, committed tag by tag."""
    root = tmp_path_factory.mktemp("release")
    for name in ("fixture_manage.py", "fixture_settings_base.py"):
        shutil.copy(FIXTURES / name, root / name)
    project = root / PROJECT
    shutil.copytree(FIXTURES / PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    aside = {path: (project / path).read_text() for paths in LATER.values() for path in paths}
    for path in aside:
        (project / path).unlink()
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "v1")
    git(root, "tag", "v1")
    for tag, paths in LATER.items():
        for path in paths:
            (project / path).write_text(aside[path])
        commit_all(root, tag)
        git(root, "tag", tag)
    return project / "manage.py"


@pytest.fixture(scope="module")
def runs(run_tool, manage) -> dict[str, ToolRun]:
    return {
        "one release": run_tool(PROJECT, "--since", "v1", "--allow-breaking", "orders.0004_reference_required",
                                manage=manage),
        "a release later": run_tool(PROJECT, "--since", "v2", manage=manage),
        "releases unknown": run_tool(PROJECT, "--depth", "3", manage=manage),
    }


def unique_over_duplicates(run: ToolRun, app: str, name: str) -> list[dict]:
    hazards = run.migration(app, name)["hazards"]  # "not_checked" where the apply failed
    return [h for h in hazards if h["rule"] == "unique-over-duplicates"] if isinstance(hazards, list) else []


def test_one_release_is_tested_over_the_rows_written_before_it(runs):
    run = runs["one release"]
    assert run.returncode == 0, run.context()
    assert_cleaned_up(run)
    for app, name in [("orders", "0002_order_reference"), ("orders", "0003_fill_reference"),
                      ("orders", "0004_reference_required"), ("codes", "0002_rename_duplicates"),
                      ("codes", "0003_name_unique"), ("tags", "0002_tag_colour"), ("tags", "0003_colour_required")]:
        run.assert_verdicts(app, name, apply="passed", **PASSED)
        assert unique_over_duplicates(run, app, name) == []
    # The retry proof's own databases hold the same rows: seeded at the release's start, carried.
    fourth = run.assert_verdicts("orders", "0004_reference_required", compat="breaks_old_code",
                                 compat_acknowledged=True, retry="passed")
    messages = [d["message"] for d in fourth["details"]]
    assert ("pre-release rows: seeded before 0002_order_reference, the release's first migration of orders "
            "(--since), and carried through 0002_order_reference, 0003_fill_reference by `migrate`, as a deploy "
            "of the release does; orders_order.reference did not exist then: no value written before the release "
            "is there") in messages
    assert ("unique probe of 0004_reference_required: (reference) of orders_order is new in its release (after "
            "0002_order_reference), so no row written before the release repeats it; the migration was applied "
            "over the rows the release's own migrations wrote") in messages


def test_one_release_judges_no_value_written_in_a_column_it_created(runs):
    third = runs["one release"].migration("orders", "0003_fill_reference")
    kinds = {(d["kind"], d["message"].split(":")[0]) for d in third["details"]}
    assert ("info", "orders_order.reference") in kinds, third["details"]  # NULL -> ORD-n, not given back
    assert not [d for d in third["details"] if d["kind"] == "coverage"], third["details"]


def test_the_unique_probe_starts_at_the_release_and_goes_through_its_deduplication(runs):
    run = runs["one release"]
    assert unique_over_duplicates(run, "codes", "0003_name_unique") == [], run.context()
    details = run.migration("codes", "0003_name_unique")["details"]
    assert not [d for d in details if d["message"].startswith("unique probe")], details
    assert unique_over_duplicates(runs["a release later"], "codes", "0003_name_unique"), \
        runs["a release later"].context()  # the same probe, a release later: the names repeat


@pytest.mark.parametrize("name", ["a release later", "releases unknown"])
def test_a_release_later_the_rows_the_schema_admits_fail_it(runs, name):
    run = runs[name]
    assert run.returncode == 1, run.context()
    assert_cleaned_up(run)
    fourth = run.assert_verdicts("orders", "0004_reference_required", apply="failed")
    assert 'column "reference" of relation "orders_order" contains null values' in fourth["error"]
    assert unique_over_duplicates(run, "codes", "0003_name_unique")
    hint = ("if 0003_fill_reference, the data migration just before it, is deployed in the same release, "
            "run with --since")
    assert (hint in fourth["error"]) == (name == "releases unknown"), fourth["error"]


def test_compat_in_a_release_is_with_the_code_before_the_release(runs):
    run = runs["one release"]
    run.assert_verdicts("tags", "0003_colour_required", compat="compatible", compat_direction="old_code_on_new_schema",
                        data="preserved")
    [broken] = [d for d in run.migration("orders", "0004_reference_required")["details"] if d["kind"] == "compat"]
    assert broken["message"].startswith(
        "the previous release's orders.Order (the state before the release, whose first migration of the app is "
        "0002_order_reference) fails on the schema after 0004_reference_required: INSERT orders_order: null value "
        'in column "reference"'), broken["message"]
    assert broken["statement"].startswith('INSERT INTO "orders_order" ("number") VALUES')  # no reference then
    later = runs["a release later"]
    later.assert_verdicts("tags", "0003_colour_required", compat="breaks_old_code", data="lost")
