"""Project states the step server renders once and hands to its forked `migrate` children.

Why: at 1,000 migrations a forked `manage.py migrate` spends most of its CPU re-deriving what its
step server can know before forking it (20 apps x 50 migrations, docs/performance.md): the
migration graph (`MigrationLoader.build_graph`), the project state of the applied migrations
(`MigrationExecutor._create_project_state`, a walk of every applied migration) and its rendering
(`ProjectState.apps`), and after a rollback the rendering of the state it leaves. A chain asks
for the same few states over and over: the state before a tested migration is its apply's start,
its rollback's result and its re-apply's start; the state with it is the rollback's start and the
next migration's apply.

What: before forking a `migrate` (`WarmStates.prepare`), the server reads which migrations its
database has applied (on a driver connection of its own, never Django's: `read_applied`) and,
unless it holds that set already, builds the loader and the rendered state of exactly that set
through Django's own code (`MigrationExecutor`, its loader answered the rows read, then
`_create_project_state(with_applied_migrations=True)` and `.apps`), keeping the last few (KEPT).
In the child, three of Django's methods look there first:

- `MigrationLoader.build_graph` still reads `django_migrations` itself; when the rows read are a
  set the server built, the loader takes (a copy of) the server's graph instead of building the
  same again;
- `MigrationExecutor._create_project_state(with_applied_migrations=True)` on that loader returns
  the server's rendered state;
- `MigrationExecutor._migrate_all_backwards` runs as Django's, and when what it leaves is the
  state the server built for the set left applied (see `left_by` for when), returns that one,
  rendered, so `migrate` does not render it again.

And `field_is_referenced` no longer searches for references while a state that is not rendered
is walked (`lazy_field_is_referenced`: the result is then never read).

Each is the state Django computes in that place: the same migrations mutated in the same order
(the full plan's, keeping the applied ones: what `_create_project_state` walks, and what
`_migrate_all_backwards` leaves when `left_by` says so), by Django's own code in the same process
image (the server is the child's parent). The child's memory is its own, so the child may change
what it is handed; a state is handed out once per child, a second asker computes its own.
Anything else takes Django's path.

Guarded: only where the methods this relies on (KNOWN_SOURCES: `MigrationLoader.__init__` and
`build_graph`, `MigrationExecutor._create_project_state`, `_migrate_all_backwards` and `migrate`,
`ProjectState.alter_field` and `reload_model`) are, character for character, the ones it was
written against (Django 4.2 to 6.1); any other source, or `TM_NO_WARM_STATES=1`
(the switch the tests compare with), leaves Django alone. The server's read runs with a statement
and lock time-out, and any error leaves that step to Django's path.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import hashlib
import inspect
import textwrap
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import django
from django.db import connections
from django.db.migrations import state as django_state
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.migrations.state import ProjectState

from .protocol import NO_WARM_STATES_ENV, WARM_STATES_CHECK_ENV, WARM_STATES_LOG_ENV

MigrationKey = tuple[str, str]

# How many applied sets the server keeps rendered: a chain needs two at a time (before and with
# the migration under test); the rest covers a step that failed and left the set as it was.
KEPT = 4
# Rendered states are frozen out of the collector's view with the server's other objects (so a
# child's collections do not scan them); one the server stops keeping is reclaimed by a full
# collection once this many are waiting, not at every step.
RECLAIM_AFTER = 8
# The server's own read of django_migrations must never hold a step up for long.
READ_TIMEOUT = "5s"
LOCK_TIMEOUT = "2s"
CONNECT_TIMEOUT_S = 5

# sha256 of `inspect.getsource` (dedented) of each method these patches stand on, per the Django
# versions they were read against (4.2.30, 5.0.14, 5.1.15, 5.2.19, 6.0.10, 6.1.3). Another source
# is another behaviour this module has not been checked against: Django's path is taken.
RENDERS_LEFT_AFRESH = "8c59cd9a5651b3ab5666487287d38e0cea19a4c2808e04cffa203efa8159b28b"  # 5.1-6.1 (del state.apps)
KNOWN_SOURCES: dict[str, frozenset[str]] = {
    "MigrationLoader.__init__": frozenset({
        "f2332282d86bbfff0f6f0a9637eda8fe9b64ced1cb52e41e08b4091c1ada1c58",  # 4.2-6.1
    }),
    "MigrationLoader.build_graph": frozenset({
        "7f114416cb7b95130500a006248aafdbb4d2a8aa0b70588afe44ef4a7a121472",  # 4.2-5.2
        "335cf86e25a5c998c729e547d7a2607f43cd140a792aa5e6724fe4d88eddcbf7",  # 6.0-6.1 (replace_migration)
    }),
    "MigrationExecutor._create_project_state": frozenset({
        "9acc9961d6ef7a199d0470fc7fa3ea4efd81fee02d2f56f68372adcff9b99222",  # 4.2-6.1
    }),
    "MigrationExecutor._migrate_all_backwards": frozenset({
        "d740b8ff01a50ce4b58371f5d82e37e760a168fac4c729b3cb3843489d8ff92c",  # 4.2-5.0
        RENDERS_LEFT_AFRESH,
    }),
    "MigrationExecutor.migrate": frozenset({
        "eaae27e20bbe439e5ef9fa9e4782b80b16f5541311bda62002b0c8522d794b28",  # 4.2-6.1
    }),
    "ProjectState.alter_field": frozenset({
        "463ebf6b187b5233b10ccfd7d7da82e4c63972905d5eea8db4675aa326f8dde3",  # 4.2-6.1
    }),
    "ProjectState.reload_model": frozenset({
        "9d1e6f031cdb535df2ec0883d801ece9ab6cf8e66a1b13b4cb5c3c854b81fad1",  # 4.2-6.1
    }),
}
OWNERS: dict[str, type] = {"MigrationLoader": MigrationLoader, "MigrationExecutor": MigrationExecutor,
                           "ProjectState": ProjectState}


def django_method(name: str) -> Callable[..., Any]:
    """The function Django defines as `Class.method` (vars(): private methods are not in the stubs)."""
    owner, method = name.split(".")
    function: Callable[..., Any] = vars(OWNERS[owner])[method]
    return function


# What MigrationLoader.__init__ sets from its arguments: a loader takes the server's graph only
# when these agree, and keeps its own.
LOADER_ARGUMENTS = ("connection", "load", "ignore_no_migrations", "replace_migrations")
WARM_ATTRIBUTE = "_migration_check_warm_state"
# The name django.db.migrations.state imports utils.field_is_referenced under (lazy_field_is_referenced).
REFERENCE_SEARCH = "field_is_referenced"


def source_digest(function: Callable[..., Any]) -> str | None:
    """sha256 of the function's source as written (dedented); None when Python cannot read it."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()


