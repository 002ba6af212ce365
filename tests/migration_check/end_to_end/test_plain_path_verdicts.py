"""End to end: the two shortcuts of a run in fork isolation change no verdict.

- The step servers' warm-up (`inside_django.fork_server.warm_up`): a server freezes its objects
  out of the garbage collector's view before forking; each forked `migrate` must still do exactly
  what `manage.py migrate` does. `TM_NO_WARMUP=1` turns it off.
- One `migrate` per build stage (`inside_django.stages`): a chain's database is built through
  stages, each one `migrate` to all its targets. `TM_BUILD_PER_TARGET=1` builds one target at a
  time, as `migrate APP NAME` commands.
- Slots (`chain.slots`): the chains' databases take turns under a few names, each served by one
  step server started ahead. `TM_SERVER_PER_DATABASE=1` gives each database a name and a server
  of its own. defects has more chains than the run has workers, so its slots serve several
  databases each.
- Warm states (`inside_django.warm_states`): a step server renders the project state of its
  database's applied migrations before forking a `migrate`, and the child takes it (and the
  graph) instead of computing them again. `TM_NO_WARM_STATES=1` turns it off. Like every run of
  the suite, the default run checks each state it hands out against Django's own
  (`TM_WARM_STATES_CHECK`) and logs each use (`TM_WARM_STATES_LOG`), so the shortcut is seen to run.

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

from tests.migration_check.conftest import (
    REPO_ROOT,
    ToolRun,
    assert_cleaned_up,
    assert_same_findings,
    fork_variant_runs,
    ran_on,
)

pytestmark = pytest.mark.slow

CONFIGURATIONS = {
    "defects": ("defects_project", (), {}),
    "cross_app": ("cross_app_project", (), {}),
    "cross_squash": ("cross_squash_project", (), {}),
    "crash": ("crash_project", (), {}),
    "upstream": ("upstream", ("--depth", "5", "--always-clone"),
                 {"manage": REPO_ROOT / "manage.py", "settings": "hello_world.settings"}),
}
PLAIN = {"TM_NO_WARMUP": "1", "TM_BUILD_PER_TARGET": "1", "TM_SERVER_PER_DATABASE": "1", "TM_NO_WARM_STATES": "1"}
# The step server's ready line at -v (step_server.StepServers.server_for).
WARM_UP_LINE = re.compile(r"step server for \S+ ready: .* warm-up: (?P<what>.*), warm states: (?P<states>.*)$",
                          re.MULTILINE)
SERVER_READY = re.compile(r"step server for (?P<database>\S+) ready:", re.MULTILINE)
SLOT_NAME = re.compile(r"tm_scratch_[0-9a-f]{8}_\d+_worker\d+")
SLOT_DATABASE = re.compile(r"^\s+\S+: database (?P<database>tm_scratch_[0-9a-f]{8}_\d+_worker\d+)$", re.MULTILINE)


VARIANTS = {"default": ((), {}), "plain": ((), PLAIN)}  # name: (arguments, environment)


@pytest.fixture(scope="module", params=sorted(CONFIGURATIONS))
def runs(request, run_tool) -> dict[str, ToolRun]:
    return fork_variant_runs(run_tool, CONFIGURATIONS[request.param], VARIANTS)


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


def test_the_children_took_the_servers_states_only_where_asked(runs):
    """Default: every server renders states (checked against Django's own in each child), and the
    children took the graph, the state before their step and, after a rollback, the state it left
    (never in cross_squash: each of its rollbacks unapplies a squash, which also unrecords what it
    replaces, or leaves the replaced path, whose graph is not the squash's); plain: no server does."""
    said = {name: [m["states"] for m in WARM_UP_LINE.finditer(run.stdout + run.stderr)] for name, run in runs.items()}
    assert set(said["default"]) == {"on, checked against Django's own"}, said
    assert set(said["plain"]) == {"skipped: TM_NO_WARM_STATES is set"}, said
    assert not runs["plain"].warm_state_uses
    uses = runs["default"].warm_state_uses
    rollbacks_leave_a_known_state = not ran_on(runs["default"], "cross_squash_project")
    assert {use: uses.count(use) > 0 for use in ("graph", "state", "left")} == {
        "graph": True, "state": True, "left": rollbacks_leave_a_known_state}, uses


def test_slots_serve_the_chains_with_one_server_each(runs):
    """Default: the chains' databases are created under slot names (-v: `PURPOSE: database
    NAME`), each slot's server started once however many databases took turns there (defects:
    more chains than workers, so some slot served several); plain: no slot at all."""
    said = {name: run.stdout + run.stderr for name, run in runs.items()}
    under_slots = [m["database"] for m in SLOT_DATABASE.finditer(said["default"])]
    slot_servers = [m["database"] for m in SERVER_READY.finditer(said["default"]) if SLOT_NAME.fullmatch(m["database"])]
    assert under_slots, said["default"]
    assert sorted(slot_servers) == sorted(set(under_slots)), (slot_servers, under_slots)
    assert len(slot_servers) <= 3  # --jobs 2 at most: 3 workers, a slot each
    assert not SLOT_NAME.search(said["plain"]), said["plain"]
    if ran_on(runs["default"], "defects_project"):
        assert len(under_slots) > len(set(under_slots)), under_slots
        processes = {name: run.require_report()["processes"] for name, run in runs.items()}
        assert processes["default"] < processes["plain"], processes


def test_both_leave_nothing(runs):
    for run in runs.values():
        assert_cleaned_up(run)
