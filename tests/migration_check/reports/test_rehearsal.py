"""The rehearsal in the console, the GitHub step summary and the hazard order, from hand-made results."""

from __future__ import annotations

import io
import json

from migration_check.log import Log
from migration_check.reports import markdown_summary, print_summary, report_json
from migration_check.reports.junit import junit_xml
from migration_check.reports.merge import result_from_json
from migration_check.reports.problems import failure_lines, hazard_lines, untested_lines
from migration_check.reports.rehearsal import rehearsal_rows
from migration_check.results import AppResult, Hazard, Impact, MigrationResult, RunResult, TrafficStat
from tests.report_schema import assert_report_valid

EXCLUSIVE = "AccessExclusiveLock"


def migration(name: str, table: str, impact: Impact | None, wait: float, problems: list[str] | None = None,
              blocking: str = "within"):
    hazard = Hazard("table-rewrite", table, EXCLUSIVE, "ALTER TABLE", f"{table} was rewritten", "fix it")
    return MigrationResult("shop", name, file=f"shop/migrations/{name}.py", line=1, apply="passed", rollback="passed",
                           reapply="passed", schema="identical", data="preserved", hazards=[hazard],
                           traffic=[TrafficStat(table, "insert", 40, 0, wait, 0.001, 0.001),
                                    TrafficStat(table, "select_by_key", 40, 1, wait / 2, 0.001, 0.001,
                                                "deadlock: deadlock detected")],
                           impact=[impact] if impact else [], blocking=blocking, rehearsal_problems=problems or [])


def result() -> RunResult:
    flat = Impact("shop_a", EXCLUSIVE, ((100, 0.02), (1000, 0.03)), 1_000_000, 0.03, "flat", "catalog only")
    grows = Impact("shop_b", EXCLUSIVE, ((100, 0.5), (1000, 4.0)), 1_000_000, 3900.0, "fitted", "rows written")
    apps = [AppResult("shop", [migration("0003_flat", "shop_a", flat, 0.2),
                               migration("0002_backfill", "shop_b", grows, 3.5, ["blocks writes longer than x"],
                                         "exceeds"),
                               migration("0001_split", "shop_c", None, 0.01)])]
    return RunResult(checks=[], apps=apps, duration_s=1.0, server_version="15.10", ephemeral=True, processes=3)


def test_rows_most_blocking_first():
    rows = rehearsal_rows(result())
    assert [row.cells for row in rows] == [
        ("shop.0002_backfill", "3.5 s (insert shop_b), 1 error(s)", "ACCESS EXCLUSIVE shop_b", "3,900 s",
         "1,000,000", "fitted"),
        ("shop.0003_flat", "0.2 s (insert shop_a), 1 error(s)", "ACCESS EXCLUSIVE shop_a", "0.03 s", "1,000,000",
         "flat"),
        ("shop.0001_split", "0.01 s (insert shop_c), 1 error(s)", "-", "-", "-", "no write-blocking lock"),
    ]


def test_console_and_step_summary_show_the_table():
    stream = io.StringIO()
    print_summary(result(), Log(1, stream))
    out = stream.getvalue()
    assert "deploy rehearsal (the previous release's queries while each migration applied" in out
    lines = out.splitlines()
    first = lines.index(next(line for line in lines if line.startswith("deploy rehearsal"))) + 1
    assert lines[first].split()[:3] == ["migration", "longest", "wait"]
    assert lines[first + 1].startswith("  shop.0002_backfill")
    markdown = markdown_summary(result())
    assert "### Deploy rehearsal" in markdown
    assert "| shop.0002_backfill | 3.5 s (insert shop_b), 1 error(s) | ACCESS EXCLUSIVE shop_b |" in markdown


