"""End to end: building each stage with one `migrate` changes no verdict (`TM_BUILD_PER_TARGET=1`
builds one target at a time, as before).

A chain's database is built through stages, each one `migrate` to all its targets
(inside_django/stages.py). Each configuration runs twice side by side in fork isolation, one
`migrate` per stage and one per target, and the reports must agree on everything but timings:
exit status, checks, every migration's every field, and the number of Django commands run.
Chosen to cover what a build's stages touch: many apps, failing reverses and rebuilds past them
(defects), another app's dependency (cross_app), a squash replacing another app's migrations
(cross_squash), and contrib apps whose `post_migrate` handlers write content types and
permissions, built through a template and its rest (upstream, --always-clone).
"""

from __future__ import annotations

import pytest

from tests.migration_check.conftest import REPO_ROOT, ToolRun, assert_cleaned_up, assert_same_findings, run_variants

pytestmark = pytest.mark.slow

CONFIGURATIONS = {
    "defects": ("defects_project", (), {}),
    "cross_app": ("cross_app_project", (), {}),
    "cross_squash": ("cross_squash_project", (), {}),
    "upstream": ("upstream", ("--depth", "5", "--always-clone"),
                 {"manage": REPO_ROOT / "manage.py", "settings": "hello_world.settings"}),
}
VARIANTS = {"one_pass": ((), {}), "per_target": ((), {"TM_BUILD_PER_TARGET": "1"})}  # name: (arguments, environment)


@pytest.fixture(scope="module", params=sorted(CONFIGURATIONS))
def runs(request, run_tool) -> dict[str, ToolRun]:
    project, arguments, options = CONFIGURATIONS[request.param]
    return run_variants(run_tool, project, VARIANTS, *arguments, "--isolation", "fork", **options)


def test_the_same_verdicts_with_one_migrate_per_stage_or_per_target(runs):
    assert runs["one_pass"].report is not None, runs["one_pass"].context()
    assert_same_findings(runs, "one_pass", "per_target")
    steps = {name: run.require_report()["steps"] for name, run in runs.items()}
    assert steps["one_pass"] == steps["per_target"], steps


def test_both_leave_nothing(runs):
    for run in runs.values():
        assert_cleaned_up(run)
