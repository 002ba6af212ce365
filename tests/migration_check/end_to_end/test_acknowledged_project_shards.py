"""--shard I/N and --merge-reports, end to end on acknowledged_project, and the merge unit by unit.

acknowledged_project has four apps: irrev_marker (3 migrations), irrev_flag, loss_flag and
loss_marker (2 each). Balanced by migration count (largest first, ties by label, each to the
lightest shard, ties to shard 1) two shards are: 1/2 = irrev_marker + loss_marker (both accepted
by their marker comments: passes), 2/2 = irrev_flag + loss_flag (no flags given: fails). The
shards are run side by side with a run of the whole project; merged, they must say what the
whole run says, exit 1, in one JUnit file and one step summary. A missing shard fails the merge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from xml.etree import ElementTree

import pytest

from migration_check.errors import UsageError
from migration_check.reports import report_json
from migration_check.reports.merge import check_shards, merge_json, result_from_json
from tests.migration_check.conftest import SCRUBBED_ENV, assert_cleaned_up, side_by_side

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[3]
TOOL = REPO_ROOT / "scripts" / "test_migrations.py"
SHARD_APPS = {1: ["irrev_marker", "loss_marker"], 2: ["irrev_flag", "loss_flag"]}
PROBLEMS = ["irrev_flag.0002_flag_name_idx: rollback irreversible", "loss_flag.0002_delete_legacyhit: data lost"]


@pytest.fixture(scope="module")
def runs(run_tool):
    """The whole project and its two shards, started together (run_tool gives each a role)."""
    plans = {"whole": (), "shard1": ("--shard", "1/2"), "shard2": ("--shard", "2/2")}
    return side_by_side({name: partial(run_tool, "acknowledged_project", *extra) for name, extra in plans.items()})


@pytest.fixture(scope="module")
def report_files(runs, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("shard-reports")
    files = {}
    for name, run in runs.items():
        files[name] = folder / f"{name}.json"
        files[name].write_text(json.dumps(run.require_report()))
    return files


def merge(*reports: Path, extra: tuple[str, ...] = (),
          env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    child_env = {key: value for key, value in os.environ.items() if key not in SCRUBBED_ENV}
    return subprocess.run([sys.executable, str(TOOL), "--merge-reports", *map(str, reports), *extra],
                          capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env={**child_env, **(env or {})})


@pytest.fixture(scope="module")
def merged(report_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged")
    completed = merge(report_files["shard1"], report_files["shard2"],
                      # --manage: the project is in a subfolder of the repository (annotations' paths)
                      extra=("--junit-xml", str(out / "junit.xml"), "--report-json", str(out / "merged.json"),
                             "--manage", "tests/fixtures/acknowledged_project/manage.py"),
                      env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(out / "summary.md"),
                           "GITHUB_WORKSPACE": str(REPO_ROOT)})
    return completed, out


def apps_of(report: dict) -> list[str]:
    return [app["app"] for app in report["apps"]]


def by_migration(report: dict) -> dict[str, dict]:
    return {f"{app['app']}.{m['name']}": {k: m[k] for k in ("apply", "rollback", "reapply", "schema", "data",
                                                             "acknowledged", "error")}
            for app in report["apps"] for m in app["migrations"]}


def test_each_shard_tests_its_balanced_share(runs):
    for index, apps in SHARD_APPS.items():
        run = runs[f"shard{index}"]
        report = run.require_report()
        assert sorted(apps_of(report)) == apps, run.context()
        assert report["selection"]["shard"] == {"index": index, "count": 2}
        assert_cleaned_up(run)
    assert "--shard 2/2: 2 app window(s), 4 migration(s); the project checks run in shard 1" in runs["shard2"].stdout


def test_project_checks_run_in_shard_1_only(runs):
    assert [c["name"] for c in runs["shard1"].require_report()["checks"]] == [
        "forward", "check_deploy", "missing_migrations", "sequences"]
    assert runs["shard2"].require_report()["checks"] == []
    assert "forward: migrate every app from scratch" not in runs["shard2"].stdout


def test_shard_exit_statuses(runs):
    assert runs["shard1"].returncode == 0, runs["shard1"].context()
    assert runs["shard2"].returncode == 1, runs["shard2"].context()
    assert runs["whole"].returncode == 1, runs["whole"].context()


def test_merged_shards_say_what_the_whole_run_says(merged, runs):
    completed, out = merged
    whole = runs["whole"].require_report()
    report = json.loads((out / "merged.json").read_text())
    assert by_migration(report) == by_migration(whole)
    assert sorted(apps_of(report)) == sorted(apps_of(whole))
    assert report["checks"] == runs["shard1"].require_report()["checks"]
    assert report["ok"] is False
    assert report["selection"]["merged_shards"] == [{"index": 1, "count": 2}, {"index": 2, "count": 2}]
    assert report["processes"] == sum(runs[name].require_report()["processes"] for name in ("shard1", "shard2"))
    assert report["duration_s"] == max(runs[name].require_report()["duration_s"] for name in ("shard1", "shard2"))


def test_merge_exits_1_and_prints_the_combined_summary(merged):
    completed, _ = merged
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "FAILED: 2 problem(s)" in completed.stdout
    for problem in PROBLEMS:
        assert f"  - {problem}" in completed.stdout
    for label in ("irrev_marker.0003_setting_updated", "loss_marker.0002_remove_contact_fax"):
        assert label in completed.stdout  # the passing shard's migrations are in the table too


def test_merge_writes_one_junit_file_and_the_step_summary(merged):
    completed, out = merged
    suite = ElementTree.parse(out / "junit.xml").getroot()
    classnames = {case.get("classname") for case in suite.iter("testcase")}
    assert {"checks", "irrev_marker.0003_setting_updated", "loss_flag.0002_delete_legacyhit"} <= classnames
    # irrev_flag.0002's rollback; loss_flag.0002's data and its compat case (the previous
    # release still reads the table DeleteModel drops)
    assert suite.get("failures") == "3"
    summary = (out / "summary.md").read_text()
    assert summary.startswith("## Migration tests FAILED")
    assert "`loss_marker.0002_remove_contact_fax`" in summary and "`irrev_flag.0002_flag_name_idx`" in summary
    annotations = [line for line in completed.stdout.splitlines() if line.startswith("::error")]
    assert [line.split("::")[2].split(":")[0] for line in annotations] == [p.split(":")[0] for p in PROBLEMS]
    assert "file=tests/fixtures/acknowledged_project/irrev_flag/migrations/0002_flag_name_idx.py" in annotations[0]


def test_merging_only_passing_shards_exits_0(report_files, tmp_path):
    one_shard = json.loads(report_files["shard1"].read_text())
    one_shard["selection"]["shard"] = {"index": 1, "count": 1}
    path = tmp_path / "only.json"
    path.write_text(json.dumps(one_shard))
    completed = merge(path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "OK: all checks passed" in completed.stdout


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "--merge-reports: shard 2/2 is missing (every shard's report is needed, once)"),
    ("twice", "--merge-reports: shard 2/2 is missing; shard 1/2 is given twice (every shard's report is needed, "
              "once)"),
    ("not a shard", "--merge-reports: {whole} is not the report of a shard"),
    ("not json", "--merge-reports: {bad} is not JSON (Expecting value: line 1 column 1 (char 0))"),
    ("absent", "--merge-reports: cannot read {absent}: No such file or directory"),
])
def test_bad_merges_are_one_line_exit_2(report_files, tmp_path, case, message):
    bad, absent = tmp_path / "bad.json", tmp_path / "absent.json"
    bad.write_text("not json")
    given = {"missing": [report_files["shard1"]], "twice": [report_files["shard1"], report_files["shard1"]],
             "not a shard": [report_files["shard1"], report_files["whole"], report_files["shard2"]],
             "not json": [bad], "absent": [absent]}[case]
    completed = merge(*given)
    assert completed.returncode == 2
    assert completed.stderr == "test_migrations: error: " + message.format(
        whole=report_files["whole"], bad=bad, absent=absent) + "\n"


# ------------------------------------------------------------------------------------------------
# The merge, unit by unit (on the real reports of the runs above)
# ------------------------------------------------------------------------------------------------


def test_a_report_read_back_gives_the_same_report(runs):
    """result_from_json is faithful: the reporters see what the shard reported."""
    for name in ("whole", "shard1", "shard2"):
        report = runs[name].require_report()
        assert report_json(result_from_json(report, None)) == report


def test_merge_json_keeps_what_it_does_not_know_and_adds_only_counts(runs):
    first, second = (dict(runs[name].require_report()) for name in ("shard1", "shard2"))
    first["future_field"], second["future_field"] = {"a": 1}, {"a": 2}
    merged = merge_json([first, second])
    assert merged["schema"] == 1
    assert merged["future_field"] == {"a": 1}
    assert merged["database"] == first["database"]
    assert merged["apps"] == first["apps"] + second["apps"]


def test_an_app_in_two_reports_is_refused(runs):
    report = runs["shard1"].require_report()
    other = {**report, "selection": {**report["selection"], "shard": {"index": 2, "count": 2}}}
    with pytest.raises(UsageError, match="app irrev_marker is in both a.json and b.json"):
        check_shards([report, other], [Path("a.json"), Path("b.json")])

