"""Reports built from hand-made RunResult objects: JSON, JUnit XML, GitHub annotations, Markdown."""

from __future__ import annotations

import io
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from migration_check.cli import build_parser, config_from_args
from migration_check.log import Log
from migration_check.reports import (
    github_annotations,
    junit_xml,
    markdown_summary,
    print_summary,
    report_json,
    write_reports,
)
from migration_check.reports.problems import failure_lines, migration_lines
from migration_check.results import AppResult, CheckResult, Finding, MigrationResult, RunResult

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def failing():
    """One failed check, one migration with a schema trace, one irreversible one blocking an older one."""
    checks = [CheckResult("forward", "passed", 1.5), CheckResult("check_deploy", "failed", 0.5,
                                                                           "SystemCheckError: x | y"),
              CheckResult("missing_migrations", "skipped", 0.0, "forward migration failed")]
    trace = MigrationResult("shop", "0003_index", file="shop/migrations/0003_index.py", line=9,
                            apply="passed", retry="passed",
                                 rollback="passed", reapply="passed", schema="differs", data="preserved",
                                 details=[Finding("schema", "index shop_idx still exists after rolling back "
                                                                 "0003_index", {"object": "index shop_idx"}),
                                          Finding("info", "table shop_x was created by 0003_index")],
                                 durations={"rollback": 0.4, "reapply": 0.6})
    irreversible = MigrationResult("shop", "0002_fill", file="shop/migrations/0002_fill.py", line=12,
                            apply="passed", retry="passed",
                                   rollback="irreversible", compat="compatible",
                                        error="RunPython (Raw Python operation) has no reverse operation,\n"
                                              "at shop/migrations/0002_fill.py:12 | 100% sure")
    blocked = MigrationResult("shop", "0001_initial", file="shop/migrations/0001_initial.py", line=1,
                            apply="passed", retry="passed",
                              rollback="blocked", blocked_by="0002_fill", rollback_alone="passed", reapply="passed",
                              schema="identical", data="preserved", compat="compatible")
    apps = [AppResult("shop", [trace, irreversible, blocked])]
    return RunResult(checks=checks, apps=apps, duration_s=12.345, server_version="15.10 (Debian 15.10-1)",
                     ephemeral=True, processes=17, skipped_apps=["auth (Django contrib: /x)"])


@pytest.fixture
def passing():
    checks = [CheckResult(name, "passed", 1.0) for name in ("forward", "check_deploy", "missing_migrations")]
    migration = MigrationResult("shop", "0002_x", file="shop/migrations/0002_x.py", line=8,
                            apply="passed", retry="passed",
                                     rollback="passed", reapply="passed", schema="identical", data="preserved",
                                     durations={"rollback": 0.5, "reapply": 0.25}, compat="compatible",
                                     compat_direction="old_code_on_new_schema")
    acknowledged = MigrationResult("shop", "0001_initial", file="shop/migrations/0001_initial.py", line=3,
                                        apply="passed", retry="passed",
                                        rollback="passed", reapply="passed", schema="identical", data="lost",
                                        acknowledged=True, compat="breaks_old_code",
                                        compat_direction="old_code_on_new_schema", compat_acknowledged=True,
                                        details=[Finding("data_lost", "column shop_item.legacy: 3 row(s)"),
                                                 Finding("compat", "the previous release's shop.Item fails")])
    return RunResult(checks=checks, apps=[AppResult("shop", [migration, acknowledged])], duration_s=3.0,
                     server_version="15.10", ephemeral=False, processes=9)


def test_ok_and_problems(failing, passing):
    assert passing.ok is True
    assert failing.ok is False
    trace, irreversible, blocked = failing.apps[0].migrations
    assert trace.problems == ["schema differs"]
    assert irreversible.problems == ["rollback irreversible"]
    assert blocked.problems == []
    assert passing.apps[0].migrations[1].problems == []  # acknowledged loss
    assert MigrationResult("a", "m", file=None).problems == ["rollback not_run"]


