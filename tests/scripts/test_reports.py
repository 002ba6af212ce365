"""Reports built from hand-made RunResult objects: JSON, JUnit XML, GitHub annotations, Markdown."""

from __future__ import annotations

import io
import json
from xml.etree import ElementTree

import pytest


@pytest.fixture
def failing(tool):
    """One failed check, one migration with a schema trace, one irreversible one blocking an older one."""
    checks = [tool.CheckResult("forward", "passed", 1.5), tool.CheckResult("check_deploy", "failed", 0.5,
                                                                           "SystemCheckError: x | y"),
              tool.CheckResult("missing_migrations", "skipped", 0.0, "forward migration failed")]
    trace = tool.MigrationResult("shop", "0003_index", "shop/migrations/0003_index.py", 9, apply="passed",
                                 rollback="passed", reapply="passed", schema="differs", data="preserved",
                                 details=[tool.Finding("schema", "index shop_idx still exists after rolling back "
                                                                 "0003_index", {"object": "index shop_idx"}),
                                          tool.Finding("info", "table shop_x was created by 0003_index")],
                                 durations={"rollback": 0.4, "reapply": 0.6})
    irreversible = tool.MigrationResult("shop", "0002_fill", "shop/migrations/0002_fill.py", 12,
                                        rollback="irreversible",
                                        error="RunPython (Raw Python operation) has no reverse operation,\n"
                                              "at shop/migrations/0002_fill.py:12 | 100% sure")
    blocked = tool.MigrationResult("shop", "0001_initial", "shop/migrations/0001_initial.py", 1, rollback="blocked",
                                   error="not reached: 0002_fill cannot be rolled back")
    apps = [tool.AppResult("shop", [trace, irreversible, blocked])]
    return tool.RunResult(checks, apps, 12.345, "15.10 (Debian 15.10-1)", True, 17, ["auth (Django contrib: /x)"])


@pytest.fixture
def passing(tool):
    checks = [tool.CheckResult(name, "passed", 1.0) for name in ("forward", "check_deploy", "missing_migrations")]
    migration = tool.MigrationResult("shop", "0002_x", "shop/migrations/0002_x.py", 8, apply="passed",
                                     rollback="passed", reapply="passed", schema="identical", data="preserved",
                                     durations={"rollback": 0.5, "reapply": 0.25})
    acknowledged = tool.MigrationResult("shop", "0001_initial", "shop/migrations/0001_initial.py", 3, apply="passed",
                                        rollback="passed", reapply="passed", schema="identical", data="lost",
                                        acknowledged=True,
                                        details=[tool.Finding("data_lost", "column shop_item.legacy: 3 row(s)")])
    return tool.RunResult(checks, [tool.AppResult("shop", [migration, acknowledged])], 3.0, "15.10", False, 9)


def test_ok_and_problems(tool, failing, passing):
    assert passing.ok is True
    assert failing.ok is False
    trace, irreversible, blocked = failing.apps[0].migrations
    assert trace.problems == ["schema differs"]
    assert irreversible.problems == ["rollback irreversible"]
    assert blocked.problems == []
    assert passing.apps[0].migrations[1].problems == []  # acknowledged loss
    assert tool.MigrationResult("a", "m", None).problems == ["rollback not_run"]


def test_report_json(tool, failing):
    report = tool.report_json(failing)
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
        "rollback": "passed", "reapply": "passed", "schema": "differs", "data": "preserved", "acknowledged": False,
        "error": None, "details": [
            {"kind": "schema", "message": "index shop_idx still exists after rolling back 0003_index",
             "object": "index shop_idx"},
            {"kind": "info", "message": "table shop_x was created by 0003_index"}],
        "duration_s": {"rollback": 0.4, "reapply": 0.6}}
    assert app["migrations"][2]["duration_s"] == {"rollback": None, "reapply": None}


def test_junit_xml_is_well_formed_with_counts(tool, failing):
    buffer = io.BytesIO()
    tool.junit_xml(failing).write(buffer, encoding="utf-8", xml_declaration=True)
    root = ElementTree.fromstring(buffer.getvalue())
    assert root.tag == "testsuite"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("15", "3", "0", "8")
    cases = root.findall("testcase")
    assert len(cases) == 15  # 3 checks + 3 migrations x (rollback, reapply, schema, data)
    outcome = {(c.get("classname"), c.get("name")): ("failure" if c.find("failure") is not None else
                                                     "skipped" if c.find("skipped") is not None else "passed")
               for c in cases}
    assert outcome == {
        ("checks", "forward"): "passed", ("checks", "check_deploy"): "failure",
        ("checks", "missing_migrations"): "skipped",
        ("shop.0003_index", "rollback"): "passed", ("shop.0003_index", "reapply"): "passed",
        ("shop.0003_index", "schema"): "failure", ("shop.0003_index", "data"): "passed",
        ("shop.0002_fill", "rollback"): "failure", ("shop.0002_fill", "reapply"): "skipped",
        ("shop.0002_fill", "schema"): "skipped", ("shop.0002_fill", "data"): "skipped",
        ("shop.0001_initial", "rollback"): "skipped", ("shop.0001_initial", "reapply"): "skipped",
        ("shop.0001_initial", "schema"): "skipped", ("shop.0001_initial", "data"): "skipped",
    }
    schema_failure = next(c for c in cases if c.get("classname") == "shop.0003_index" and c.get("name") == "schema")
    assert schema_failure.find("failure").text == "index shop_idx still exists after rolling back 0003_index"
    assert next(c for c in cases if c.get("name") == "rollback").get("time") == "0.40"


