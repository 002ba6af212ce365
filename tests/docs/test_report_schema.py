"""docs/report.schema.json: a valid JSON Schema, which a report with every kind of finding and
hazard satisfies and which rejects what the contract forbids. The reports of the end-to-end runs
are validated against it too (tests/migration_check/conftest.py, ToolRun.require_report)."""

from __future__ import annotations

import copy

import pytest

from migration_check import rules
from migration_check.reports.json_report import report_json
from migration_check.results import AppResult, CheckResult, Finding, Hazard, LockHold, MigrationResult, RunResult
from tests.report_schema import schema_errors


@pytest.fixture
def report() -> dict:
    findings = [Finding("schema", "index x still exists", {"object": "index x"}, rules.SCHEMA_DIFFERS),
                Finding("data_lost", "column t.c: 2 row(s)", {"table": "t", "column": "c", "rows": 2,
                                                               "example_pk": 1, "operation": None}, rules.DATA_LOST),
                Finding("compat", "the previous release's a.T fails", {"table": "t"}, rules.BREAKS_OLD_CODE),
                Finding("coverage", "column t.d: not covered", {"table": "t", "column": "d"}, rules.DATA_NOT_COVERED),
                Finding("info", "table t was created by 0002_x")]
    hazard = Hazard(rules.TABLE_REWRITE, "t", "AccessExclusiveLock", "ALTER TABLE t ...", "t was rewritten", "fix")
    migration = MigrationResult("a", "0002_x", file="a/migrations/0002_x.py", line=4, apply="passed", rollback="passed",
                                reapply="passed", schema="differs", data="lost", details=findings,
                                compat="breaks_old_code", compat_direction="old_code_on_new_schema",
                                rewrites=["t"], locks=[{"table": "t", "mode": "AccessExclusiveLock"}],
                                statements=["ALTER TABLE t ..."], hazards=[hazard],
                                lock_holds=[LockHold("t", "AccessExclusiveLock", 0.12, None)],
                                durations={"rollback": 0.3, "reapply": 0.2})
    blocked = MigrationResult("a", "0001_initial", file="a/migrations/0001_initial.py", line=1, rollback="blocked")
    checks = [CheckResult("forward", "passed", 1.0), CheckResult("check_deploy", "failed", 0.5, "E001")]
    result = RunResult(checks=checks,
                       apps=[AppResult("a", [migration, blocked])], duration_s=3.0, server_version="15.10",
                       ephemeral=True, processes=4, observation="observed",
                       run_hazards=[Hazard(rules.ACCESS_EXCLUSIVE_WITHOUT_LOCK_TIMEOUT, "t", "AccessExclusiveLock",
                                           "ALTER TABLE t ...", "1 migration(s)", "fix", "observed", ("a.0002_x",))])
    return report_json(result)


def test_a_report_with_every_kind_of_finding_is_valid(report):
    assert schema_errors(report) == []


@pytest.mark.parametrize(("path", "value", "expected"), [
    (("apps", 0, "migrations", 0, "rollback"), "maybe", "'maybe' is not one of"),
    (("apps", 0, "migrations", 0, "details", 0, "rule"), None, "None is not of type 'string'"),
    (("hazards", 0, "source"), "guess", "'guess' is not one of"),
    (("schema",), 2, "1 was expected"),
])
def test_the_schema_rejects_what_the_contract_forbids(report, path, value, expected):
    broken = copy.deepcopy(report)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert any(expected in error for error in schema_errors(broken)), schema_errors(broken)


def test_a_finding_of_a_ruled_kind_without_its_rule_is_rejected(report):
    broken = copy.deepcopy(report)
    del broken["apps"][0]["migrations"][0]["details"][0]["rule"]
    assert any("'rule' is a required property" in error for error in schema_errors(broken))