def test_report_json(failing):
    report = report_json(failing)
    assert json.loads(json.dumps(report)) == report
    assert report["schema"] == 1 and report["ok"] is False and report["duration_s"] == 12.35
    assert report["database"] == {"vendor": "postgresql", "server_version": "15.10 (Debian 15.10-1)",
                                  "ephemeral": True}
    assert report["checks"][1] == {"name": "check_deploy", "status": "failed", "duration_s": 0.5,
                                   "detail": "SystemCheckError: x | y"}
    assert report["skipped_apps"] == ["auth (Django contrib: /x)"] and report["processes"] == 17
    (app,) = report["apps"]
    assert app["app"] == "shop" and app["error"] is None
    assert [m["name"] for m in app["migrations"]] == ["0003_index", "0002_fill", "0001_initial"]
    assert app["migrations"][0] == {
        "name": "0003_index", "file": "shop/migrations/0003_index.py", "line": 9, "apply": "passed",
        "rollback": "passed", "blocked_by": None, "rollback_alone": "passed",
        "reapply": "passed", "schema": "differs", "data": "preserved", "acknowledged": False,
        "error": None, "details": [
            {"kind": "schema", "message": "index shop_idx still exists after rolling back 0003_index",
             "object": "index shop_idx"},
            {"kind": "info", "message": "table shop_x was created by 0003_index"}],
        "duration_s": {"rollback": 0.4, "reapply": 0.6},
        "compat": "not_checked", "compat_direction": None, "compat_acknowledged": False,
        "retry": "passed", "retry_acknowledged": False,
        "rewrites": "not_checked", "locks": "not_checked", "statements": "not_checked", "hazards": "not_checked",
        "lock_holds": [], "traffic": [], "impact": [], "blocking": "off", "rehearsal_problems": [],
        "data_fingerprints": {}, "not_reached": False}
    assert report["fault"] is None
    assert report["observation"] == {"status": "off", "reason": None, "squawk": None, "volume": None,
                                     "fail_on_hazards": False}
    assert report["hazards"] == []
    assert app["migrations"][2]["duration_s"] == {"rollback": None, "reapply": None}
    assert (app["migrations"][2]["rollback"], app["migrations"][2]["blocked_by"],
            app["migrations"][2]["rollback_alone"]) == ("blocked", "0002_fill", "passed")


def test_junit_xml_is_well_formed_with_counts(failing):
    buffer = io.BytesIO()
    junit_xml(failing).write(buffer, encoding="utf-8", xml_declaration=True)
    root = ElementTree.fromstring(buffer.getvalue())
    assert root.tag == "testsuite"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("24", "3", "0", "6")
    # a case per check (3) and per migration step (3 x 7)
    cases = root.findall("testcase")
    assert len(cases) == 24  # 3 checks + 3 migrations x (apply, rollback, reapply, schema, data, compat, retry)
    outcome = {(c.get("classname"), c.get("name")): ("failure" if c.find("failure") is not None else
                                                     "skipped" if c.find("skipped") is not None else "passed")
               for c in cases}
    assert outcome == {
        ("checks", "forward"): "passed", ("checks", "check_deploy"): "failure",
        ("checks", "missing_migrations"): "skipped",
        ("shop.0003_index", "apply"): "passed",
        ("shop.0003_index", "rollback"): "passed", ("shop.0003_index", "reapply"): "passed",
        ("shop.0003_index", "schema"): "failure", ("shop.0003_index", "data"): "passed",
        ("shop.0003_index", "compat"): "skipped", ("shop.0003_index", "retry"): "passed",
        ("shop.0002_fill", "apply"): "passed",
        ("shop.0002_fill", "rollback"): "failure", ("shop.0002_fill", "reapply"): "skipped",
        ("shop.0002_fill", "schema"): "skipped", ("shop.0002_fill", "data"): "skipped",
        ("shop.0002_fill", "compat"): "passed", ("shop.0002_fill", "retry"): "passed",
        ("shop.0001_initial", "apply"): "passed",
        ("shop.0001_initial", "rollback"): "skipped", ("shop.0001_initial", "reapply"): "passed",
        ("shop.0001_initial", "schema"): "passed", ("shop.0001_initial", "data"): "passed",
        ("shop.0001_initial", "compat"): "passed", ("shop.0001_initial", "retry"): "passed",
    }
    schema_failure = next(c for c in cases if c.get("classname") == "shop.0003_index" and c.get("name") == "schema")
    assert schema_failure.find("failure").text == ("schema differs\n"
                                                   "index shop_idx still exists after rolling back 0003_index")
    assert next(c for c in cases if c.get("name") == "rollback").get("time") == "0.40"
    blocked = next(c for c in cases if c.get("classname") == "shop.0001_initial" and c.get("name") == "rollback")
    assert blocked.find("skipped").get("message").startswith("blocked by 0002_fill: its own rollback passed")


