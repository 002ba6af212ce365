"""End to end: the step servers' warm-up changes no verdict (`TM_NO_WARMUP=1` turns it off).

A step server freezes its objects out of the garbage collector's view before forking
(`inside_django.fork_server.warm_up`); each forked `migrate` must still do exactly what
`manage.py migrate` does. Each configuration runs twice side by side in fork isolation, with
the warm-up and with `TM_NO_WARMUP=1`, and the reports must agree on everything but timings:
exit status, checks, every migration's every field, and the Django commands run. Chosen to cover
what a warm-up could disturb: failing reverses, irreversible and blocked migrations and lost
data (defects), another app's dependency (cross_app), contrib apps whose `post_migrate` handlers
write content types and permissions (upstream), and steps that crash or exit oddly (crash).
"""

from __future__ import annotations

import re

import pytest

from tests.migration_check.conftest import REPO_ROOT, ToolRun, assert_cleaned_up, assert_same_findings, run_variants

pytestmark = pytest.mark.slow

CONFIGURATIONS = {
    "defects": ("defects_project", (), {}),
    "cross_app": ("cross_app_project", (), {}),
    "crash": ("crash_project", (), {}),
    "upstream": ("upstream", ("--depth", "5"), {"manage": REPO_ROOT / "manage.py", "settings": "hello_world.settings"}),
}
VARIANTS = {"warm": ((), {}), "plain": ((), {"TM_NO_WARMUP": "1"})}  # name: (arguments, environment)
# The step server's ready line at -v (step_server.StepServers.server_for).
WARM_UP_LINE = re.compile(r"step server for \S+ ready: .* warm-up: (?P<what>.*)$", re.MULTILINE)


@pytest.fixture(scope="module", params=sorted(CONFIGURATIONS))
def runs(request, run_tool) -> dict[str, ToolRun]:
    project, arguments, options = CONFIGURATIONS[request.param]
    return run_variants(run_tool, project, VARIANTS, *arguments, "--isolation", "fork", "-v", **options)


def test_the_same_verdicts_with_and_without_the_warm_up(runs):
    assert runs["warm"].report is not None, runs["warm"].context()
    assert_same_findings(runs, "warm", "plain")
    steps = {name: run.require_report()["steps"] for name, run in runs.items()}
    assert steps["warm"] == steps["plain"], steps


def test_the_warm_up_ran_only_where_asked(runs):
    said = {name: [m["what"] for m in WARM_UP_LINE.finditer(run.stdout + run.stderr)] for name, run in runs.items()}
    assert said["warm"] and said["plain"], said
    assert all(re.fullmatch(r"froze \d+ objects", what) for what in said["warm"]), said
    assert set(said["plain"]) == {"skipped: TM_NO_WARMUP is set"}, said


def test_both_leave_nothing(runs):
    for run in runs.values():
        assert_cleaned_up(run)
