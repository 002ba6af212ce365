"""A stand-in for a chain's scratch database, for unit tests of the window without PostgreSQL.

It keeps the set of applied migrations and moves it the way `manage.py migrate APP TARGET`
does (forward: the target and what it needs; backward to a parent: every migration of the app
after it, with everything that depends on them). The schema it reports is one entry per
applied migration plus anything a test leaves behind (`leftovers`), so a rollback that brings
the schema back is "identical". Steps can be made to fail by (app, target, occurrence).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from migration_check.config import MigrationKey
from migration_check.processes.steps import StepResult
from migration_check.project.discovery import (
    MigrationInfo,
    OperationInfo,
    Project,
    dependency_closure,
    dependents_closure,
)
from migration_check.proofs.compat.statements import Lookup, Outcome, Resolved, Statement
from migration_check.proofs.data.seeding import SeedReport


def migration(app: str, name: str, *dependencies: MigrationKey, reversible: bool = True,
              replaces: tuple[MigrationKey, ...] = (), atomic: bool = True) -> MigrationInfo:
    return MigrationInfo(app, name, None, tuple(dependencies), replaces,
                         (OperationInfo("RunPython", reversible, f"operation of {name}"),), atomic)


def project_of(*migrations: MigrationInfo) -> Project:
    return Project("postgresql", {}, list(migrations))


def ok_step(args: Sequence[str] = ()) -> StepResult:
    return StepResult(["manage.py", *args], 0, "", "", 0.1)


def failed_step(message: str = "django.db.utils.ProgrammingError: boom", timed_out: bool = False) -> StepResult:
    return StepResult(["manage.py"], None if timed_out else 1, "", message, 0.1, timed_out, 5.0)


@dataclass
class FakeDatabase:
    project: Project
    failures: dict[tuple[str | None, str | None, int], StepResult] = field(default_factory=dict)
    applied_keys: set[MigrationKey] = field(default_factory=set)
    leftovers: dict[str, dict[str, str]] = field(default_factory=dict)
    calls: list[tuple[str | None, str | None]] = field(default_factory=list)
    builds: list[list[str]] = field(default_factory=list)  # the window of each build
    closed: bool = False
    # The compat check: the models `build` describes on both sides of every migration, and the
    # outcome of a statement given what is applied (None: it succeeds).
    compat_models: list[dict] | None = None
    compat_outcome: Callable[[set[MigrationKey], Statement], Outcome] = lambda applied, statement: None
    compat_runs: list[tuple[frozenset[MigrationKey], int]] = field(default_factory=list)

    def build(self, app: str, targets: Sequence[MigrationKey], window: Sequence[str]) -> tuple[StepResult, dict]:
        """Like a fresh database built forward to `targets` (the fake is reused for every chain)."""
        self.builds.append(list(window))
        self.applied_keys, self.leftovers, self.closed = set(), {}, False
        for target in targets:
            self.applied_keys |= dependency_closure([target], self.project.dependencies())
        empty = {"tables_before": {}, "tables_after": {}, "effects": []}
        if self.compat_models is not None:
            empty |= {"models_before": self.compat_models, "models_after": self.compat_models}
        return ok_step(["shell"]), {name: empty for name in window}

    def migrate(self, app: str | None = None, target: str | None = None) -> StepResult:
        self.calls.append((app, target))
        failure = self.failures.get((app, target, self.calls.count((app, target))))
        if failure is not None:
            return failure
        deps = self.project.dependencies()
        if app is None:
            self.applied_keys = {m.key for m in self.project.plan}
        elif target == "zero" or (app, target) in self.applied_keys:
            after = [m.key for m in self.project.migrations_of(app)
                     if target == "zero" or (app, target) in m.dependencies]
            self.applied_keys -= dependents_closure(after, deps)
        else:
            self.applied_keys |= dependency_closure([(app, target)], deps)
        return ok_step(["migrate", app or "", target or ""])

    def applied(self) -> set[MigrationKey]:
        return set(self.applied_keys)

    def schema(self) -> dict[str, dict[str, str]]:
        return {f"table {app}_{name}": {"definition": "r"} for app, name in sorted(self.applied_keys)} | self.leftovers

    def columns(self) -> dict[str, set[str]]:
        return {}

    def fingerprint(self, ignore_columns: dict[str, set[str]]) -> dict:
        return {}

    def seed(self, tables: Sequence[str], profiles: Sequence[str], round_token: int | None = None,
             choices: object = None) -> SeedReport:
        return SeedReport()

    def empty_tables(self) -> None:
        pass

    def unique_keys(self) -> dict[str, set[tuple[str, ...]]]:
        return {}

    def repeat_key(self, table: str, key: Sequence[str], report: SeedReport, choices: object = None) -> str | None:
        return None

    def end_stray_sessions(self) -> None:
        pass

    def compat_resolve(self, lookups: Sequence[Lookup]) -> Resolved:
        return {lookup: ("1",) * len(lookup.columns) for lookup in lookups}

    def compat_run(self, statements: Sequence[Statement]) -> list[Outcome]:
        self.compat_runs.append((frozenset(self.applied_keys), len(statements)))
        return [self.compat_outcome(set(self.applied_keys), statement) for statement in statements]

    def begin_observation(self, tables: Sequence[str], volume: int | None) -> None:
        return None  # no server to watch: locks, rewrites and statements stay not_checked

    def end_observation(self, fill: None) -> tuple[None, list[str]]:
        return None, []

    def close(self) -> None:
        self.closed = True