def test_junit_app_error_is_a_failing_case(passing):
    passing.apps[0].error = "restoring the full state failed"
    root = junit_xml(passing).getroot()
    assert root.get("tests") == "18" and root.get("failures") == "1"
    assert root.find("testcase[@name='app']/failure").get("message") == "restoring the full state failed"


def test_junit_acknowledged_loss_passes(passing):
    root = junit_xml(passing).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("17", "0", "0")
    data = root.find("testcase[@classname='shop.0001_initial'][@name='data']")
    assert data.find("system-out").text == "acknowledged: data lost\ncolumn shop_item.legacy: 3 row(s)"


def test_compat_breaking_fails_unless_acknowledged(passing):
    _, acknowledged = passing.apps[0].migrations
    assert acknowledged.problems == []
    acknowledged.compat_acknowledged = False
    assert acknowledged.problems == ["breaks old code"]
    assert passing.ok is False
    root = junit_xml(passing).getroot()
    failure = root.find("testcase[@classname='shop.0001_initial'][@name='compat']/failure")
    assert failure is not None and failure.text.startswith("breaks old code\nthe previous release's shop.Item fails"
                                                           "\nNext: use the safe pattern the finding names, or "
                                                           "accept it on purpose: --allow-breaking shop.0001_initial")
    # the acknowledged data loss is not what the annotation explains: the compat finding is
    assert github_annotations(passing) == [
        "::error file=shop/migrations/0001_initial.py,line=3,title=Migration test::shop.0001_initial: "
        "breaks old code: the previous release's shop.Item fails. Next: use the safe pattern the finding names, "
        "or accept it on purpose: --allow-breaking shop.0001_initial, or the comment "
        "`# test_migrations: allow-breaking-change` [breaks-old-code: docs/rules/breaks-old-code.md]"]
    acknowledged.compat_direction = "new_code_on_old_schema"
    assert acknowledged.problems == ["breaks the new code (post-deploy)"]


def test_a_failed_step_and_a_finding_share_the_line_with_one_full_stop_each():
    """survey 4 (wagtailembeds.0008): "rollback failed, breaks old code: ... is duplicated.. Next:
    use the safe pattern the finding names" without the finding."""
    migration = MigrationResult("shop", "0002_x", file="shop/migrations/0002_x.py", line=8, apply="passed",
                                rollback="failed", reapply="not_run", schema="not_checked", data="not_checked",
                                compat="breaks_old_code", compat_direction="old_code_on_new_schema",
                                error="IntegrityError: Key (url)=(x) is duplicated.")
    migration.details.append(Finding("compat", "the previous release's shop.Item fails: INSERT ... (null value)",
                                     {"model": "shop.Item"}, "breaks-old-code"))
    (line,) = [text for _, _, text in migration_lines(migration)]
    assert line.startswith("shop.0002_x: rollback failed, breaks old code: IntegrityError: Key (url)=(x) is "
                           "duplicated; the previous release's shop.Item fails: INSERT ... (null value). Next: "), line
    assert ".. Next" not in line and "duplicated." not in line


