"""End to end: every migration defect of DEFECTS.md gets its exact verdict (defects_project).

The tool runs once on tests/fixtures/defects_project (one app per defect, default depth) and
each test asserts one app's verdicts. tests/migration_check/fixture_sanity/test_defect_corpus.py shows, with plain
manage.py commands, that each fixture really contains its defect; end_to_end/test_clean_project.py shows
there is no false alarm on the clean twins.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.migration_check.conftest import (
    BLOCKED,
    ISOLATIONS,
    NOT_ROLLED_BACK,
    PASSED,
    REPO_ROOT,
    ToolRun,
    assert_cleaned_up,
    assert_report_shape,
    assert_same_verdicts,
    detail_text,
)

pytestmark = pytest.mark.slow

WINDOWS = {
    "irreversible_python": ["0003_note_created", "0002_strip_note_text", "0001_initial"],
    "irreversible_sql": ["0003_tag_color", "0002_tag_name_lower_idx", "0001_initial"],
    "reverse_typo": ["0002_item_name_idx", "0001_initial"],
    "reverse_drops_missing": ["0002_backfill_order_numbers", "0001_initial"],
    "reapply_fails": ["0002_item_unsold_idx", "0001_initial"],
    "trace_index": ["0002_article_title_slug_idx", "0001_initial"],
    "trace_default": ["0002_ticket_defaults", "0001_initial"],
    "trace_constraint": ["0002_stock_quantity_nonneg", "0001_initial"],
    "trace_trigger": ["0002_page_skip_noop_updates", "0001_initial"],
    "trace_table": ["0002_upload_log", "0001_initial"],
    "roundtrip_changes": ["0002_event_recent_idx", "0001_initial"],
    "lossy_data": ["0002_anonymize_customer_emails", "0001_initial"],
    "destructive_remove": [
        "0003_delete_auditentry", "0002_remove_account_legacy_code", "0001_initial"],
    "rollback_needs_data_null": ["0002_profile_nickname_nullable", "0001_initial"],
    "rollback_needs_data_length": ["0002_label_code_max_length_50", "0001_initial"],
}

# App -> the object its forgotten reverse leaves behind (or its round trip changes).
TRACES = {
    "trace_index": ("0002_article_title_slug_idx", "trace_index_article_slug_idx"),
    "trace_default": ("0002_ticket_defaults", "priority"),
    "trace_constraint": ("0002_stock_quantity_nonneg", "trace_constraint_stock_quantity_nonneg"),
    "trace_trigger": ("0002_page_skip_noop_updates", "trace_trigger_page_skip_noop_updates"),
    "trace_table": ("0002_upload_log", "trace_table_upload_log"),
    "roundtrip_changes": ("0002_event_recent_idx", "roundtrip_changes_event_recent_idx"),
}

ROWS = re.compile(r"\b\d+\s+rows?\b|\brows?\W+\d+")  # "3 rows", "rows: 3"


ANNOTATION = re.compile(r"^::error file=(?P<file>[^,]+),line=(?P<line>\d+)(?:,[^:]*)?::(?P<text>.*)$",
                        re.MULTILINE)
PRIMARY_KEY = re.compile(r"primary key|\bpk\b", re.IGNORECASE)


@pytest.fixture(scope="module")
def summary_paths(tmp_path_factory) -> dict[str, Path]:
    return {isolation: tmp_path_factory.mktemp(f"github-{isolation}") / "step_summary.md"
            for isolation in ISOLATIONS}


@pytest.fixture(scope="module")
def runs(run_both, summary_paths) -> dict[str, ToolRun]:
    """The defects_project run in each isolation, as on GitHub Actions (annotations and a step
    summary)."""
    return run_both("defects_project", env={"GITHUB_ACTIONS": "true"},
                    envs={isolation: {"GITHUB_STEP_SUMMARY": str(path)} for isolation, path in summary_paths.items()})


@pytest.fixture(scope="module", params=ISOLATIONS)
def run(runs, request) -> ToolRun:
    return runs[request.param]


@pytest.fixture(scope="module")
def summary_path(run, summary_paths) -> Path:
    return summary_paths[run.require_report()["isolation"]]


def test_same_verdicts_in_both_isolations(runs):
    assert_same_verdicts(runs)


def failing(run: ToolRun) -> list[tuple[str, dict]]:
    """(app, migration) for every migration with a finding that fails the run."""
    return [(entry["app"], m) for entry in run.require_report()["apps"] for m in entry["migrations"]
            if (not m.get("acknowledged") and (
                m["rollback"] in ("failed", "irreversible") or m["reapply"] == "failed"
                or m["schema"] == "differs" or m["data"] == "lost"))
            or (m["compat"] == "breaks_old_code" and not m["compat_acknowledged"])]


def test_exit_status_is_1_migration_problem(run):
    assert run.returncode == 1, run.context()
    assert "Traceback" not in run.stderr, run.context()


def test_report_follows_the_contract(run):
    assert_report_shape(run, WINDOWS)
    assert run.report["ok"] is False


def test_all_checks_pass_the_problems_are_in_the_windows(run):
    for name in ("forward", "check_deploy", "missing_migrations"):
        assert run.check(name)["status"] == "passed", run.check(name)


def test_cleanup_and_url_database_untouched(run):
    assert_cleaned_up(run)


@pytest.mark.parametrize(("app", "operation"), [
    ("irreversible_python", "RunPython"), ("irreversible_sql", "RunSQL")])
def test_irreversible_is_named_and_blocks_older(run, app, operation):
    newest, irreversible, oldest = WINDOWS[app]
    run.assert_verdicts(app, newest, **PASSED)
    migration = run.assert_verdicts(app, irreversible, rollback="irreversible", **NOT_ROLLED_BACK)
    assert operation in (migration["error"] or ""), migration
    assert migration["file"] in migration["error"], "the error names the file"
    assert migration.get("acknowledged", False) is False
    run.assert_verdicts(app, oldest, **BLOCKED)


@pytest.mark.parametrize(("app", "message"), [
    ("reverse_typo", 'syntax error at or near "INDEXX"'),
    ("reverse_drops_missing", 'table "reverse_drops_missing_staging" does not exist'),
    ("rollback_needs_data_null", 'column "nickname" of relation "rollback_needs_data_null_profile" '
                                 "contains null values"),
    ("rollback_needs_data_length", "value too long for type character varying(20)"),
])
def test_failing_reverse_reports_the_database_message_and_blocks_older(run, app, message):
    newest, oldest = WINDOWS[app]
    migration = run.assert_verdicts(app, newest, rollback="failed", **NOT_ROLLED_BACK)
    assert message in (migration["error"] or ""), migration
    run.assert_verdicts(app, oldest, **BLOCKED)


def test_reapply_after_noop_reverse_fails_with_already_exists(run):
    migration = run.assert_verdicts("reapply_fails", "0002_item_unsold_idx",
                                    rollback="passed", reapply="failed", data="preserved")
    assert "already exists" in (migration["error"] or ""), migration
    # The index that survives the rollback is a trace too: the schema cannot be "identical".
    assert migration["schema"] == "differs", migration
    assert "reapply_fails_item_unsold_idx" in detail_text(migration)
    # 0002 did roll back, so 0001 was reached: not blocked.
    assert run.migration("reapply_fails", "0001_initial")["rollback"] == "passed"


@pytest.mark.parametrize("app", sorted(TRACES))
def test_trace_or_round_trip_change_is_named(run, app):
    name, trace = TRACES[app]
    migration = run.assert_verdicts(app, name, rollback="passed", reapply="passed",
                                    schema="differs", data="preserved")
    assert trace in detail_text(migration), migration


def test_trace_details_name_only_what_is_left(run):
    details = detail_text(run.migration("trace_index", "0002_article_title_slug_idx"))
    assert "trace_index_article_title_idx" not in details, details
    details = detail_text(run.migration("trace_default", "0002_ticket_defaults"))
    assert "trace_default_ticket" in details and "default" in details, details
    assert "status" not in details, details


@pytest.mark.parametrize("app", sorted(TRACES))
def test_trace_is_not_blamed_on_the_older_migration(run, app):
    run.assert_verdicts(app, "0001_initial", **PASSED)


def test_lossy_data_migration_names_table_column_rows(run):
    migration = run.assert_verdicts("lossy_data", "0002_anonymize_customer_emails",
                                    rollback="passed", reapply="passed", schema="identical",
                                    data="lost")
    details = detail_text(migration)
    assert "lossy_data_customer" in details and "email" in details, details
    assert ROWS.search(details) and PRIMARY_KEY.search(details), details
    assert migration.get("acknowledged", False) is False
    run.assert_verdicts("lossy_data", "0001_initial", **PASSED)


@pytest.mark.parametrize(("name", "operation", "names", "not_names"), [
    ("0003_delete_auditentry", "DeleteModel", ["destructive_remove_auditentry"], ["legacy_code"]),
    ("0002_remove_account_legacy_code", "RemoveField",
     ["destructive_remove_account", "legacy_code"], ["auditentry", "DeleteModel"]),
])
def test_destructive_forward_names_the_operation(run, name, operation, names, not_names):
    migration = run.assert_verdicts("destructive_remove", name, rollback="passed",
                                    reapply="passed", schema="identical", data="lost")
    details = detail_text(migration)
    for expected in [operation, *names]:
        assert expected in details, details
    assert ROWS.search(details) and PRIMARY_KEY.search(details), details
    for unexpected in not_names:  # each loss is attributed to the migration that causes it
        assert unexpected not in details, details
    assert migration.get("acknowledged", False) is False


def test_destructive_losses_are_not_blamed_on_the_initial_migration(run):
    run.assert_verdicts("destructive_remove", "0001_initial", **PASSED)


def test_github_annotations_point_at_the_failing_migration_files(run):
    """GitHub shows at most 10 error annotations per step: the first failures get one each."""
    annotations = list(ANNOTATION.finditer(run.stdout))
    expected = failing(run)
    assert len(expected) == 16
    assert len(annotations) == min(10, len(expected)), run.context()
    labels = {f"{app}.{migration['name']}": migration for app, migration in expected}
    for annotation in annotations:
        label = next((label for label in labels if label in annotation["text"]), None)
        assert label, f"annotation for no failing migration: {annotation[0]}"
        # GitHub resolves the path from the repository root (the working directory here).
        path = Path(annotation["file"])
        assert (REPO_ROOT / path).is_file(), (
            f"{label}: annotation file={path} does not exist relative to the repository root")
        assert path.name == f"{labels[label]['name']}.py", annotation[0]
        assert 1 <= int(annotation["line"]) <= len((REPO_ROOT / path).read_text().splitlines())


def test_github_step_summary_names_each_failing_migration(run, summary_path):
    summary = summary_path.read_text()
    for app, migration in failing(run):
        assert f"{app}.{migration['name']}" in summary
