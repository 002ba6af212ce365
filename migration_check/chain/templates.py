"""Build once, clone many: the state every chain starts from, built once per run as a template.

Every chain's database is built forward to the state just before the migrations it tests. Those
states differ, but they all contain one common base: the plan without the windows' migrations
and what depends on them (`common_base`). That base is built once per run, in a scratch database
of its own (the template), and each chain's database is then created with
`CREATE DATABASE ... TEMPLATE` and migrated forward through the difference only (`Route`).

The database a chain gets must be the one building would give, row for row (content types,
permissions and whatever `post_migrate` handlers or data migrations write, with their serial
numbers). So the `migrate` commands are the same whether or not a template is cloned: first one
to the targets of the base, then one to the targets of the rest (`route_through`; each stage one
`migrate`, inside_django/stages.py). With `--no-clone` the same two stages run in each chain's
own `prepare` child, from an empty database; with cloning the first stage ran once, in the
template's. A state that does not contain the base (none of the chains', but a caller may ask for
one) is built from scratch as before, in one stage. With many apps the templates are a tree
(`template_tree`): below the root, a template per half of the apps' windows, cloned from its
parent's; a chain clones the deepest on its way, and `--no-clone` stages through the same states.

No session may be connected to a database while it is cloned (PostgreSQL refuses, after
waiting 5 s): the template's step server is stopped and any backend its `prepare` child left is
ended before the first clone, and the tool never connects to the template itself. The template
is an ordinary scratch database (SCRATCH_PREFIX, this run's id, purpose `template`; not marked
`IS_TEMPLATE`, which the owner does not need to clone it and which would make a plain
`DROP DATABASE` refuse it): the run drops it at the end like any other, and the watchdog and the
start-up sweep find it by its name after a hard kill.

Each database `Builds.open` creates takes a slot's name when one of its kind is free
(chain/slots.py): the step server that name already has, if any, serves it too.

Owns: `common_base`, `template_tree`, `path_to`, `route_through` and `Route`,
`Builds` (the run's templates, its slots and the route of every build),
`clone_strategy`.

Uses: config, discovery, log, server, steps, slots, inside_django.protocol (the prepare request).
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..config import MigrationKey
from ..inside_django.protocol import PrepareRequest
from ..log import Log
from ..postgres.server import Server
from ..processes.steps import StepRunner
from ..project.discovery import MigrationInfo, Project, dependency_closure, dependents_closure, forward_targets
from .slots import CLONE_START, EMPTY_START, Slots

# How PostgreSQL 15+ copies the template (`CREATE DATABASE ... STRATEGY`): FILE_COPY copies the
# files between two checkpoints, WAL_LOG (15's default) copies block by block through the WAL.
# Chosen by measurement (docs/performance-cloning.md): on upstream's template and on a synthetic
# 1,000-migration one they were equal within the noise (about 0.34 s and 1.0 s a clone); WAL_LOG
# forces no checkpoint, which on a server shared with other work slows every session, not ours only.
CLONE_STRATEGY = "WAL_LOG"
STRATEGY_SINCE_VERSION_NUM = 150000  # 13 and 14 know one way only and no STRATEGY option
TEMPLATE_PURPOSE = "template"
# In `auto` mode, the fewest migration builds a template must save (see worth_a_template):
# upstream's base (37 migrations, 2 chains) does not pay: measured 12 % slower with a template
# than without (docs/performance-cloning.md); 20 x 50 at depth 5 (900, 20 chains) took 0.58x.
MIN_SAVED_MIGRATIONS = 100
# The same for a template of the tree cloned from another (template_tree): it also delays every
# chain below it by a level of builds. Measured (alternated runs): on 10 x 20 a half's template
# saving 100 builds did not pay (3 pairs: wall and CPU within the noise, 2 of 3 slower); on 20 x 50
# the halves' (450 each) took the run from 82-87 s to 75-78 s, and quarters (100 each) below them
# to 73-74 s, within the noise of two pairs.
MIN_SAVED_BY_A_CHILD = 200


@dataclass(frozen=True)
class Route:
    """How to reach a state: the database to clone (None: start from an empty one), then the
    `migrate APP NAME` targets to run on it, in order, in stages: `stage_starts` says where each
    stage after the first starts (the prepare child runs one `migrate` per stage:
    inside_django/stages.py)."""

    template: str | None
    targets: list[MigrationKey]
    stage_starts: tuple[int, ...] = ()


def common_base(project: Project, windows: Iterable[Sequence[MigrationInfo]]) -> frozenset[MigrationKey]:
    """What every chain's database starts from: the plan without the windows' migrations and
    everything that depends on one of them (so it is inside every state a chain is built to,
    including a blocked migration's own, just before it)."""
    keys = [m.key for window in windows for m in window]
    excluded = dependents_closure(keys, project.dependencies())
    return frozenset(m.key for m in project.plan) - excluded


def route_through(project: Project, levels: Sequence[frozenset[MigrationKey]], targets: Sequence[MigrationKey],
                  template: str | None = None, cloned: int = 0) -> Route:
    """The build of the state `targets` reach from an empty database, staged through `levels`
    (nested states, each containing the one before: a path down the template tree), the first
    `cloned` of them already in `template` (0: from an empty database). One stage per level
    that adds something, then one to `targets`.

    `targets` may end with migrations outside the plan (those a squash replaces): they stay at
    the end, in their order. Only the levels the state contains are staged (none: `targets` as
    they are, from an empty database, even with a template).
    """
    state = state_of(project, targets)
    in_plan = {m.key for m in project.plan}
    extra = [t for t in targets if t not in in_plan]
    inside = list(itertools.takewhile(lambda level: level <= state, levels))
    if not inside:
        return Route(None, list(targets))
    cloned = min(cloned, len(inside)) if template is not None else 0
    below: frozenset[MigrationKey] = inside[cloned - 1] if cloned else frozenset()
    stages = []
    for level in inside[cloned:]:
        if level - below:
            stages.append(forward_targets(project.plan, level - below))
        below = level
    stages.append(forward_targets(project.plan, state - below) + extra)
    stages = [stage for stage in stages if stage]  # a level that is the whole state: nothing after it
    flat = [target for stage in stages for target in stage]
    starts = tuple(itertools.accumulate(len(stage) for stage in stages[:-1]))
    return Route(template if cloned else None, flat, starts)


def state_of(project: Project, targets: Sequence[MigrationKey]) -> frozenset[MigrationKey]:
    """What the plan's migrations among `targets` need applied: the state they reach."""
    in_plan = {m.key for m in project.plan}
    return frozenset(dependency_closure([t for t in targets if t in in_plan], project.dependencies()))


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def worth_a_template(chains: int, base: int, mode: str = "auto", least: int = MIN_SAVED_MIGRATIONS) -> bool:
    """Whether to build a template of a base of `base` migrations for `chains` chains (`least`:
    the builds it must save in `auto` mode).

    `never`: no. Otherwise there must be a base and two chains (for one, its build would be the
    same work plus a clone); `auto` also wants the builds it saves (every chain but one builds
    the base no more) to outweigh what it adds on the run's critical path (a step server's
    start, the build itself before any chain starts, a clone per chain): measured on this
    project, about MIN_SAVED_MIGRATIONS migrations' worth.
    """
    if mode == "never" or chains < 2 or base == 0:
        return False
    return mode == "always" or (chains - 1) * base >= least


@dataclass(frozen=True)
class TemplateNode:
    """A template of the tree: the state it holds, the node it is cloned from (None: the root,
    built from an empty database) and how many chains start from it or below it."""

    state: frozenset[MigrationKey]
    parent: int | None
    chains: int


def template_tree(project: Project, windows: Sequence[Sequence[MigrationInfo]], chains: Sequence[int],
                  mode: str = "auto") -> list[TemplateNode]:
    """The templates worth building for these app windows (`chains[i]` chains test
    `windows[i]`), parents before children; empty when not even the root is worth it.

    The root holds what every chain starts from (`common_base`). Then the windows are split in
    halves, in order: a half's template holds what every chain of that half starts from (the
    root plus the other half's windows and whatever else none of its windows needs out), is
    cloned from its parent's, and is built when `worth_a_template` says the migrations it adds
    are worth it for its chains (MIN_SAVED_BY_A_CHILD); and so on down each half it keeps. A
    chain then clones the deepest template on its way and migrates only its own half's other
    windows. On 20 apps x 50 migrations each chain's clone of the root migrated through the 19
    other apps' windows, 380 window builds a run; with the halves' templates, 200.
    """
    root = common_base(project, windows)
    if not worth_a_template(sum(chains), len(root), mode):
        return []
    nodes = [TemplateNode(root, None, sum(chains))]

    def split(parent: int, members: list[int]) -> None:
        if len(members) < 2:
            return
        half = (len(members) + 1) // 2
        for group in (members[:half], members[half:]):
            state = common_base(project, [windows[i] for i in group])
            node = TemplateNode(state, parent, sum(chains[i] for i in group))
            if worth_a_template(node.chains, len(state - nodes[parent].state), mode, MIN_SAVED_BY_A_CHILD):
                nodes.append(node)
                split(len(nodes) - 1, group)

    split(0, list(range(len(windows))))
    return nodes


def path_to(nodes: Sequence[TemplateNode], state: frozenset[MigrationKey]) -> list[int]:
    """The nodes from the root down to the deepest one whose state `state` contains."""
    path: list[int] = []
    current: int | None = None
    while True:
        inside = [index for index, node in enumerate(nodes) if node.parent == current and node.state <= state]
        if not inside:
            return path
        current = inside[0]
        path.append(current)


def depth_of(nodes: Sequence[TemplateNode], index: int) -> int:
    parent = nodes[index].parent
    return 0 if parent is None else 1 + depth_of(nodes, parent)


def clone_strategy(server_version_num: int) -> str | None:
    """The STRATEGY option for this server, None where it has none."""
    return CLONE_STRATEGY if server_version_num >= STRATEGY_SINCE_VERSION_NUM else None


class Builds:
    """The run's templates (the tree `plan_tree` is given, built by `build_template`, dropped by
    `close`), its slots and the route of every chain's build. Safe to use from several threads."""

    def __init__(self, server: Server, runner: StepRunner, project: Project, log: Log) -> None:
        self.server = server
        self.runner = runner
        self.project = project
        self.log = log
        self.nodes: list[TemplateNode] = []  # plan_tree: none, each build straight to its targets
        self.templates: dict[int, str] = {}  # node -> its database, once built
        self.slots: Slots | None = None  # use_slots
        self.strategy = clone_strategy(int(str(server.scalar("SHOW server_version_num"))))
        self._lock = threading.Lock()

    @property
    def template(self) -> str | None:
        """The root template's database, once built."""
        with self._lock:
            return self.templates.get(0)

    def plan_tree(self, nodes: Sequence[TemplateNode]) -> None:
        """The templates builds go through (`template_tree`): each build is staged down the
        tree, cloning the deepest template built on its way (none built, with --no-clone: every
        stage from an empty database, so both give the same database); no nodes: each build goes
        straight to its targets."""
        self.nodes = list(nodes)

    def route(self, targets: Sequence[MigrationKey], clone: bool = True) -> Route:
        """The build of `targets`' state: from a clone of the deepest template built on its way
        down the tree (or, `clone` False, from an empty database), through the same stages."""
        path = path_to(self.nodes, state_of(self.project, targets))
        with self._lock:
            cloned = len(list(itertools.takewhile(lambda index: index in self.templates, path))) if clone else 0
            template = self.templates[path[cloned - 1]] if cloned else None
        return route_through(self.project, [self.nodes[index].state for index in path], targets, template, cloned)

    def build_template(self, jobs: int = 1) -> None:
        """Build the tree's templates (see `template_tree` for which), a level at a time, the
        templates of a level side by side on `jobs` threads. A template that cannot be built is
        dropped, and so are its children: their chains clone its parent (or build from scratch)
        and say why themselves."""
        levels: dict[int, list[int]] = {}
        for index in range(len(self.nodes)):
            levels.setdefault(depth_of(self.nodes, index), []).append(index)
        for depth in sorted(levels):
            with self._lock:
                ready = [index for index in levels[depth]
                         if self.nodes[index].parent is None or self.nodes[index].parent in self.templates]
            if len(ready) == 1 or jobs == 1:
                for index in ready:
                    self.build_node(index)
                continue
            pool = ThreadPoolExecutor(max_workers=min(jobs, len(ready)), thread_name_prefix="template")
            try:
                list(pool.map(self.build_node, ready))
            except BaseException:  # Ctrl-C, a fault: the builds' steps end now, nothing new starts
                self.runner.kill_all()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def build_node(self, index: int) -> None:
        """Build one template: the root from an empty database, another as a clone of its
        parent's, migrated through what it adds in one stage."""
        node = self.nodes[index]
        with self._lock:
            parent = self.templates.get(node.parent) if node.parent is not None else None
        below = self.nodes[node.parent].state if node.parent is not None else frozenset()
        try:
            with self.runner.times.measure("CREATE DATABASE ... TEMPLATE" if parent else "CREATE DATABASE"):
                name = self.server.create_database(TEMPLATE_PURPOSE, parent, self.strategy if parent else None)
        except self.server.psycopg2.Error as error:
            self.log.info(f"creating a template failed ({first_line(error)}); its chains build their databases "
                          "without it")
            return
        url = self.server.url_for(name)
        targets = forward_targets(self.project.plan, set(node.state - below))
        self.log.detail(f"building the template {name}: {len(node.state)} migration(s), "
                        f"{len(node.state - below)} on {parent or 'an empty database'}, for {node.chains} chain(s)")
        request: PrepareRequest = {"app": "", "targets": [list(t) for t in targets], "window": []}
        try:
            step, response = self.runner.run_inside_django("prepare", request, url)
        finally:
            # Nobody may be connected while it is cloned: its step server goes now, and a
            # backend its prepare child left behind (its exit is not waited for) is ended.
            self.runner.release(url)
        if response is None:
            self.log.info(f"building a template failed ({step.error_summary()}); its chains build their "
                          "databases without it")
            self.drop(name)
            return
        self.server.end_sessions(name)
        with self._lock:
            self.templates[index] = name

    def open(self, purpose: str, targets: Sequence[MigrationKey]) -> tuple[str, Route]:
        """A new scratch database for the state `targets` reach from an empty one: its name, and
        the route still to take there (a clone of the template needs only the rest).
        A clone the server refuses is reported, and the database built from scratch instead."""
        chosen = self.route(targets)
        if chosen.template is not None:
            try:
                with self.runner.times.measure("CREATE DATABASE ... TEMPLATE"):
                    return self.create(purpose, chosen.template), chosen
            except self.server.psycopg2.Error as error:
                self.log.info(f"cloning the template for {purpose} failed ({first_line(error)}); "
                              "its database is built from scratch")
                chosen = self.route(targets, clone=False)
        with self.runner.times.measure("CREATE DATABASE"):
            return self.create(purpose, None), chosen

    def create(self, purpose: str, template: str | None) -> str:
        """A database for `purpose`, cloned from `template` or empty: under a free slot's name
        when there is one of its kind (chain/slots.py), else under a name of its own."""
        slot = self.slots.take(CLONE_START if template else EMPTY_START) if self.slots is not None else None
        try:
            name = self.server.create_database(purpose, template, self.strategy if template else None, slot)
        except BaseException:
            if slot is not None and not self.exists(slot):  # nothing has its name: free again
                self.free(slot)
            raise
        if slot is not None:
            self.log.detail(f"  {purpose}: database {name}")
        return name

    def exists(self, name: str) -> bool:
        """Whether a database is named `name` (True when that cannot be told: the name is then
        not used again)."""
        try:
            return bool(self.server.scalar("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)))
        except Exception:
            return True

    def use_slots(self, count: int) -> None:
        """Open databases under `count` slot names from now on (chain/slots.py)."""
        if count > 0:
            self.slots = Slots(self.server, self.runner, count)

    def is_slot(self, name: str) -> bool:
        """Whether `name` is a slot's: its step server stays when its database is dropped."""
        return self.slots is not None and self.slots.owns(name)

    def free(self, name: str) -> None:
        """The database named `name` is dropped: a slot's name may be used again."""
        if self.slots is not None:
            self.slots.give_back(name)

    def drop(self, name: str) -> None:
        with contextlib.suppress(Exception), self.runner.times.measure("DROP DATABASE"):
            self.server.drop_database(name)

    def close(self) -> None:
        with self._lock:
            names, self.templates = list(self.templates.values()), {}
        for name in names:
            self.drop(name)
        if self.slots is not None:
            self.slots.close()
