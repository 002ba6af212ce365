"""End to end: the same verdicts with and without cloning (`--no-clone`), on the fixture projects.

Each configuration below is a fixture project the end-to-end tests run (and upstream), with
windows that leave a state below every chain, and two chains or more: so a template is built and
cloned (otherwise there is nothing to compare). It runs
twice side by side, with `--always-clone` (these bases are too small for the default to clone)
and with `--no-clone`, in fork isolation, and the two reports must
agree on everything but timings: exit status, checks, every migration's every field (verdicts,
errors, details: the seeded rows named in them too). The cloning run must have built its
templates: one Django command more per template than the run without (each one's `prepare`);
with many apps the templates are a tree (chain/templates.py `template_tree`), and the run
without cloning stages its builds through the same states. template_fault_project has a template
that cannot be built: it is left out, said once, and its chains clone the root instead.
"""

from __future__ import annotations

import re

import pytest

from tests.migration_check.conftest import (
    REPO_ROOT,
    ToolRun,
    assert_cleaned_up,
    assert_same_findings,
    fork_variant_runs,
    ran_on,
)

pytestmark = pytest.mark.slow

# name: (fixture project, its arguments, run_tool options). The fixture apps are short (2 to 8
# migrations): with the end-to-end tests' default depth every migration is in a window and no
# state is below all of them, so no template is built. These windows leave the 0001s (or more)
# below them; the defects sit in the newest migrations, so they are still found.
CONFIGURATIONS = {
    "defects": ("defects_project", ("--depth", "1"), {}),
    "clean": ("clean_project", ("--depth", "2"), {}),
    "cross_app": ("cross_app_project", ("--depth", "1"), {}),
    "compat": ("compat_project", ("--depth", "3"), {}),
    "hygiene": ("hygiene_project", ("--depth", "2"), {}),
    "acknowledged": ("acknowledged_project", ("--depth", "1"), {}),
    "apply": ("apply_project", ("--depth", "1"), {}),
    "crash": ("crash_project", ("--depth", "1"), {}),
    "locks": ("locks_project", ("--depth", "1"), {}),
    # one of its templates cannot be built (gamma.0002 refuses a database named like a template)
    "template_fault": ("template_fault_project", ("--depth", "1"), {}),
    "upstream": ("upstream", ("--depth", "5"), {"manage": REPO_ROOT / "manage.py", "settings": "hello_world.settings"}),
}


VARIANTS = {"clone": (("--always-clone",), {}), "no_clone": (("--no-clone",), {})}
# -v: each template's build (chain/templates.py Builds.build_node).
TEMPLATE_BUILT = re.compile(r"^building the template (tm_scratch_\w+_template):", re.MULTILINE)
BUILD_FAILED = re.compile(r"^building a template failed \((?P<why>.*)\); its chains build their databases without it$",
                          re.MULTILINE)


@pytest.fixture(scope="module", params=sorted(CONFIGURATIONS))
def runs(request, run_tool) -> dict[str, ToolRun]:
    return fork_variant_runs(run_tool, CONFIGURATIONS[request.param], VARIANTS)


def test_the_same_verdicts_with_and_without_cloning(runs):
    assert runs["clone"].report is not None, runs["clone"].context()
    assert_same_findings(runs, "clone", "no_clone")


def test_the_cloning_run_built_its_templates(runs):
    """One Django command more per template built (its `prepare`), each said once at -v; on
    defects_project (many apps) a tree of them: the root and templates cloned from it."""
    steps = {name: run.require_report()["steps"] for name, run in runs.items()}
    built = {name: TEMPLATE_BUILT.findall(run.stdout) for name, run in runs.items()}
    assert built["clone"] and not built["no_clone"], built
    assert len(set(built["clone"])) == len(built["clone"])
    assert steps["clone"] == steps["no_clone"] + len(built["clone"]), (steps, built)
    if ran_on(runs["clone"], "defects_project"):
        assert len(built["clone"]) > 2, built


def test_a_template_that_cannot_be_built_is_left_out(runs):
    """template_fault_project: the template of the alpha and beta chains applies gamma.0002, which
    fails there; the run says so once, and those chains clone the root template and apply the
    rest themselves (their verdicts are compared with the run without cloning above). No other
    configuration fails a build."""
    failed = [m["why"] for m in BUILD_FAILED.finditer(runs["clone"].stdout)]
    if not ran_on(runs["clone"], "template_fault_project"):
        assert failed == [], failed
        return
    assert len(failed) == 1 and re.search(r"gamma\.0002 refuses to run in tm_scratch_\w+_template", failed[0]), failed
    assert runs["clone"].returncode == 0, runs["clone"].context()
    assert len(TEMPLATE_BUILT.findall(runs["clone"].stdout)) == 3  # the root, then a template per half
    for app in ("alpha", "beta", "gamma", "delta"):
        runs["clone"].assert_verdicts(app, "0002_entry_note", rollback="passed", reapply="passed",
                                      schema="identical", data="preserved")


def test_both_leave_nothing(runs):
    for run in runs.values():
        assert_cleaned_up(run)