def test_hazards_by_estimated_blocking_and_the_budget_fails():
    run = result()
    assert [message.split(":")[0] for _, _, message in hazard_lines(run)] == \
        ["shop.0002_backfill", "shop.0003_flat", "shop.0001_split"]
    assert not run.ok
    assert [message for _, _, message in failure_lines(run)] == [
        "shop.0002_backfill: blocks writes longer than x [max-blocking-exceeded: docs/rules/max-blocking-exceeded.md]"]
    failed = [(case.get("classname"), case.get("name")) for case in junit_xml(run).getroot().findall("testcase")
              if case.find("failure") is not None]
    assert failed == [("shop.0002_backfill", "blocking")]
    cases = {(case.get("classname"), case.get("name")): case for case in junit_xml(run).getroot().findall("testcase")}
    assert cases["shop.0002_backfill", "blocking"].find("failure").text.startswith(
        "blocks writes longer than --max-blocking\nblocks writes longer than x\nNext: hold no write-blocking lock")
    assert len(cases["shop.0003_flat", "blocking"]) == 0  # passed: no failure, no skip


def test_the_verdict_table_decides_not_the_problem_lines():
    """`blocking` fails the run, whatever rehearsal_problems hold: without --max-blocking (off)
    nothing is judged; not_checked is "not fully tested", and does not fail."""
    run = result()
    backfill = run.apps[0].migrations[1]
    backfill.blocking = "off"
    assert run.ok and failure_lines(run) == []
    assert "blocking" not in {case.get("name") for case in junit_xml(run).getroot().findall("testcase")
                              if case.get("classname") == "shop.0002_backfill"}
    backfill.blocking = "not_checked"
    assert run.ok
    untested = "shop.0002_backfill (turned off or not applicable: compat, retry, blocking not checked)"
    assert untested in untested_lines(run)
    backfill.blocking, backfill.rehearsal_problems = "exceeds", []
    assert not run.ok
    assert [message for _, _, message in failure_lines(run)] == [
        "shop.0002_backfill: blocks writes longer than --max-blocking "
        "[max-blocking-exceeded: docs/rules/max-blocking-exceeded.md]"]


def test_a_failing_chain_verdict_and_the_budget_are_two_lines():
    run = result()
    backfill = run.apps[0].migrations[1]
    backfill.data = "lost"
    assert [message.split(" [")[0] for _, _, message in failure_lines(run)] == [
        "shop.0002_backfill: data lost. Next: make the reverse restore the values, or, when losing them on rollback "
        "is intended (a removed field or model), accept it: --allow-data-loss shop.0002_backfill, or the comment "
        "`# test_migrations: allow-data-loss` in the migration file",
        "shop.0002_backfill: blocks writes longer than x"]


def test_the_report_with_rehearsal_fields_is_valid():
    report = report_json(result())
    assert_report_valid(report)
    backfill = report["apps"][0]["migrations"][1]
    assert backfill["impact"][0]["measured"] == [[100, 0.5], [1000, 4.0]]
    assert backfill["rehearsal_problems"] == ["blocks writes longer than x"]
    assert [m["blocking"] for m in report["apps"][0]["migrations"]] == ["within", "exceeds", "within"]


def test_merged_reports_keep_the_rehearsal():
    """--merge-reports reads the shards' JSON back: the figures and the budget's failures survive."""
    run = result()
    back = result_from_json(json.loads(json.dumps(report_json(run))), None)
    for before, after in zip(run.apps[0].migrations, back.apps[0].migrations, strict=True):
        assert (after.traffic, after.impact, after.blocking, after.rehearsal_problems) == \
            (before.traffic, before.impact, before.blocking, before.rehearsal_problems)
    assert not back.ok and rehearsal_rows(back) == rehearsal_rows(run)


def test_a_merged_report_from_before_the_blocking_verdict_still_fails():
    """A shard's report written before `blocking` existed failed on its rehearsal_problems: merged, it still does."""
    report = report_json(result())
    for m in report["apps"][0]["migrations"]:
        del m["blocking"]
    back = result_from_json(report, None)
    assert [m.blocking for m in back.apps[0].migrations] == ["off", "exceeds", "off"]
    assert not back.ok