def unknown_methods(known: Mapping[str, frozenset[str]] = KNOWN_SOURCES) -> list[str]:
    """The guarded methods whose source is not one of `known`'s; `field_is_referenced` too when
    django.db.migrations.state calls it anywhere but in `alter_field` (lazy_field_is_referenced)."""
    unknown = [name for name in known if source_digest(django_method(name)) not in known[name]]
    try:
        calls = inspect.getsource(django_state).count(f"{REFERENCE_SEARCH}(")
    except (OSError, TypeError):
        calls = -1
    return unknown if calls == 1 else [*unknown, REFERENCE_SEARCH]


def lazy_field_is_referenced(original: Callable[..., bool]) -> Callable[..., bool]:
    """`field_is_referenced` for `ProjectState.alter_field`, its only caller: there it decides
    `delay`, which `reload_model` reads only when the state's models are rendered. Walking a state
    that is not (every applied migration, in `_create_project_state` and `_migrate_all_backwards`)
    it searched every model's fields for references at each AlterField, for nothing: 0.03-0.04 s
    of CPU per walk at 1,000 migrations. Not rendered: nothing is searched (the value is not read)."""

    def field_is_referenced(state: ProjectState, model_tuple: Any, field_tuple: Any) -> bool:
        if "apps" not in state.__dict__:
            return True
        return original(state, model_tuple, field_tuple)

    return field_is_referenced


@dataclass
class WarmState:
    """One applied set as the server built it: the rows read (`applied`), the loader built on
    them, and the rendered project state of those migrations."""

    applied: frozenset[MigrationKey]
    loader: MigrationLoader
    state: ProjectState
    handed: bool = False  # in a child: given out already (and maybe changed since)

    def take(self) -> ProjectState | None:
        """The rendered state for a child to use (and change), once: None after (`migrate` and
        its receivers change the state they get; a second taker computes its own)."""
        if self.handed:
            return None
        self.handed = True
        return self.state


def applied_keys(loader: MigrationLoader) -> frozenset[MigrationKey]:
    """What the loader counts as applied once its graph is built (a replacing migration whose
    replaced ones are all applied included)."""
    return frozenset(loader.applied_migrations)


