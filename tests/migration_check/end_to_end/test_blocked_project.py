"""End to end: migrations behind one that cannot be rolled back keep every verdict of their own
test (blocked_project; each case shown with plain manage.py in test_defects_fixtures_blocked.py).

Before: an older migration behind an irreversible one or a failed rollback was `rollback:
blocked` with apply not_run and schema/data/compat not_checked, its problems nowhere; and with
`--allow-irreversible shop.0004_backfill_status` the run said OK although 0002 and 0003 break the
previous release. Now a blocked migration has `blocked_by` (the nearest newer migration that
cannot be rolled back), `rollback_alone` (its own rollback on a database that never applied it)
and its own apply/compat/data/... verdicts, which count like any other.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.migration_check.conftest import ToolRun, assert_cleaned_up

pytestmark = pytest.mark.slow

ACKNOWLEDGE = ["--allow-irreversible", "shop.0004_backfill_status",
               "--allow-irreversible", "shop_twin.0004_backfill_status"]
FIELDS = ("apply", "rollback", "blocked_by", "rollback_alone", "reapply", "schema", "data", "compat")
ROUND_TRIP = ("passed", "identical", "preserved")  # reapply, schema, data
NOT_ROLLED_BACK = ("not_run", "not_checked", "not_checked")

# migration -> (apply, rollback, blocked_by, rollback_alone, reapply, schema, data, compat)
EXPECTED = {
    "ledger": {
        "0007_entry_note": ("passed", "passed", None, "passed", *ROUND_TRIP, "compatible"),
        "0006_fill_memo": ("passed", "irreversible", None, "irreversible", *NOT_ROLLED_BACK, "compatible"),
        "0005_entry_memo_idx": ("passed", "blocked", "0006_fill_memo", "failed", *NOT_ROLLED_BACK, "compatible"),
        "0004_entry_status": ("passed", "blocked", "0005_entry_memo_idx", "passed", *ROUND_TRIP, "breaks_old_code"),
        "0003_alter_entry_qty": ("passed", "blocked", "0005_entry_memo_idx", "passed", *ROUND_TRIP, "compatible"),
        "0002_alter_entry_payload": ("failed", "blocked", "0005_entry_memo_idx", "passed", "passed", "identical",
                                     "not_checked", "not_checked"),
        "0001_initial": ("passed", "blocked", "0005_entry_memo_idx", "passed", *ROUND_TRIP, "compatible"),
    },
    "shop": {
        "0004_backfill_status": ("passed", "irreversible", None, "irreversible", *NOT_ROLLED_BACK, "compatible"),
        "0003_rename_order_customer_buyer": ("passed", "blocked", "0004_backfill_status", "passed", *ROUND_TRIP,
                                             "breaks_old_code"),
        "0002_order_status": ("passed", "blocked", "0004_backfill_status", "passed", *ROUND_TRIP, "breaks_old_code"),
        "0001_initial": ("passed", "blocked", "0004_backfill_status", "passed", *ROUND_TRIP, "compatible"),
    },
    "shop_twin": {
        "0004_backfill_status": ("passed", "irreversible", None, "irreversible", *NOT_ROLLED_BACK, "compatible"),
        "0003_order_buyer": ("passed", "blocked", "0004_backfill_status", "passed", *ROUND_TRIP, "compatible"),
        "0002_order_status": ("passed", "blocked", "0004_backfill_status", "passed", *ROUND_TRIP, "compatible"),
        "0001_initial": ("passed", "blocked", "0004_backfill_status", "passed", *ROUND_TRIP, "compatible"),
    },
}
FAILING = {"ledger.0006_fill_memo", "ledger.0005_entry_memo_idx", "ledger.0004_entry_status",
           "ledger.0002_alter_entry_payload", "shop.0003_rename_order_customer_buyer", "shop.0002_order_status"}


@pytest.fixture(scope="module")
def summary_path(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("blocked-github") / "step_summary.md"


@pytest.fixture(scope="module")
def run(run_tool, summary_path) -> ToolRun:
    """The whole window of every app, as a superuser (rewrites observed), on GitHub Actions."""
    return run_tool("blocked_project", "--depth", "all", *ACKNOWLEDGE, superuser=True,
                    env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_path)})


@pytest.fixture(scope="module")
def shop_only(run_tool) -> ToolRun:
    return run_tool("blocked_project", "--app", "shop", "--allow-irreversible", "shop.0004_backfill_status")


@pytest.fixture(scope="module")
def twin_only(run_tool) -> ToolRun:
    return run_tool("blocked_project", "--app", "shop_twin", "--allow-irreversible", "shop_twin.0004_backfill_status")


def junit_of(run: ToolRun) -> ElementTree.Element:
    path = next(Path(arg) for arg, previous in zip(run.argv[1:], run.argv, strict=False) if previous == "--junit-xml")
    return ElementTree.parse(path).getroot()


@pytest.mark.parametrize(("app", "name"), [(app, name) for app, names in EXPECTED.items() for name in names])
def test_every_migration_gets_the_verdicts_of_its_own_test(run, app, name):
    migration = run.migration(app, name)
    assert tuple(migration[key] for key in FIELDS) == EXPECTED[app][name], (
        f"{app}.{name}\n--- fields\n{FIELDS}\n--- error\n{migration['error']}\n--- details\n{migration['details']}")


def test_the_window_is_newest_first_and_the_run_fails(run):
    assert run.returncode == 1, run.context()
    assert run.require_report()["ok"] is False
    for app, names in EXPECTED.items():
        assert [m["name"] for m in run.app(app)] == list(names)
    assert_cleaned_up(run)


def test_a_blocked_migration_keeps_its_observed_rewrite(run):
    migration = run.migration("ledger", "0003_alter_entry_qty")
    assert migration["rewrites"] == ["ledger_entry"], migration
    assert "table-rewrite" in [hazard["rule"] for hazard in migration["hazards"]]


def test_a_blocked_migration_keeps_its_apply_error_and_its_own_rollback_error(run):
    applied = run.migration("ledger", "0002_alter_entry_payload")
    assert "invalid input syntax for type json" in applied["error"], applied
    rolled_back = run.migration("ledger", "0005_entry_memo_idx")
    assert 'index "ledger_entry_memo_ix" does not exist' in rolled_back["error"], rolled_back


def test_the_irreversible_migration_keeps_its_own_verdicts_and_names_the_next_step(run):
    migration = run.migration("ledger", "0006_fill_memo")
    assert "RunPython" in migration["error"] and migration["acknowledged"] is False
    assert isinstance(migration["statements"], list)  # observed while applying it
    line = next(line for line in run.stdout.splitlines() if line.startswith("  - ledger.0006_fill_memo: "))
    assert "reverse_code=" in line and "RunPython.noop" in line and "--allow-irreversible ledger.0006_fill_memo" in line
    assert "# test_migrations: allow-irreversible" in line


def test_failed_list_names_every_problem_of_the_blocked_migrations(run):
    lines = run.stdout.splitlines()
    start = lines.index("FAILED: 6 problem(s)")
    named = {line[4:].split(": ", 1)[0] for line in lines[start + 1:start + 7]}
    assert named == FAILING, run.context()
    assert ("  - ledger.0002_alter_entry_payload: apply failed (its rollback is also blocked by "
            "0005_entry_memo_idx): applying 0002_alter_entry_payload over pre-release data failed") in run.stdout


def test_closing_lines_name_what_was_not_fully_tested(run):
    assert "15 migration(s), 10 with every verdict" in run.stdout.splitlines(), run.context()
    untested = next(line for line in run.stdout.splitlines() if "not fully tested" in line)
    assert untested.startswith("5 migration(s) not fully tested: ")
    # an apply that failed over pre-release rows leaves nothing for the data, compat and retry proofs
    for part in ("ledger.0002_alter_entry_payload (apply failed over pre-release rows: data, compat, retry not "
                 "checked)",
                 "ledger.0005_entry_memo_idx (rollback failed: re-apply, schema, data not checked)",
                 "ledger.0006_fill_memo (irreversible: re-apply, schema, data not checked)"):
        assert part in untested


def test_junit_has_a_failing_apply_case_and_blocked_rollback_cases(run):
    cases = {(case.get("classname"), case.get("name")): case for case in junit_of(run).findall("testcase")}
    apply = cases[("ledger.0002_alter_entry_payload", "apply")].find("failure")
    assert apply is not None and "invalid input syntax for type json" in apply.text
    assert cases[("ledger.0005_entry_memo_idx", "rollback")].find("failure") is not None  # its own rollback failed
    skipped = cases[("ledger.0004_entry_status", "rollback")].find("skipped")
    assert skipped is not None and skipped.get("message").startswith("blocked by 0005_entry_memo_idx")
    assert cases[("ledger.0004_entry_status", "compat")].find("failure") is not None
    failing = {case.get("classname") for case in cases.values() if case.find("failure") is not None}
    assert failing == FAILING


def test_github_summary_has_an_apply_column_and_annotations_name_the_same_migrations(run, summary_path):
    summary = summary_path.read_text()
    assert "| migration | apply | rollback | re-apply | schema | data | compat | retry | notes |" in summary
    assert ("| `ledger.0002_alter_entry_payload` | failed | blocked by 0005_entry_memo_idx (alone: passed) |"
            in summary)
    annotated = {line.split("::")[2].split(": ", 1)[0] for line in run.stdout.splitlines()
                 if line.startswith("::error ")}
    assert annotated == FAILING


def test_acknowledging_the_newest_one_leaves_the_older_ones_breaking_old_code(shop_only):
    """Before: exit 0, `OK: all checks passed`, 0002 and 0003 never tested."""
    assert shop_only.returncode == 1, shop_only.context()
    assert shop_only.migration("shop", "0004_backfill_status")["acknowledged"] is True
    for name in ("0003_rename_order_customer_buyer", "0002_order_status"):
        assert shop_only.migration("shop", name)["compat"] == "breaks_old_code"
    assert "FAILED: 2 problem(s)" in shop_only.stdout
    assert_cleaned_up(shop_only)


def test_clean_twin_passes_behind_its_acknowledged_irreversible_migration(twin_only):
    assert twin_only.returncode == 0, twin_only.context()
    lines = twin_only.stdout.splitlines()
    assert any(line.startswith("OK: all checks passed: 4 migration(s), 3 with every verdict") for line in lines)
    assert ("1 migration(s) not fully tested: shop_twin.0004_backfill_status (irreversible: re-apply, schema, data "
            "not checked)") in lines
    assert [m["rollback"] for m in twin_only.app("shop_twin")] == ["irreversible", "blocked", "blocked", "blocked"]
    assert_cleaned_up(twin_only)
