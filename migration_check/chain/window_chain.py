"""A chain: one run of an app's window, tested migration by migration on a database of its own.

The database is built forward from scratch to the state just before the run's oldest migration
(a state reached by rolling back would already carry whatever a faulty reverse leaves behind).
Then, oldest first, each migration M goes through the same steps:

    observe (schema, columns; seed pre-release rows, fingerprint them)
    apply     `migrate APP M` over that data          -> verdicts.judge_apply
              (the compat check runs around it         -> compat_check.CompatCheck)
              (watched on the server: locks, rewrites -> deploy_safety.record_apply)
    observe   (schema, columns; seed post-release rows)
    roll back `migrate APP PREVIOUS`                  -> verdicts.judge_rollback
              (siblings Django took along are put back -> verdicts.judge_sibling_reapply)
    judge     schema == before, pre-release rows intact -> schema.diff_schema, verdicts.judge_data
    re-apply  `migrate APP M`                          -> verdicts.judge_reapply, schema round trip
              post-release rows survived the rollback   -> post_release.judge_post_release

Each finding belongs to the one migration applied and rolled back at that moment. A step that
leaves the database unusable (a re-apply that fails, a rollback that times out or leaves the
migration half reversed) ends that database, not the run: the newer migrations are tested on a
fresh database built forward past the one that broke (`rebuild_past`), because the forward path
through it works. Only when applying a migration fails is nothing newer tested.

Owns: `WindowChain` (the order of the steps, and writing verdicts into the window's results) and
the `ChainDatabase` protocol it works through (`scratch.ScratchDatabase` in a run, a fake in the
unit tests).

Uses: config, coverage, data, discovery, post_release, results, schema (diff), seeding (profiles),
verdicts, window, log, deploy_safety (the observation of each apply), compat_check (the compat
check around it).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..config import MARKER_ALLOW_DATA_LOSS, Config, MigrationKey
from ..errors import Interrupted, UsageError
from ..inside_django.protocol import PrepareResponse, TableDescription, WindowMigration
from ..log import Log
from ..processes.steps import StepResult
from ..project.discovery import (
    MigrationInfo,
    Project,
    dependency_closure,
    dependents_closure,
    forward_targets,
    previous_in_app,
)
from ..project.window import AppWindow
from ..proofs.compat.proof import CompatCheck
from ..proofs.compat.statements import Lookup, Outcome, Resolved, Statement
from ..proofs.data.coverage import coverage_findings
from ..proofs.data.fingerprints import Fingerprint, changed_cells, dropped_and_restored
from ..proofs.data.post_release import judge_post_release, post_release_scope, rolled_back_changes
from ..proofs.data.seeding import POST_RELEASE_PROFILES, PRE_RELEASE_PROFILES, Choices, SeedReport
from ..proofs.data.unique_keys import UniqueKeys, relaxed_keys, tightened_keys
from ..proofs.deploy_safety.hazards import Event
from ..proofs.deploy_safety.proof import DeploySafety, record_apply
from ..proofs.deploy_safety.volume import VolumeFill
from ..proofs.round_trip import (
    StepVerdict,
    judge_apply,
    judge_data,
    judge_reapply,
    judge_rollback,
    judge_sibling_reapply,
)
from ..proofs.schema import SchemaSnapshot, diff_schema
from ..results import Finding, MigrationResult
from .unique_probe import probe_tightened

Columns = dict[str, set[str]]
UniqueKey = tuple[str, tuple[str, ...]]  # table, the columns of one of its unique keys
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
    def seed(self, tables: Sequence[str], profiles: Sequence[str], round_token: int | None = None,
             choices: Choices | None = None) -> SeedReport: ...
    def empty_tables(self) -> None: ...
    def unique_keys(self) -> UniqueKeys: ...
    def repeat_key(self, table: str, key: Sequence[str], report: SeedReport, choices: Choices | None = None,
                   ) -> str | None: ...
    def compat_resolve(self, lookups: Sequence[Lookup]) -> Resolved: ...
    def compat_run(self, statements: Sequence[Statement]) -> list[Outcome]: ...
    def end_stray_sessions(self) -> None: ...
    def begin_observation(self, tables: Sequence[str], volume: int | None) -> VolumeFill | None: ...
    def end_observation(self, fill: VolumeFill | None) -> tuple[list[Event] | None, list[str]]: ...
    def close(self) -> None: ...


@dataclass
class ChainContext:
    """What every chain of a run shares: the configuration, the project, the console, and how
    to get a fresh database (named after its purpose)."""

    config: Config
    project: Project
    log: Log
    open_database: Callable[[str], ChainDatabase]
    safety: DeploySafety = field(default_factory=DeploySafety)


@dataclass
class ObservedState:
    """What was recorded of a database state: schema snapshot, data fingerprint (None when that
    proof is off, or the data had to go), the columns of every table, and what the seeding did."""

    schema: SchemaSnapshot | None
    data: Fingerprint | None
    columns: Columns
    seeded: SeedReport | None = None


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
        failure = self.build_before(self.tested)
        if failure:
            message = f"could not build the state before {self.tested[0].name}: {failure}"
            for migration in self.tested:
                self.results[migration.name].error = message
            return message
        for position, migration in enumerate(self.tested):
            broken = self.test_migration(migration)
            newer = self.tested[position + 1 :]
            if broken and not newer:
                return None
            if broken:
                failure = self.rebuild_past(migration, broken, newer)
                if failure:
                    for later in newer:
                        self.results[later.name].error = f"not tested: {failure}"
                    return None
        return self.restore_head() if self.restore else None

    def base_targets(self, migrations: Sequence[MigrationInfo]) -> list[MigrationKey]:
        """`migrate` targets of the state just before `migrations`: everything but them and
        what depends on them."""
        plan = self.context.project.plan
        excluded = dependents_closure([m.key for m in migrations], self.context.project.dependencies())
        return forward_targets(plan, {m.key for m in plan} - excluded)

    def build_before(self, migrations: Sequence[MigrationInfo]) -> str | None:
        """A fresh database built forward to the state just before `migrations`, described for
        them; returns why it could not be built, if so."""
        self.database = database = self.context.open_database(self.app)
        step, response = database.build(self.app, self.base_targets(migrations), [m.name for m in migrations])
        if response is None:
            return step.error_summary()
        self.metadata = {**self.metadata, **response}
        return None

    def rebuild_past(self, migration: MigrationInfo, broken: str, newer: Sequence[MigrationInfo]) -> str | None:
        """A step of `migration` left this database unusable (`broken`), but the newer migrations'
        own verdicts are still knowable when the forward path through `migration` works (its
        apply passed; a later step broke): this chain's database stops here, and the newer ones
        are tested on a fresh database built forward past it. Returns why they cannot be."""
        if self.results[migration.name].rollback == "not_run":  # applying it failed: nothing gets past it
            return broken
        self.log.info(f"{self.app}: {broken}; this database stops here, {newer[0].name} and newer are tested "
                      f"on a database built forward past {migration.name}")
        self.db.close()
        self.database = None
        failure = self.build_before(newer)
        return f"{broken}, and building a database past it failed: {failure}" if failure else None

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
        before = self.observe(result, meta["tables_before"], PRE_RELEASE_PROFILES, "pre-release", True,
                              self.round_token(migration, 0))
        unique_before = self.db.unique_keys() if self.config.check_data else None
        compat = CompatCheck(self.config, self.db, migration, meta, result)
        compat.before_apply()
        broken = self.apply(migration, result, before)
        if broken:
            return broken
        compat.after_apply()
        relaxed = self.uniqueness_changes(migration, result, meta, before, unique_before)
        applied = self.observe(result, meta["tables_after"], POST_RELEASE_PROFILES, "post-release", True,
                               self.round_token(migration, 1), relaxed)
        broken, collateral_columns = self.roll_back(migration, result, before.columns)
        broken = broken or self.half_reversed(migration, result, applied)
        if broken or result.rollback != "passed" or result.reapply == "failed":
            return broken
        rolled_back = self.judge_rolled_back(migration, result, meta, before, applied, collateral_columns)
        broken = self.reapply(migration, result, applied)
        if not broken:
            self.judge_post_release(migration, result, before, applied, rolled_back, collateral_columns)
            self.log_verdict(result)
        return broken

    def round_token(self, migration: MigrationInfo, moment: int) -> int:
        """Seeding rounds are numbered by migration and moment (0 before it, 1 after), so the
        rows a migration is tested with do not depend on how --jobs split the window."""
        return self.context.project.position(migration.key) * 2 + moment

    def observe(self, result: MigrationResult, tables: dict[str, TableDescription], profiles: Sequence[str],
                moment: str, fingerprint_after: bool, round_token: int | None = None,
                repeat: Sequence[UniqueKey] = ()) -> ObservedState:
        """Snapshot the schema and the columns, and seed rows into `tables` (and rows repeating
        the `repeat` keys), then fingerprint every table when `fingerprint_after`."""
        state = ObservedState(self.db.schema() if self.config.check_schema else None, None, self.db.columns())
        if self.config.check_data:
            choices = {table: info.get("choices", {}) for table, info in tables.items()}
            report = self.db.seed(sorted(tables), profiles, round_token, choices)
            result.details.extend(self.repeat_relaxed_keys(result, repeat, report, choices))
            result.details.extend(skipped_rows(report, moment))
            state.seeded = report
            if fingerprint_after:
                state.data = self.db.fingerprint(auto_now_columns(tables))
        return state

    def uniqueness_changes(self, migration: MigrationInfo, result: MigrationResult, meta: WindowMigration,
                           before: ObservedState, unique_before: UniqueKeys | None) -> list[UniqueKey]:
        """Compare the unique keys before and after the apply: a key the migration tightened is
        applied over duplicates on a database of its own (`unique_probe`); the keys it relaxed are
        returned, for the post-release rows to repeat (see unique_keys)."""
        if unique_before is None or result.apply != "passed":
            return []
        unique_after = self.db.unique_keys()
        tightened = tightened_keys(unique_before, unique_after, before.columns)
        if tightened and before.data is not None:
            probe = probe_tightened(self.context.open_database, self.app, migration, self.base_targets([migration]),
                                    tightened, meta, self.round_token(migration, 0))
            result.hazards.extend(probe.hazards)
            result.details.extend(probe.findings)
        if not relaxed_keys(unique_before, unique_after, None):  # the common case: no column inventory needed
            return []
        return relaxed_keys(unique_before, unique_after, self.db.columns())

    def repeat_relaxed_keys(self, result: MigrationResult, keys: Sequence[UniqueKey], report: SeedReport,
                            choices: Choices) -> list[Finding]:
        """A post-release row repeating each relaxed key: what users may write after the release."""
        found = []
        for table, key in keys:
            columns = ", ".join(key)
            row = self.db.repeat_key(table, key, report, choices)
            what = (f"a post-release row repeats it (primary key {row})" if row is not None
                    else "no post-release row could repeat it")
            found.append(Finding("info", f"{result.name} relaxes the unique key ({columns}) of {table}: {what}",
                                 {"table": table}))
        return found

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
        tables = sorted(self.metadata.get(migration.name, NO_META)["tables_before"])
        fill = self.db.begin_observation(tables, self.context.safety.volume)
        verdict = judge_apply(self.step(migration, migration.name, "apply"), migration)
        if verdict.status != "passed" and fill is not None and fill.keys and not verdict.broken:
            verdict = self.apply_without_volume(migration, result, fill, verdict)
            fill = None
        result.apply = verdict.status
        if verdict.status == "passed":
            events, cleanup = self.db.end_observation(fill)
            if events is not None:
                record_apply(result, events, set(before.columns), self.context.safety, fill, cleanup)
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

    def apply_without_volume(self, migration: MigrationInfo, result: MigrationResult, fill: VolumeFill,
                             failed: StepVerdict) -> StepVerdict:
        """The --volume rows are made up: when the apply fails over them, delete them and apply
        over the seeded rows alone, as without --volume."""
        self.db.end_observation(fill)
        result.details.append(Finding("info", f"--volume: over {fill.rows} more rows per table the apply failed "
                                      f"({failed.error}); applied again without them"))
        self.db.begin_observation([], None)
        return judge_apply(self.step(migration, migration.name, "apply without the volume rows"), migration)

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
                          collateral_columns: frozenset[tuple[str, str | None]]) -> Fingerprint | None:
        """The schema must equal the one before the migration, the pre-release rows must hold.
        Returns the fingerprint after the rollback (for the post-release rows)."""
        if before.schema is not None:
            findings = diff_schema(before.schema, self.db.schema(), f"after rolling back {migration.name}")
            result.details.extend(findings)
            result.schema = "differs" if findings else "identical"
        if before.data is None:
            return None
        after = self.db.fingerprint(auto_now_columns(meta["tables_before"]))
        verdict = judge_data(migration, meta, before.data, after, before.columns, applied.columns,
                             collateral_columns)
        result.details.extend(verdict.findings)
        result.details.extend(coverage_findings(meta["tables_before"], before.data, before.seeded or SeedReport(),
                                                auto_now_columns(meta["tables_before"])))
        self.set_data_verdict(migration, result, verdict.data)
        return after

    def set_data_verdict(self, migration: MigrationInfo, result: MigrationResult, data: str) -> None:
        """`data` (preserved | lost), never turning a loss found earlier back into preserved."""
        result.data = "lost" if "lost" in (result.data, data) else data
        if result.data == "lost" and (migration.key in self.config.allow_data_loss
                                      or migration.marker_present(MARKER_ALLOW_DATA_LOSS)):
            result.acknowledged = True

    def judge_post_release(self, migration: MigrationInfo, result: MigrationResult, before: ObservedState,
                           applied: ObservedState, rolled_back: Fingerprint | None,
                           collateral_columns: frozenset[tuple[str, str | None]]) -> None:
        """Rows written after the release must survive its rollback (see post_release)."""
        if before.data is None or applied.data is None or rolled_back is None or applied.seeded is None:
            return
        scope = post_release_scope(applied.seeded.keys, before.data, applied.data, before.columns, collateral_columns)
        changed = rolled_back_changes(applied.data, rolled_back, scope)
        reapplied = changed_cells(applied.data, self.db.fingerprint({}), scope.keys, scope.compared) \
            if changed else None
        verdict = judge_post_release(migration, scope, changed, reapplied)
        result.details.extend(verdict.findings)
        if verdict.lost:
            self.set_data_verdict(migration, result, "lost")

    def half_reversed(self, migration: MigrationInfo, result: MigrationResult, applied: ObservedState) -> str | None:
        """A migration with `atomic = False` reverses operation by operation, each committed: when
        its rollback fails, the operations reversed before the failure stay reversed and the
        database is between states (no later migration can be tested on it)."""
        if result.rollback != "failed" or migration.atomic:
            return None
        if applied.schema is None:  # --no-schema: what was reversed cannot be told, so assume the worst
            result.error = f"{result.error}; atomic = False: the database may be left half reversed"
            return f"the failed rollback of {migration.name} (atomic = False) may have left it half reversed"
        findings = diff_schema(applied.schema, self.db.schema(), "after the failed rollback")
        if not findings:
            return None
        result.error = (f"{result.error}; atomic = False: the operations reversed before the failure stay "
                        f"reversed, the database is left half reversed ({findings[0].message})")
        return f"the failed rollback of {migration.name} (atomic = False) left it half reversed"

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
        note += f", compat {result.compat}" + (" (acknowledged)" if result.compat_acknowledged else "")
        self.log.info(f"{result.label}: {note}")
        for finding in result.details:
            if finding.kind != "info" or self.log.verbosity >= 2:
                self.log.info(f"    {finding.kind}: {finding.message}")


def skipped_rows(report: SeedReport, moment: str) -> list[Finding]:
    return [Finding("info", f"{moment} seeding skipped {len(reasons)} row(s) of {table}: {reasons[0]}",
                    {"table": table})
            for table, reasons in sorted(report.skipped.items())]
