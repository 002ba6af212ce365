"""End to end: the two shortcuts of a run in fork isolation change no verdict.

- The step servers' warm-up (`inside_django.fork_server.warm_up`): a server freezes its objects
  out of the garbage collector's view before forking; each forked `migrate` must still do exactly
  what `manage.py migrate` does. `TM_NO_WARMUP=1` turns it off.
- One `migrate` per build stage (`inside_django.stages`): a chain's database is built through
  stages, each one `migrate` to all its targets. `TM_BUILD_PER_TARGET=1` builds one target at a
  time, as `migrate APP NAME` commands.

Each configuration runs twice side by side in fork isolation: the default path, and the plain
path with both switches set (one run pair serves both: the suite's time is a budget, and two
shortcuts whose changes cancelled out exactly in every field of every migration are not a real
risk; a difference names the fields, and one switch at a time tells which). The reports must
agree on everything but timings: exit status, checks, every migration's every field, and the
Django commands run; `-v` shows each server froze (or skipped). Chosen to cover what either could
disturb: failing reverses, irreversible and blocked migrations, lost data, many apps and rebuilds
past a failure (defects), another app's dependency (cross_app), a squash replacing another app's
migrations (cross_squash), steps that crash or exit oddly (crash), and contrib apps whose
`post_migrate` handlers write content types and permissions, built through a template and the
rest (upstream, `--always-clone`).
"""

from __future__ import annotations

import re

import pytest

from tests.migration_check.conftest import REPO_ROOT, ToolRun, assert_cleaned_up, assert_same_findings, run_variants

pytestmark = pytest.mark.slow

CONFIGURATIONS = {
    "defects": ("defects_project", (), {}),
    "cross_app": ("cross_app_project", (), {}),
    "cross_squash": ("cross_squash_project", (), {}),
    "crash": ("crash_project", (), {}),
    "upstream": ("upstream", ("--depth", "5", "--always-clone"),
                 {"manage": REPO_ROOT / "manage.py", "settings": "hello_world.settings"}),
}
PLAIN = {"TM_NO_WARMUP": "1", "TM_BUILD_PER_TARGET": "1"}
VARIANTS = {"default": ((), {}), "plain": ((), PLAIN)}  # name: (arguments, environment)
# The step server's ready line at -v (step_server.StepServers.server_for).
WARM_UP_LINE = re.compile(r"step server for \S+ ready: .* warm-up: (?P<what>.*)$", re.MULTILINE)


@pytest.fixture(scope="module", params=sorted(CONFIGURATIONS))
def runs(request, run_tool) -> dict[str, ToolRun]:
    project, arguments, options = CONFIGURATIONS[request.param]
    return run_variants(run_tool, project, VARIANTS, *arguments, "--isolation", "fork", "-v", **options)


def test_the_same_verdicts_on_the_default_and_the_plain_path(runs):
    assert runs["default"].report is not None, runs["default"].context()
    assert_same_findings(runs, "default", "plain")
    steps = {name: run.require_report()["steps"] for name, run in runs.items()}
    assert steps["default"] == steps["plain"], steps


def test_the_warm_up_ran_only_where_asked(runs):
    said = {name: [m["what"] for m in WARM_UP_LINE.finditer(run.stdout + run.stderr)] for name, run in runs.items()}
    assert said["default"] and said["plain"], said
    assert all(re.fullmatch(r"froze \d+ objects", what) for what in said["default"]), said
    assert set(said["plain"]) == {"skipped: TM_NO_WARMUP is set"}, said


def test_both_leave_nothing(runs):
    for run in runs.values():
        assert_cleaned_up(run)
