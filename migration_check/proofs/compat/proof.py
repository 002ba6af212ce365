"""The compat check of one migration, in step with the chain (see `compat` for what it proves).

The statements run twice, from the chain's own connection, at two moments the chain has
anyway (its hooks `before_apply` and `after_apply`, so the check adds no `manage.py` process):
just before `apply`, on the schema before the migration over the pre-release rows, and just
after it, on the schema after it over the same rows. Which of the two is the baseline depends on the direction:

    previous release (the default):  its models run where they belong before `apply`, and
                                     are checked after it
    post-deploy migration:           the new models are checked before `apply` (the schema
                                     they meet while the migration waits for the deploy) and
                                     run where they belong after it

The statements are built (and the rows they refer to found) before `apply`. `not_checked`
when the check is off (`--no-compat`, or `--no-data`: no pre-release rows to run over), or
when the migration could not be applied over the pre-release data.

Owns: `CompatCheck`, the proof (see `protocol`): when to run what, and writing `compat`,
`compat_direction`, `compat_acknowledged` and the findings into the migration's result.
"""

from __future__ import annotations

from ...config import MARKER_ALLOW_BREAKING
from ...verdicts import Compat, StepOutcome
from ..protocol import MigrationTest, Proof
from .statements import (
    OLD_ON_NEW,
    CompatPlan,
    Outcome,
    Probe,
    build_probes,
    compat_plan,
    judge_compat,
    lookups_for,
    statements_of,
)


class CompatCheck(Proof):
    """The previous release's code keeps serving requests while and after `migrate` runs: its
    queries must still work on the new schema (or, for a post-deploy migration, the new code's
    on the old one), or the deploy itself is an outage. One migration's check: statements run in
    `before_apply`, again in `after_apply`, and are judged."""

    name = "compat"

    def __init__(self) -> None:
        self.plan: CompatPlan | None = None
        self.probes: list[Probe] = []
        self.before: list[Outcome] | None = None

    def before_apply(self, test: MigrationTest) -> None:
        """Build the statements and run them on the schema before the migration."""
        config = test.config
        start = test.release_start
        # The code before the release, when the rows' start is the release's first migration.
        release = (start.migration.name, start.old_models) if start and start.first else None
        readable = "unreadable" not in test.meta  # its own models do not render: nothing to compare with
        self.plan = compat_plan(test.meta, release) if config.check_compat and config.check_data and readable \
            else None
        if self.plan is None:
            return
        self.probes = build_probes(self.plan.models, test.database.compat_resolve(lookups_for(self.plan.models)))
        self.before = test.database.compat_run(statements_of(self.probes))

    def after_apply(self, test: MigrationTest) -> None:
        """Run them on the schema after it, and judge; only when it was applied over the data."""
        result, migration = test.result, test.migration
        if self.plan is None or self.before is None or result.apply != StepOutcome.PASSED:
            return
        after = test.database.compat_run(statements_of(self.probes))
        baseline, tested = (self.before, after) if self.plan.direction == OLD_ON_NEW else (after, self.before)
        operations = [op.type for op in migration.operations]
        verdict = judge_compat(self.plan, self.probes, baseline, tested, migration.name, operations)
        result.compat = verdict.status
        # which code ran on which schema: null when a changed table could not be checked
        result.compat_direction = None if verdict.status == Compat.NOT_CHECKED else self.plan.direction
        result.details.extend(verdict.findings)
        if verdict.status == Compat.BREAKS_OLD_CODE:
            result.compat_acknowledged = (migration.key in test.config.allow_breaking
                                          or migration.marker_present(MARKER_ALLOW_BREAKING))
