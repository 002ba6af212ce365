"""A chain: one run of an app's window, tested migration by migration on a database of its own.

The database is built forward from scratch to the state just before the run's oldest migration
(a state reached by rolling back would already carry whatever a faulty reverse leaves behind).
Then, oldest first, each migration M goes through the same steps:

    observe (schema, columns; seed pre-release rows, fingerprint them)
    apply     `migrate APP M` over that data          -> verdicts.judge_apply
    observe   (schema, columns; seed post-release rows)
    roll back `migrate APP PREVIOUS`                  -> verdicts.judge_rollback
              (siblings Django took along are put back -> verdicts.judge_sibling_reapply)
    judge     schema == before, pre-release rows intact -> schema.diff_schema, verdicts.judge_data
    re-apply  `migrate APP M`                          -> verdicts.judge_reapply, schema round trip

A step that leaves the database unusable ends the chain; each finding belongs to the one
migration applied and rolled back at that moment.

Owns: `WindowChain` (the order of the steps, and writing verdicts into the window's results) and
the `ChainDatabase` protocol it works through (`scratch.ScratchDatabase` in a run, a fake in the
unit tests).

Uses: config, discovery, results, schema (diff), seeding (profiles), verdicts, window, log.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .config import MARKER_ALLOW_DATA_LOSS, Config, MigrationKey
from .data import Fingerprint, dropped_and_restored
from .discovery import MigrationInfo, Project, dependency_closure, dependents_closure, forward_targets, previous_in_app
from .errors import Interrupted, UsageError
from .inside_django.protocol import PrepareResponse, TableDescription, WindowMigration
from .log import Log
from .results import Finding, MigrationResult
from .schema import SchemaSnapshot, diff_schema
from .seeding import POST_RELEASE_PROFILES, PRE_RELEASE_PROFILES, SeedReport
from .steps import StepResult
from .verdicts import judge_apply, judge_data, judge_reapply, judge_rollback, judge_sibling_reapply
from .window import AppWindow

Columns = dict[str, set[str]]
NO_META: WindowMigration = {"tables_before": {}, "tables_after": {}, "effects": []}


class ChainDatabase(Protocol):
    """What a chain needs of its database (see scratch.ScratchDatabase)."""

    def build(self, app: str, targets: Sequence[MigrationKey], window: Sequence[str],
              ) -> tuple[StepResult, PrepareResponse | None]: ...
    def migrate(self, app: str | None = None, target: str | None = None) -> StepResult: ...
    def applied(self) -> set[MigrationKey]: ...
    def schema(self) -> SchemaSnapshot: ...
    def columns(self) -> Columns: ...
    def fingerprint(self, ignore_columns: dict[str, set[str]]) -> Fingerprint: ...
    def seed(self, tables: Sequence[str], profiles: Sequence[str]) -> SeedReport: ...
    def empty_tables(self) -> None: ...
    def end_stray_sessions(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class ChainContext:
    """What every chain of a run shares: the configuration, the project, the console, and how
    to get a fresh database (named after its purpose)."""

    config: Config
    project: Project
    log: Log
    open_database: Callable[[str], ChainDatabase]


@dataclass
class ObservedState:
    """What was recorded of a database state: schema snapshot, data fingerprint (None when that
    proof is off, or the data had to go), and the columns of every table."""

    schema: SchemaSnapshot | None
    data: Fingerprint | None
    columns: Columns


def auto_now_columns(tables: dict[str, TableDescription]) -> dict[str, set[str]]:
    """Columns Django fills on every save: a data migration that re-saves rows changes them."""
    return {table: set(info.get("auto_now", [])) for table, info in tables.items()}


class WindowChain:
    """Tests a run of one app's migrations; see the module docstring for the steps."""

    def __init__(self, context: ChainContext, window: AppWindow, tested: list[MigrationInfo], restore: bool) -> None:
        self.context = context
        self.config = context.config
        self.log = context.log
        self.app = window.app
        self.results = window.results  # each chain writes only its own migrations' entries
        self.tested = tested
        self.restore = restore  # the chain that ends at the app's newest migration restores head
        self.metadata: PrepareResponse = {}
        self.database: ChainDatabase | None = None

    def run(self) -> str | None:
        """Test the run; returns a problem with the app as a whole, if any."""
        try:
            return self.test_chain()
        except (Interrupted, KeyboardInterrupt, UsageError):  # the run ends (e.g. a step server died)
            raise
        except Exception as unexpected:  # a bug here must not hide the other apps' results
            self.log.debug(traceback.format_exc())
            return f"internal error while testing {self.app}: {type(unexpected).__name__}: {unexpected}"
        finally:
            if self.database is not None:
                self.database.close()

    def test_chain(self) -> str | None:
        """Build the base state, then test each migration oldest first. Returns an app error."""
        plan = self.context.project.plan
        excluded = dependents_closure([m.key for m in self.tested], self.context.project.dependencies())
        targets = forward_targets(plan, {m.key for m in plan} - excluded)
        self.database = database = self.context.open_database(self.app)
        step, response = database.build(self.app, targets, [m.name for m in self.tested])
        if response is None:
            message = f"could not build the state before {self.tested[0].name}: {step.error_summary()}"
            for migration in self.tested:
                self.results[migration.name].error = message
            return message
        self.metadata = response
        for position, migration in enumerate(self.tested):
            broken = self.test_migration(migration)
            if broken:
                for newer in self.tested[position + 1 :]:
                    self.results[newer.name].error = f"not tested: {broken}"
                return None
        return self.restore_head() if self.restore else None

    @property
    def db(self) -> ChainDatabase:
        assert self.database is not None
        return self.database

    # -- one migration --------------------------------------------------------------------------

    def test_migration(self, migration: MigrationInfo) -> str | None:
        """Apply, roll back and re-apply one migration; returns why the chain broke, if it did."""
        result = self.results[migration.name]
        meta = self.metadata.get(migration.name, NO_META)
        broken = self.apply_missing_dependencies(migration, result)
        if broken:
            return broken
        before = self.observe(result, meta["tables_before"], PRE_RELEASE_PROFILES, "pre-release", True)
        broken = self.apply(migration, result, before)
        if broken:
            return broken
        applied = self.observe(result, meta["tables_after"], POST_RELEASE_PROFILES, "post-release", False)
        broken, collateral_columns = self.roll_back(migration, result, before.columns)
        if broken or result.rollback != "passed" or result.reapply == "failed":
            return broken
        self.judge_rolled_back(migration, result, meta, before, applied, collateral_columns)
        broken = self.reapply(migration, result, applied)
        if not broken:
            self.log_verdict(result)
        return broken

    def observe(self, result: MigrationResult, tables: dict[str, TableDescription], profiles: Sequence[str],
                moment: str, fingerprint_after: bool) -> ObservedState:
        """Snapshot the schema and the columns, and seed rows into `tables` (then fingerprint
        every table when `fingerprint_after`: pre-release data)."""
        state = ObservedState(self.db.schema() if self.config.check_schema else None, None, self.db.columns())
        if self.config.check_data:
            report = self.db.seed(sorted(tables), profiles)
            result.details.extend(skipped_rows(report, moment))
            if fingerprint_after:
                state.data = self.db.fingerprint(auto_now_columns(tables))
        return state

    def step(self, migration: MigrationInfo, target: str, what: str) -> StepResult:
        outcome = self.db.migrate(self.app, target)
        self.log.step(f"{migration.label}: {what}", "passed" if outcome.ok else "failed", outcome.duration_s,
                      None if outcome.ok else outcome.error_summary())
        if outcome.timed_out:
            self.db.end_stray_sessions()
        return outcome

    def apply(self, migration: MigrationInfo, result: MigrationResult, before: ObservedState) -> str | None:
        """`migrate APP M` over the pre-release data; when it fails, empty the tables and retry,
        so the rest of the window is still tested."""
        verdict = judge_apply(self.step(migration, migration.name, "apply"), migration)
        result.apply = verdict.status
        if verdict.status == "passed":
            return None
        result.error = verdict.error
        if verdict.broken:
            return verdict.broken
        self.db.empty_tables()
        if not self.step(migration, migration.name, "apply without data").ok:
            return f"{migration.name} could not be applied"
        before.data = None  # the pre-release data had to go
        before.columns = self.db.columns()
        return None

    def roll_back(self, migration: MigrationInfo, result: MigrationResult,
                  columns_before: Columns) -> tuple[str | None, frozenset[tuple[str, str | None]]]:
        """`migrate APP PREVIOUS`; returns why the chain broke (if it did) and the columns of
        sibling migrations that Django rolled back alongside and that were put back."""
        applied_before = self.db.applied()
        target = previous_in_app(migration)
        step = self.step(migration, target, "rollback")
        result.durations["rollback"] = round(step.duration_s, 2)
        verdict = judge_rollback(step, migration, applied_before, self.db.applied())
        result.rollback = verdict.status
        if verdict.error:
            result.error = verdict.error
        if verdict.status != "passed" or not verdict.collateral:
            return verdict.broken, frozenset()
        # `migrate APP PARENT` also unapplies PARENT's other children (a sibling branch): put them
        # back, so the comparison is with the state just before this migration.
        siblings = sorted(verdict.collateral)
        columns_rolled_back = self.db.columns()
        sibling = judge_sibling_reapply(self.apply_forward(set(siblings)), migration, siblings)
        if sibling.status == "failed":
            result.reapply, result.error = "failed", sibling.error
            return sibling.broken, frozenset()
        names = ", ".join(name for _, name in siblings)
        result.details.append(Finding("info", f"Django cannot roll back {migration.name} alone: `migrate "
                                      f"{self.app} {target}` also rolled back {names}, re-applied before comparing"))
        return None, frozenset(dropped_and_restored(columns_before, columns_rolled_back, self.db.columns()))

    def judge_rolled_back(self, migration: MigrationInfo, result: MigrationResult, meta: WindowMigration,
                          before: ObservedState, applied: ObservedState,
                          collateral_columns: frozenset[tuple[str, str | None]]) -> None:
        """The schema must equal the one before the migration, the pre-release rows must hold."""
        if before.schema is not None:
            findings = diff_schema(before.schema, self.db.schema(), f"after rolling back {migration.name}")
            result.details.extend(findings)
            result.schema = "differs" if findings else "identical"
        if before.data is not None:
            after = self.db.fingerprint(auto_now_columns(meta["tables_before"]))
            verdict = judge_data(migration, meta, before.data, after, before.columns, applied.columns,
                                 collateral_columns)
            result.details.extend(verdict.findings)
            result.data = verdict.data
            if verdict.data == "lost" and (migration.key in self.config.allow_data_loss
                                           or migration.marker_present(MARKER_ALLOW_DATA_LOSS)):
                result.acknowledged = True

    def reapply(self, migration: MigrationInfo, result: MigrationResult, applied: ObservedState) -> str | None:
        """`migrate APP M` again, with the data present: the schema must be the one after applying."""
        step = self.step(migration, migration.name, "reapply")
        result.durations["reapply"] = round(step.duration_s, 2)
        verdict = judge_reapply(step, migration)
        result.reapply = verdict.status
        if verdict.status != "passed":
            result.error = verdict.error
            return verdict.broken
        if applied.schema is not None:
            findings = diff_schema(applied.schema, self.db.schema(), f"after re-applying {migration.name} (round trip)")
            result.details.extend(findings)
            if findings:
                result.schema = "differs"
        return None

    # -- other apps' migrations -----------------------------------------------------------------

    def apply_missing_dependencies(self, migration: MigrationInfo, result: MigrationResult) -> str | None:
        """Apply what `migration` needs and is not applied yet (other apps, or a sibling branch of
        its own app), so that applying and rolling it back touches it alone."""
        plan = self.context.project.plan
        known = {m.key for m in plan}
        needed = dependency_closure([d for d in migration.dependencies if d in known],
                                    self.context.project.dependencies())
        failed = self.apply_forward(needed - self.db.applied())
        if failed is None:
            return None
        result.apply, result.error = "failed", f"applying what {migration.name} depends on failed: " \
                                               f"{failed.error_summary()}"
        return f"what {migration.name} depends on could not be applied"

    def apply_forward(self, keys: set[MigrationKey]) -> StepResult | None:
        """Apply `keys` (their dependencies applied); returns the first step that failed."""
        for app, name in forward_targets(self.context.project.plan, keys):
            outcome = self.db.migrate(app, name)
            self.log.step(f"{self.app}: apply {app}.{name} first", "passed" if outcome.ok else "failed",
                          outcome.duration_s, None if outcome.ok else outcome.error_summary())
            if not outcome.ok:
                return outcome
        return None

    def restore_head(self) -> str | None:
        """Bring every app back to its newest migration, as after the app's tests in production."""
        expected = {m.key for m in self.context.project.plan}
        if expected <= self.db.applied():
            return None
        outcome = self.db.migrate()
        self.log.step(f"{self.app}: restore every app to its newest migration",
                      "passed" if outcome.ok else "failed", outcome.duration_s)
        if not outcome.ok:
            return f"restoring the full state after testing {self.app} failed: {outcome.error_summary()}"
        left = sorted(f"{app}.{name}" for app, name in expected - self.db.applied())
        if left:
            return f"after `migrate`, still unapplied: {', '.join(left)}"
        return None

    def log_verdict(self, result: MigrationResult) -> None:
        note = f"schema {result.schema}, data {result.data}" + (" (acknowledged)" if result.acknowledged else "")
        self.log.info(f"{result.label}: {note}")
        for finding in result.details:
            if finding.kind != "info" or self.log.verbosity >= 2:
                self.log.info(f"    {finding.kind}: {finding.message}")


def skipped_rows(report: SeedReport, moment: str) -> list[Finding]:
    return [Finding("info", f"{moment} seeding skipped {len(reasons)} row(s) of {table}: {reasons[0]}",
                    {"table": table})
            for table, reasons in sorted(report.skipped.items())]
