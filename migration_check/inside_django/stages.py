"""Build a stage of a scratch database's state with one `migrate` command, not one per app.

A chain's database is built through a few stages (the template's base, then the rest: see
chain/templates.py), each a set of `migrate APP NAME` targets, one per app. Run one command per
target and every command loads the graph, builds the project state of everything applied and
renders its models three times, before and after its few migrations: with k apps that is k - 1
full renders per chain, k^2 per run, and on a project of 1,000 migrations the build of each chain
cost more than testing its migrations.

`manage.py migrate` with no argument already migrates to several targets at once: the leaves of
the graph (`MigrationGraph.leaf_nodes`), through the same plan, pre/post_migrate signals and
renders as with one. So a stage is one plain `migrate` whose graph answers, as its leaves, the
leaves of what the database will hold once the stage is done (what is applied, plus the
targets and what they need): Django plans exactly the targets' missing migrations, in the order
it would (the forward plan of each target in turn, as the commands one by one would apply them),
builds the state from everything applied, and sends post_migrate once, as a deploy's one
`migrate` does. Only the command's own graph answers so (the first one built once the command
starts, its executor's); every other graph, e.g. one a post_migrate handler builds, is Django's.

It leans on one thing Django does not promise, that `migrate` takes its targets from
`leaf_nodes()` of its executor's graph (it has since Django 1.7), so it is checked, and a stage
falls back to one `migrate APP NAME` per target when it cannot be done that way:
- a Django outside the versions the tool supports (4.2 to 6.1; `checked_django`);
- an app would have two leaves (a branch the stage stops inside): `migrate` would refuse it as a
  conflict;
- the project's graph has a real conflict: each command then fails as `manage.py migrate` does;
- TM_BUILD_PER_TARGET=1 in the tool's environment (the tests compare both ways).
After the command, what is applied must be exactly the stage's state, or the build fails.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

from django import VERSION
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.graph import MigrationGraph
from django.db.migrations.loader import MigrationLoader

from .protocol import BUILD_PER_TARGET_ENV

Key = tuple[str, str]
# The Django versions the tool supports, where `migrate` takes its targets from `leaf_nodes()`.
FIRST_CHECKED, LAST_CHECKED = (4, 2), (6, 1)


class StageMismatch(RuntimeError):
    """The one `migrate` of a stage applied something else than the stage's state."""


def migrate_stage(targets: Sequence[Key]) -> None:
    """Migrate the database forward to every one of `targets` (and what they need)."""
    if len(targets) > 1 and not per_target_asked():
        loader = MigrationLoader(connections[DEFAULT_DB_ALIAS])
        expected = state_after(loader, targets)
        leaves = stage_leaves(loader.graph, expected)
        if can_take_one_pass(loader, leaves):
            migrate_once(targets, leaves, expected)
            return
    for app_label, name in targets:
        call_command("migrate", app_label, name, verbosity=0, interactive=False, skip_checks=True)


def migrate_once(targets: Sequence[Key], leaves: Sequence[Key], expected: set[Key]) -> None:
    """One `migrate` whose graph's leaves are `leaves`; then what is applied must be `expected`."""
    with graph_leaves(leaves):
        call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
    applied = applied_in_graph(MigrationLoader(connections[DEFAULT_DB_ALIAS]))
    if applied != expected:
        raise StageMismatch(f"one migrate to {sorted(targets)} left {sorted(applied ^ expected)} "
                            f"{'applied' if applied > expected else 'not applied'}; "
                            f"set {BUILD_PER_TARGET_ENV}=1 to build one target at a time")


def applied_in_graph(loader: MigrationLoader) -> set[Key]:
    """What is applied, as nodes of the graph (a squash whose replaced migrations are all
    recorded is a node; the replaced ones are not)."""
    return {key for key in loader.applied_migrations if key in loader.graph.nodes}


def state_after(loader: MigrationLoader, targets: Sequence[Key]) -> set[Key]:
    """What is applied once every target is: what is now, plus each target and its ancestors."""
    state = applied_in_graph(loader)
    for target in targets:
        state.update(loader.graph.forwards_plan(target))
    return state


def stage_leaves(graph: MigrationGraph, state: set[Key]) -> list[Key]:
    """The leaves of `state` as Django counts a graph's leaves (`leaf_nodes`): each node with no
    child of its own app in it, sorted as Django sorts them."""
    return sorted(key for key in state
                  if not any(child[0] == key[0] and child in state for child in graph.node_map[key].children))


def per_target_asked() -> bool:
    return os.environ.get(BUILD_PER_TARGET_ENV, "") not in ("", "0")


def checked_django(version: tuple[int, int]) -> bool:
    """Whether `migrate` is known to take its targets from its graph's `leaf_nodes()` in this
    Django (it has since 1.7; checked on 4.2 and 5.2); a newer one takes the plain path until
    checked."""
    return FIRST_CHECKED <= version <= LAST_CHECKED


def can_take_one_pass(loader: MigrationLoader, leaves: Sequence[Key],
                      version: tuple[int, int] = (VERSION[0], VERSION[1])) -> bool:
    """Whether one `migrate` can build the stage (see the module docstring): a checked Django,
    no app with two leaves, no real conflict in the project's graph, and a graph that has
    `leaf_nodes`."""
    apps = [app_label for app_label, _ in leaves]
    return (checked_django(version) and len(apps) == len(set(apps)) and not loader.detect_conflicts()
            and callable(getattr(MigrationGraph, "leaf_nodes", None)))


@contextlib.contextmanager
def graph_leaves(leaves: Sequence[Key]) -> Iterator[None]:
    """While the block runs, the next graph Django builds answers `leaves` as its leaf nodes
    (per app when asked for one); every later one is Django's own."""
    original = MigrationLoader.build_graph

    def build_graph_once(loader: MigrationLoader) -> None:
        MigrationLoader.build_graph = original  # type: ignore[method-assign]
        original(loader)

        def leaf_nodes(app: str | None = None) -> list[Key]:
            return [key for key in leaves if app is None or key[0] == app]

        loader.graph.leaf_nodes = leaf_nodes

    MigrationLoader.build_graph = build_graph_once  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        MigrationLoader.build_graph = original  # type: ignore[method-assign]
