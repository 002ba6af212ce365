"""The compat check of one migration, in step with the chain (see `compat` for what it proves).

The statements run twice, from the chain's own connection, at two moments the chain has
anyway (so the check adds no `manage.py` process): just before `apply`, on the schema before
the migration over the pre-release rows, and just after it, on the schema after it over the
same rows. Which of the two is the baseline depends on the direction:

    previous release (the default):  its models run where they belong before `apply`, and
                                     are checked after it
    post-deploy migration:           the new models are checked before `apply` (the schema
                                     they meet while the migration waits for the deploy) and
                                     run where they belong after it

The statements are built (and the rows they refer to found) before `apply`. `not_checked`
when the check is off (`--no-compat`, or `--no-data`: no pre-release rows to run over), or
when the migration could not be applied over the pre-release data.

Owns: `CompatCheck` (when to run what, and writing `compat`, `compat_direction`,
`compat_acknowledged` and the findings into the migration's result).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...config import MARKER_ALLOW_BREAKING, Config
from ...inside_django.protocol import WindowMigration
from ...project.discovery import MigrationInfo
from ...results import MigrationResult
from ...verdicts import Compat, StepOutcome
from .statements import (
    OLD_ON_NEW,
    Lookup,
    Outcome,
    Probe,
    Resolved,
    Statement,
    build_probes,
    compat_plan,
    judge_compat,
    lookups_for,
    statements_of,
)


class CompatDatabase(Protocol):
    """What the check needs of the chain's database (see scratch.ScratchDatabase)."""

    def compat_resolve(self, lookups: Sequence[Lookup]) -> Resolved: ...
    def compat_run(self, statements: Sequence[Statement]) -> list[Outcome]: ...


class CompatCheck:
    """One migration's check: the chain calls `before_apply`, then `after_apply`."""

    def __init__(self, config: Config, database: CompatDatabase, migration: MigrationInfo, meta: WindowMigration,
                 result: MigrationResult) -> None:
        self.config = config
        self.database = database
        self.migration = migration
        self.result = result
        self.plan = compat_plan(meta) if config.check_compat and config.check_data else None
        self.probes: list[Probe] = []
        self.before: list[Outcome] | None = None

    def before_apply(self) -> None:
        """Build the statements and run them on the schema before the migration."""
        if self.plan is None:
            return
        self.probes = build_probes(self.plan.models, self.database.compat_resolve(lookups_for(self.plan.models)))
        self.before = self.database.compat_run(statements_of(self.probes))

    def after_apply(self) -> None:
        """Run them on the schema after it, and judge; only when it was applied over the data."""
        if self.plan is None or self.before is None or self.result.apply != StepOutcome.PASSED:
            return
        after = self.database.compat_run(statements_of(self.probes))
        baseline, tested = (self.before, after) if self.plan.direction == OLD_ON_NEW else (after, self.before)
        operations = [op.type for op in self.migration.operations]
        verdict = judge_compat(self.plan, self.probes, baseline, tested, self.migration.name, operations)
        self.result.compat = verdict.status
        self.result.compat_direction = self.plan.direction
        self.result.details.extend(verdict.findings)
        if verdict.status == Compat.BREAKS_OLD_CODE:
            self.result.compat_acknowledged = (self.migration.key in self.config.allow_breaking
                                               or self.migration.marker_present(MARKER_ALLOW_BREAKING))
