"""End to end: the project-wide checks and the configuration errors.

- missing_migration_project: a model change without its migration -> missing_migrations failed;
- conflict_project: two leaf migrations, no merge -> forward failed with Django's message;
- hanging_project: a reverse (settings) or a forward (settings_forward) that sleeps -> the step
  is killed after --step-timeout, reported failed with "timed out", and cleanup still happens;
- broken_settings_project and an unknown --app: exit 2, one line on stderr, no traceback.
"""

from __future__ import annotations

from functools import partial

import pytest

from tests.migration_check.conftest import (
    BLOCKED,
    ISOLATIONS,
    NOT_ROLLED_BACK,
    PASSED,
    ToolRun,
    assert_cleaned_up,
    assert_report_shape,
    assert_same_verdicts,
    side_by_side,
)

pytestmark = pytest.mark.slow

STEP_TIMEOUT_S = 8
# A hung step must not keep the run waiting for the sleep (an hour): the timeout plus the
# time of the other steps, with room for a slow machine.
HANG_RUN_LIMIT_S = 180


@pytest.fixture(scope="module")
def runs(run_both) -> dict[str, dict[str, ToolRun]]:
    """Each configuration in each isolation. The two hanging configurations run side by side
    (four runs): each spends most of its time waiting for its step timeout, so their waits
    overlap instead of adding up; the other two configurations before them, side by side too
    (never all eight at once: a loaded machine must not slow a hanging run's other steps to
    its step timeout)."""
    def together(configurations: dict[str, tuple[tuple[str, ...], dict[str, str]]]) -> dict[str, dict[str, ToolRun]]:
        return side_by_side({name: partial(run_both, *arguments, **options)
                             for name, (arguments, options) in configurations.items()})

    return {
        **together({"missing": (("missing_migration_project",), {}), "conflict": (("conflict_project",), {})}),
        **together({
            # --depth 2: the window starts after 0001 (0003 hangs, 0002 is then blocked).
            "hang_reverse": (("hanging_project", "--step-timeout", str(STEP_TIMEOUT_S), "--depth", "2"), {}),
            "hang_forward": (("hanging_project", "--step-timeout", str(STEP_TIMEOUT_S)),
                             {"settings": "hanging_project.settings_forward"}),
        }),
    }


@pytest.fixture(scope="module", params=ISOLATIONS)
def isolation(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def missing(runs, isolation) -> ToolRun:
    return runs["missing"][isolation]


@pytest.fixture(scope="module")
def conflict(runs, isolation) -> ToolRun:
    return runs["conflict"][isolation]


@pytest.fixture(scope="module")
def hang_reverse(runs, isolation) -> ToolRun:
    return runs["hang_reverse"][isolation]


@pytest.fixture(scope="module")
def hang_forward(runs, isolation) -> ToolRun:
    return runs["hang_forward"][isolation]


@pytest.mark.parametrize("configuration", ["missing", "conflict", "hang_reverse", "hang_forward"])
def test_same_verdicts_in_both_isolations(runs, configuration):
    assert_same_verdicts(runs[configuration])


def assert_usage_error(run: ToolRun, *words: str) -> None:
    assert run.returncode == 2, run.context()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, "expected one line on stderr" + run.context()
    assert "Traceback" not in run.stderr + run.stdout, run.context()
    for word in words:
        assert word in lines[0], run.context()


def test_missing_migration_fails_its_check(missing):
    assert missing.returncode == 1, missing.context()
    check = missing.check("missing_migrations")
    assert check["status"] == "failed", check
    assert "inventory" in (check["detail"] or ""), check


def test_missing_migration_other_checks_and_window_pass(missing):
    assert_report_shape(missing, {"inventory": ["0001_initial"]})
    assert missing.check("forward")["status"] == "passed"
    missing.assert_verdicts("inventory", "0001_initial", **PASSED)
    assert_cleaned_up(missing)


def test_conflicting_leaves_fail_forward_with_djangos_message(conflict):
    assert conflict.returncode == 1, conflict.context()
    check = conflict.check("forward")
    assert check["status"] == "failed", check
    assert "Conflicting migrations detected" in (check["detail"] or ""), check
    assert "Traceback" not in conflict.stderr, conflict.context()
    assert_cleaned_up(conflict)


def test_hanging_reverse_times_out_and_blocks_older(hang_reverse):
    assert hang_reverse.returncode == 1, hang_reverse.context()
    assert hang_reverse.wall_s < HANG_RUN_LIMIT_S, hang_reverse.context()
    assert_report_shape(hang_reverse, {"sleepy_reverse": ["0003_job_name_idx", "0002_job_done"]})
    migration = hang_reverse.assert_verdicts("sleepy_reverse", "0003_job_name_idx",
                                             rollback="failed", **NOT_ROLLED_BACK)
    assert "timed out" in (migration["error"] or ""), migration
    hang_reverse.assert_verdicts("sleepy_reverse", "0002_job_done", **BLOCKED)


def test_hanging_reverse_cleanup(hang_reverse):
    assert_cleaned_up(hang_reverse)
    assert hang_reverse.leftover_backends == [], "sessions left running on the server"


def test_hanging_forward_times_out(hang_forward):
    assert hang_forward.returncode == 1, hang_forward.context()
    assert hang_forward.wall_s < HANG_RUN_LIMIT_S, hang_forward.context()
    check = hang_forward.check("forward")
    assert check["status"] == "failed", check
    assert "timed out" in (check["detail"] or ""), check


def test_hanging_forward_cleanup(hang_forward):
    assert_cleaned_up(hang_forward)
    assert hang_forward.leftover_backends == [], "sessions left running on the server"


def test_broken_settings_is_a_usage_error(run_both):
    runs = run_both("broken_settings_project")
    for run in runs.values():
        assert_usage_error(run, "PAYMENT_API_KEY is not set")
        assert_cleaned_up(run)
    assert_same_verdicts(runs)


def test_unknown_app_is_a_usage_error_listing_the_known_ones(run_both):
    runs = run_both("cross_app_project", "--app", "gamma")
    for run in runs.values():
        assert_usage_error(run, "gamma", "alpha", "beta")
        assert_cleaned_up(run)
    assert_same_verdicts(runs)