def test_compat_fields_in_json(passing):
    migrations = report_json(passing)["apps"][0]["migrations"]
    assert [(m["compat"], m["compat_direction"], m["compat_acknowledged"]) for m in migrations] == [
        ("compatible", "old_code_on_new_schema", False), ("breaks_old_code", "old_code_on_new_schema", True)]
    assert migrations[1]["details"][1] == {"kind": "compat", "message": "the previous release's shop.Item fails"}


def test_github_annotations_escape_newlines_and_percent(failing):
    annotations = github_annotations(failing)
    assert annotations == [
        "::error title=Migration test::check_deploy failed: SystemCheckError: x | y "
        "[check-deploy: docs/rules/check-deploy.md]",
        "::error file=shop/migrations/0003_index.py,line=9,title=Migration test::shop.0003_index: schema differs: "
        "index shop_idx still exists after rolling back 0003_index [schema-differs: docs/rules/schema-differs.md]",
        "::error file=shop/migrations/0002_fill.py,line=12,title=Migration test::shop.0002_fill: rollback "
        "irreversible: RunPython (Raw Python operation) has no reverse operation,%0Aat "
        "shop/migrations/0002_fill.py:12 | 100%25 sure. Next: give the operation a reverse (RunPython(..., "
        "reverse_code=...), RunSQL(..., reverse_sql=...)); RunPython.noop is a reverse that does nothing: the "
        "rollback then passes, and the data proof reports as data lost whatever the forward changed that the "
        "reverse does not restore. Or accept it on purpose: --allow-irreversible shop.0002_fill, or the comment "
        "`# test_migrations: allow-irreversible` in the migration file [irreversible: docs/rules/irreversible.md]",
    ]
    assert all("\n" not in a for a in annotations)


def test_github_annotations_are_capped_at_10():
    migrations = [MigrationResult("shop", f"{i:04d}_m", file=f"shop/migrations/{i:04d}_m.py", line=None,
                                       rollback="failed", error=f"boom {i}") for i in range(1, 16)]
    result = RunResult(checks=[], apps=[AppResult("shop", migrations)], duration_s=1.0, server_version="15.10",
                       ephemeral=False, processes=1)
    annotations = github_annotations(result)
    assert len(annotations) == 10
    assert annotations[0] == ("::error file=shop/migrations/0001_m.py,line=1,title=Migration test::"
                              "shop.0001_m: rollback failed: boom 1 [rollback-failed: docs/rules/rollback-failed.md]")
    assert len(failure_lines(result)) == 15


def test_no_annotations_when_passing(passing):
    assert github_annotations(passing) == []


def test_markdown_summary(failing, passing):
    text = markdown_summary(failing)
    lines = text.splitlines()
    assert lines[0] == "## Migration tests FAILED"
    assert lines[2] == "PostgreSQL 15.10, 12.3s, 17 manage.py processes"
    assert "| check_deploy | failed | SystemCheckError: x / y |" in lines
    assert ("| `shop.0003_index` | passed | passed | passed | differs | preserved | not_checked | passed | "
            "index shop_idx still "
            "exists after rolling back 0003_index |") in lines
    assert "table shop_x was created" not in text  # info stays out
    assert text.endswith("\n")
    ok = markdown_summary(passing)
    assert ok.startswith("## Migration tests passed\n")
    assert "| `shop.0001_initial` | passed | blocked by 0002_fill (alone: passed) | passed | identical | " \
        "preserved | compatible | passed |  |" in lines
    assert ("2 migration(s) not fully tested: shop.0003_index (turned off or not applicable: compat not checked), "
            "shop.0002_fill (irreversible: re-apply, schema, data not checked)") in lines
    assert ("| `shop.0001_initial` | passed | passed (acknowledged) | passed | identical | lost | breaks_old_code "
            "(acknowledged) | passed | column shop_item.legacy: 3 row(s); the previous release's shop.Item fails |"
            ) in ok.splitlines()