def test_junit_app_error_is_a_failing_case(tool, passing):
    passing.apps[0].error = "restoring the full state failed"
    root = tool.junit_xml(passing).getroot()
    assert root.get("tests") == "12" and root.get("failures") == "1"
    assert root.find("testcase[@name='app']/failure").get("message") == "restoring the full state failed"


def test_junit_acknowledged_loss_passes(tool, passing):
    root = tool.junit_xml(passing).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("11", "0", "0")


def test_github_annotations_escape_newlines_and_percent(tool, failing):
    annotations = tool.github_annotations(failing)
    assert annotations == [
        "::error title=Migration test::check_deploy failed: SystemCheckError: x | y",
        "::error file=shop/migrations/0003_index.py,line=9,title=Migration test::shop.0003_index: schema differs: "
        "index shop_idx still exists after rolling back 0003_index",
        "::error file=shop/migrations/0002_fill.py,line=12,title=Migration test::shop.0002_fill: rollback "
        "irreversible: RunPython (Raw Python operation) has no reverse operation,%0Aat "
        "shop/migrations/0002_fill.py:12 | 100%25 sure",
    ]
    assert all("\n" not in a for a in annotations)


def test_github_annotations_are_capped_at_10(tool):
    migrations = [tool.MigrationResult("shop", f"{i:04d}_m", f"shop/migrations/{i:04d}_m.py", None,
                                       rollback="failed", error=f"boom {i}") for i in range(1, 16)]
    result = tool.RunResult([], [tool.AppResult("shop", migrations)], 1.0, "15.10", False, 1)
    annotations = tool.github_annotations(result)
    assert len(annotations) == 10
    assert annotations[0] == ("::error file=shop/migrations/0001_m.py,line=1,title=Migration test::"
                              "shop.0001_m: rollback failed: boom 1")
    assert len(tool.failure_lines(result)) == 15


def test_no_annotations_when_passing(tool, passing):
    assert tool.github_annotations(passing) == []


def test_markdown_summary(tool, failing, passing):
    text = tool.markdown_summary(failing)
    lines = text.splitlines()
    assert lines[0] == "## Migration tests FAILED"
    assert lines[2] == "PostgreSQL 15.10, 12.3s, 17 manage.py processes"
    assert "| check_deploy | failed | SystemCheckError: x / y |" in lines
    assert ("| `shop.0003_index` | passed | passed | differs | preserved | index shop_idx still exists after "
            "rolling back 0003_index |") in lines
    assert "table shop_x was created" not in text  # info stays out
    assert text.endswith("\n")
    ok = tool.markdown_summary(passing)
    assert ok.startswith("## Migration tests passed\n")
    assert ("| `shop.0001_initial` | passed (acknowledged) | passed | identical | lost | "
            "column shop_item.legacy: 3 row(s) |") in ok.splitlines()


def test_console_summary(tool, failing):
    stream = io.StringIO()
    tool.print_summary(failing, tool.Log(1, stream))
    out = stream.getvalue().splitlines()
    assert out[1] == "migration          apply    rollback      re-apply  schema       data         time"
    assert out[2] == "shop.0003_index    passed   passed        passed    differs      preserved    1.0s"
    assert "FAILED: 3 problem(s)" in out


def test_write_reports_on_github(tool, failing, tmp_path, capsys):
    config = tool.config_from_args(tool.build_parser().parse_args(
        ["--manage", str(tool.REPO_ROOT / "manage.py"), "--report-json", str(tmp_path / "r" / "report.json"),
         "--junit-xml", str(tmp_path / "j" / "junit.xml")]))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    log = tool.Log(1, io.StringIO(), secret_url="postgres://u:Sekr1tPw@h/db")
    failing.checks[1].detail = "password Sekr1tPw leaked"
    tool.write_reports(failing, config, log, {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)})
    printed = capsys.readouterr().out
    assert printed.count("::error") == 3
    assert "Sekr1tPw" not in printed and "password *** leaked" in printed
    assert summary.read_text().startswith("earlier step\n## Migration tests FAILED\n")
    assert "Sekr1tPw" not in summary.read_text()
    assert json.loads((tmp_path / "r" / "report.json").read_text())["ok"] is False
    assert ElementTree.parse(tmp_path / "j" / "junit.xml").getroot().get("tests") == "15"