def read_applied(connection: Any) -> dict[MigrationKey, Any]:
    """The rows of django_migrations, as `MigrationRecorder.applied_migrations` gives them, read
    on a driver connection of the server's own (the settings' parameters, a connect, statement
    and lock time-out). Not through Django's connection: its `connection_created` receivers
    would run in the server and their caches reach every child (contrib.postgres keeps the
    hstore and citext type ids per process), and a pooled connection (`OPTIONS["pool"]`) starts
    threads. Nothing of Django's connection is touched."""
    params = dict(connection.get_connection_params())
    params.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    record = MigrationRecorder.Migration
    table = record._meta.db_table
    driver = connection.Database.connect(**params)
    try:
        cursor = driver.cursor()
        cursor.execute(f"SET statement_timeout = '{READ_TIMEOUT}'")
        cursor.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [connection.ops.quote_name(table)])
        if not cursor.fetchone()[0]:
            return {}
        cursor.execute(f"SELECT id, app, name, applied FROM {connection.ops.quote_name(table)}")
        return {(app, name): record(id=id_, app=app, name=name, applied=applied)
                for id_, app, name, applied in cursor.fetchall()}
    finally:
        driver.close()


@contextlib.contextmanager
def recorded_as(rows: dict[MigrationKey, Any]) -> Iterator[None]:
    """While the block runs (in the server, which runs no other code meanwhile), every
    `MigrationRecorder.applied_migrations()` answers `rows` without a query: the loader the
    server builds is Django's own, on the rows it read."""
    original = MigrationRecorder.applied_migrations

    def applied_migrations(recorder: MigrationRecorder) -> dict[MigrationKey, Any]:
        return dict(rows)

    MigrationRecorder.applied_migrations = applied_migrations  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        MigrationRecorder.applied_migrations = original  # type: ignore[method-assign]


def leaves_the_applied_state(plan: Sequence[tuple[Any, bool]], full_plan: Sequence[tuple[Any, bool]]) -> bool:
    """Whether the state `_migrate_all_backwards` leaves after unapplying `plan` is the full plan
    filtered by what stays applied: Django starts from the state before the plan's last migration
    (which holds every migration of the plan before it in the full plan) and mutates it through
    the applied ones after it, so only when that last one comes first in the full plan, and no
    migration of the plan replaces others (it also unrecords them)."""
    if not plan or any(migration.replaces for migration, _ in plan):
        return False
    position = {(migration.app_label, migration.name): index for index, (migration, _) in enumerate(full_plan)}
    keys = [(migration.app_label, migration.name) for migration, _ in plan]
    if any(key not in position for key in keys):
        return False
    return position[keys[-1]] == min(position[key] for key in keys)


class WarmStateDiffers(AssertionError):
    """With TM_WARM_STATES_CHECK=1: a state handed out is not the one Django computed."""


def same_state(warm: ProjectState, django_own: ProjectState) -> bool:
    """Whether two project states hold the same models (ProjectState's own equality) and render
    the same ones."""
    def rendered(state: ProjectState) -> list[str]:
        return sorted(model._meta.label_lower for model in state.apps.get_models(include_auto_created=True))
    return bool(warm == django_own) and rendered(warm) == rendered(django_own)