def test_console_summary(failing):
    stream = io.StringIO()
    print_summary(failing, Log(1, stream))
    out = stream.getvalue().splitlines()
    assert out[1].split() == ["migration", "apply", "rollback", "re-apply", "schema", "data", "compat", "retry",
                            "time"]
    assert out[2].split() == ["shop.0003_index", "passed", "passed", "passed", "differs", "preserved", "not_checked",
                              "passed", "1.0s"]
    assert out[4].split()[:4] == ["shop.0001_initial", "passed", "blocked", "(alone:"]
    assert out[-8:-4] == [
        "", "FAILED: 3 problem(s)",
        "  - check_deploy failed: SystemCheckError: x | y [check-deploy: docs/rules/check-deploy.md]",
        "  - shop.0003_index: schema differs: index shop_idx still exists after rolling back 0003_index "
        "[schema-differs: docs/rules/schema-differs.md]"]
    assert out[-3].startswith("at shop/migrations/0002_fill.py:12 | 100% sure. Next: give the operation a reverse")
    assert out[-3].endswith("[irreversible: docs/rules/irreversible.md]")
    assert out[-2:] == ["3 migration(s), 1 with every verdict",
                        "2 migration(s) not fully tested: shop.0003_index (turned off or not applicable: compat not "
                        "checked), shop.0002_fill (irreversible: re-apply, schema, data not checked)"]


def test_console_marks_acknowledged_compat(passing):
    stream = io.StringIO()
    print_summary(passing, Log(1, stream))
    out = stream.getvalue().splitlines()
    assert out[3].split() == ["shop.0001_initial", "passed", "passed", "passed", "identical", "lost*",
                              "breaks_old_code*", "passed", "-"]
    assert "(* acknowledged on purpose)" in out


def test_write_reports_on_github(failing, tmp_path, capsys):
    config = config_from_args(build_parser().parse_args(
        ["--manage", str(REPO_ROOT / "manage.py"), "--report-json", str(tmp_path / "r" / "report.json"),
         "--junit-xml", str(tmp_path / "j" / "junit.xml")]))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    log = Log(1, io.StringIO())
    failing.checks[1].detail = "could not connect to postgres://u:Sekr1tPw@h/db (password=Sekr1tPw dbname=x)"
    write_reports(failing, config, log, {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    printed = capsys.readouterr().out
    assert printed.count("::error") == 3
    assert "Sekr1tPw" not in printed and "postgres://u:***@h/db (password=*** dbname=x)" in printed
    assert "Sekr1tPw" not in summary.read_text()
    assert summary.read_text().startswith("earlier step\n## Migration tests FAILED\n")
    assert "Sekr1tPw" not in summary.read_text()
    assert json.loads((tmp_path / "r" / "report.json").read_text())["ok"] is False
    assert ElementTree.parse(tmp_path / "j" / "junit.xml").getroot().get("tests") == "24"


def test_console_summary_names_what_the_data_proof_did_not_cover(passing):
    """Each gap once per app, with the migrations whose "preserved" it concerns."""
    gap = "column shop_item.period: not covered, the seeder has no value for its type pair"
    for migration in passing.apps[0].migrations:
        migration.details.append(Finding("coverage", gap, {"table": "shop_item", "column": "period"}))
    stream = io.StringIO()
    print_summary(passing, Log(1, stream))
    out = stream.getvalue().splitlines()
    assert ("Not covered by the data proof (1): a 'preserved' says nothing about these "
            "[data-not-covered: docs/rules/data-not-covered.md]") in out
    assert f"  - shop: {gap} (0001_initial, 0002_x)" in out
    assert report_json(passing)["apps"][0]["migrations"][0]["details"][-1] == {
        "kind": "coverage", "message": gap, "table": "shop_item", "column": "period"}


def test_console_summary_without_gaps_says_nothing_about_coverage(failing):
    stream = io.StringIO()
    print_summary(failing, Log(1, stream))
    assert "Not covered" not in stream.getvalue()
