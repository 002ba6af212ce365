"""The compat check of one migration, in step with the chain (see `compat` for what it proves).

The statements are first run where their code belongs (the baseline), then where it runs
during the deploy; both moments come from the chain's own steps, so the check adds no
`manage.py` process:

    previous release (the default):  baseline before `apply`, over the pre-release rows;
                                     checked right after `apply`, over the same rows
    post-deploy migration:           baseline right after `apply`;
                                     checked after the rollback, on the schema before it

`not_checked` when the check is off (`--no-compat`, or `--no-data`: there are no pre-release
rows to run over), when the migration could not be applied over the pre-release data, or
(post-deploy) when its rollback did not succeed.

Owns: `CompatCheck` (when to run what, and writing `compat`, `compat_direction`,
`compat_acknowledged` and the findings into the migration's result).

Uses: config, compat (statements, verdict), discovery (MigrationInfo), results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .compat import (
    NEW_ON_OLD,
    OLD_ON_NEW,
    Attempt,
    Lookup,
    Probe,
    Resolved,
    Statement,
    accepted,
    build_probes,
    compat_plan,
    judge_compat,
    lookups_for,
)
from .config import MARKER_ALLOW_BREAKING, Config
from .discovery import MigrationInfo
from .inside_django.protocol import WindowMigration
from .results import MigrationResult


class CompatDatabase(Protocol):
    """What the check needs of the chain's database (see scratch.ScratchDatabase)."""

    def compat_resolve(self, lookups: Sequence[Lookup]) -> Resolved: ...
    def compat_run(self, groups: Sequence[Sequence[Statement]]) -> list[Attempt | None]: ...


class CompatCheck:
    """One migration's check; the chain calls the three hooks in the order of its steps."""

    def __init__(self, config: Config, database: CompatDatabase, migration: MigrationInfo, meta: WindowMigration,
                 result: MigrationResult) -> None:
        self.config = config
        self.database = database
        self.migration = migration
        self.result = result
        self.plan = compat_plan(meta) if config.check_compat and config.check_data else None
        self.probes: list[Probe] | None = None
        self.baseline: list[Attempt | None] = []

    def before_apply(self) -> None:
        if self.plan is not None and self.plan.direction == OLD_ON_NEW:
            self.run_baseline()

    def after_apply(self) -> None:
        """Right after `apply`; the check only counts when it ran over the pre-release data."""
        if self.plan is None or self.result.apply != "passed":
            self.probes = None
        elif self.plan.direction == OLD_ON_NEW:
            self.run_check()
        else:
            self.run_baseline()

    def after_rollback(self) -> None:
        """After a successful rollback: the schema before the migration, with the new code."""
        if self.plan is not None and self.plan.direction == NEW_ON_OLD:
            self.run_check()

    def run_baseline(self) -> None:
        assert self.plan is not None
        resolved = self.database.compat_resolve(lookups_for(self.plan.models))
        self.probes = build_probes(self.plan.models, resolved)
        self.baseline = self.database.compat_run([probe.candidates for probe in self.probes])

    def run_check(self) -> None:
        if self.plan is None or self.probes is None:
            return
        tested = self.database.compat_run(accepted(self.probes, self.baseline))
        operations = [op.type for op in self.migration.operations]
        verdict = judge_compat(self.plan, self.probes, self.baseline, tested, self.migration.name, operations)
        self.result.compat = verdict.status
        self.result.compat_direction = self.plan.direction
        self.result.details.extend(verdict.findings)
        if verdict.status == "breaks_old_code":
            self.result.compat_acknowledged = (self.migration.key in self.config.allow_breaking
                                               or self.migration.marker_present(MARKER_ALLOW_BREAKING))
        self.probes = None  # checked once