class WarmStates:
    """The server's kept states, and the patches (`patch`) that use them in its children."""

    def __init__(self, alias: str = "default", freeze: bool = True, check: bool = False,
                 log_path: str = "") -> None:
        self.alias = alias
        self.freeze = freeze  # the server froze its objects (fork_server.warm_up): freeze these too
        self.check = check  # also compute Django's own state and raise WarmStateDiffers if it differs
        self.log_path = log_path  # the tests' record: a line per use (graph, state, left)
        self.used: dict[str, int] = {"graph": 0, "state": 0, "left": 0}  # in this process (a child's own)
        self.kept: OrderedDict[frozenset[MigrationKey], WarmState] = OrderedDict()
        self.failed: set[frozenset[MigrationKey]] = set()  # applied sets whose build raised
        self.in_child = False
        self.waiting = 0  # states no longer kept, not yet collected
        self.built = 0
        self.original_build_graph = django_method("MigrationLoader.build_graph")
        self.original_project_state = django_method("MigrationExecutor._create_project_state")
        self.original_backwards = django_method("MigrationExecutor._migrate_all_backwards")
        # Django 5.1+ renders the state a rollback leaves afresh (`del state.apps`): only then is
        # the server's rendered state what `migrate` would have.
        self.left_renders_afresh = source_digest(self.original_backwards) == RENDERS_LEFT_AFRESH
        self.original_field_is_referenced: Callable[..., bool] = vars(django_state)[REFERENCE_SEARCH]

    @classmethod
    def install(cls, environ: Mapping[str, str], freeze: bool) -> tuple[WarmStates | None, str]:
        """Patch Django (three methods and `field_is_referenced`, see the module's doc) and return
        the states the patches read, with what was done; None and why not when switched off or on
        a Django not known."""
        if environ.get(NO_WARM_STATES_ENV, "") not in ("", "0"):
            return None, f"skipped: {NO_WARM_STATES_ENV} is set"
        unknown = unknown_methods()
        if unknown:
            return None, (f"skipped: Django {django.get_version()}'s {', '.join(unknown)} differ from the "
                          "versions this was checked against")
        check = environ.get(WARM_STATES_CHECK_ENV, "") not in ("", "0")
        states = cls(freeze=freeze, check=check, log_path=environ.get(WARM_STATES_LOG_ENV, ""))
        states.patch()
        return states, "on, checked against Django's own" if check else "on"

    def patch(self) -> None:
        states = self

        def build_graph(loader: MigrationLoader) -> None:
            if states.adopt(loader):
                states.note("graph")
                if states.check:
                    states.check_graph(loader)
            else:
                states.original_build_graph(loader)

        def create_project_state(executor: MigrationExecutor, with_applied_migrations: bool = False) -> ProjectState:
            warm = states.warm_of(executor.loader) if with_applied_migrations else None
            state = warm.take() if warm is not None else None
            if warm is None or state is None:
                return states.original_project_state(executor, with_applied_migrations)
            states.note("state")
            if states.check and not same_state(state, states.original_project_state(executor, True)):
                raise WarmStateDiffers(f"the server's state of {len(warm.applied)} applied migration(s) is not "
                                       "the one Django computes")
            return state

        def migrate_all_backwards(executor: MigrationExecutor, plan: Sequence[tuple[Any, bool]],
                                  full_plan: Sequence[tuple[Any, bool]], fake: bool) -> ProjectState:
            state = states.original_backwards(executor, plan, full_plan, fake)
            left = states.left_by(executor.loader, plan, full_plan)
            warm = left.take() if left is not None else None
            if left is None or warm is None:
                return state
            states.note("left")
            if states.check and not same_state(warm, state):
                raise WarmStateDiffers(f"the server's state of {len(left.applied)} applied migration(s) is not "
                                       "the one Django leaves after the rollback")
            return warm

        replacements: dict[str, Callable[..., Any]] = {
            "MigrationLoader.build_graph": build_graph,
            "MigrationExecutor._create_project_state": create_project_state,
            "MigrationExecutor._migrate_all_backwards": migrate_all_backwards,
        }
        for name, replacement in replacements.items():
            owner, method = name.split(".")
            setattr(OWNERS[owner], method, replacement)
        setattr(django_state, REFERENCE_SEARCH, lazy_field_is_referenced(self.original_field_is_referenced))

    # --- in the server, before each fork ---

    def prepare(self, args: Sequence[str]) -> None:
        """Before forking `manage.py ARGS`: for a `migrate`, make sure the database's applied set
        is built. Never fails: whatever goes wrong leaves the step to Django's path."""
        if not args or args[0] != "migrate":
            return
        with contextlib.suppress(Exception):
            self.build(read_applied(connections[self.alias]))

    def build(self, rows: dict[MigrationKey, Any]) -> None:
        """Build the loader and the rendered state of the applied set `rows` (as read), unless
        it is kept already or failed before."""
        applied = frozenset(rows)
        if applied in self.kept:
            self.kept.move_to_end(applied)
            return
        if applied in self.failed:
            return
        try:
            with recorded_as(rows):  # the loader's read of django_migrations: the rows read above
                executor = MigrationExecutor(connections[self.alias])
            state = self.original_project_state(executor, with_applied_migrations=True)
            state.apps  # noqa: B018 - render it here, once, not in every child
        except Exception:
            self.failed.add(applied)  # e.g. models that do not render: the child says so itself
            raise
        self.kept[applied] = WarmState(applied, executor.loader, state)
        self.built += 1
        while len(self.kept) > KEPT:
            self.kept.popitem(last=False)
            self.waiting += 1
        if not self.freeze:
            return
        if self.waiting >= RECLAIM_AFTER:
            gc.unfreeze()
            gc.collect()
            self.waiting = 0
        gc.freeze()

    # --- in the child ---

    def adopt(self, loader: MigrationLoader) -> bool:
        """In a child: read the applied rows as Django does and, when the server built that set
        with the same loader arguments, give `loader` the server's graph. False: build it."""
        if not self.in_child or loader.connection is None:
            return False
        rows = MigrationRecorder(loader.connection).applied_migrations()
        warm = self.kept.get(frozenset(rows))
        if warm is None or any(getattr(loader, name, None) != getattr(warm.loader, name, None)
                               for name in LOADER_ARGUMENTS if name != "connection"):
            return False
        if warm.loader.connection is None or loader.connection.alias != warm.loader.connection.alias:
            return False
        for name, value in vars(warm.loader).items():
            if name not in LOADER_ARGUMENTS:
                setattr(loader, name, value)
        # A graph of its own (sharing the server's nodes): what a caller sets on it (stages.py
        # answers a build stage's leaves) stays on it, and warm_of sees it.
        loader.graph = copy.copy(warm.loader.graph)
        # build_graph's own result: the server's keys (a replacing migration marked applied), with
        # the records this read returned.
        applied: dict[MigrationKey, Any] = {key: rows.get(key, value)
                                            for key, value in warm.loader.applied_migrations.items()}
        loader.applied_migrations = applied
        setattr(loader, WARM_ATTRIBUTE, (warm, loader.graph))
        return True

    def note(self, use: str) -> None:
        self.used[use] += 1
        if self.log_path:
            with open(self.log_path, "a", encoding="utf-8") as log:  # one short line: atomic with O_APPEND
                log.write(f"{use}\n")

    def check_graph(self, loader: MigrationLoader) -> None:
        """TM_WARM_STATES_CHECK: build the graph as Django does and compare."""
        own = MigrationLoader.__new__(MigrationLoader)
        own.__dict__.update({name: getattr(loader, name) for name in LOADER_ARGUMENTS if hasattr(loader, name)})
        self.original_build_graph(own)
        if (own.graph.nodes.keys() != loader.graph.nodes.keys()
                or {key: sorted(parent.key for parent in node.parents) for key, node in own.graph.node_map.items()}
                != {key: sorted(parent.key for parent in node.parents) for key, node in loader.graph.node_map.items()}
                or own.applied_migrations.keys() != loader.applied_migrations.keys()):
            raise WarmStateDiffers("the server's migration graph is not the one Django builds")

    def warm_of(self, loader: MigrationLoader) -> WarmState | None:
        """The server's state for this loader, if it took the server's graph and its applied set
        has not changed since."""
        adopted: tuple[WarmState, Any] | None = getattr(loader, WARM_ATTRIBUTE, None)
        if adopted is None:
            return None
        warm, graph = adopted
        if loader.graph is not graph or vars(graph).keys() != vars(warm.loader.graph).keys():
            return None  # another graph, or one answering other leaves (stages.graph_leaves)
        return warm if applied_keys(loader) == applied_keys(warm.loader) else None

    def left_by(self, loader: MigrationLoader, plan: Sequence[tuple[Any, bool]],
                full_plan: Sequence[tuple[Any, bool]]) -> WarmState | None:
        """After a rollback of `plan`: the server's state of the set it leaves applied, when
        that is the state Django leaves. Django starts from the state before the plan's last
        migration and mutates it through the applied migrations after it in the full plan: the
        full plan filtered by what is applied only when no migration of the plan comes before
        that last one in the full plan (a rollback across two branches of an app unapplies one
        that does, and Django's state keeps its models). Never after unapplying a replacing
        migration (it also unrecords what it replaces), and only where Django renders that state
        afresh (5.1+: `del state.apps`; before, it re-rendered the one it had)."""
        warm = self.warm_of(loader)
        if warm is None or not self.left_renders_afresh or not leaves_the_applied_state(plan, full_plan):
            return None
        unapplied = {(migration.app_label, migration.name) for migration, _ in plan}
        left = self.kept.get(warm.applied - unapplied)
        if left is None or left.loader.graph.nodes.keys() != loader.graph.nodes.keys():
            return None
        if applied_keys(left.loader) != applied_keys(loader) - unapplied:
            return None
        return left

    def enter_child(self) -> None:
        self.in_child = True
