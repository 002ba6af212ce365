"""A chain: one segment of an app's window, tested migration by migration on a database of its own.

The database is built forward from scratch to the state just before the segment's oldest
migration (a state reached by rolling back would already carry whatever a faulty reverse leaves
behind). Then, oldest first, each migration M goes through the same steps, the round trip, and
at each moment the chain calls the registered proofs (`proofs.registry.PROOFS`; the moments and
what each proof does there: `proofs.protocol`):

    before_apply    the schema snapshot, pre-release rows seeded and fingerprinted, compat
    apply     `migrate APP M` over that data          -> round_trip.judge_apply
                    around_apply: deploy safety watches it (locks, rewrites, --volume)
    after_apply     compat on the new schema
    before_rollback the schema snapshot, post-release rows seeded
    roll back `migrate APP PREVIOUS`                  -> round_trip.judge_rollback
              (siblings Django took along are put back -> round_trip.judge_sibling_reapply)
    after_rollback  schema == before, pre-release rows intact
    re-apply  `migrate APP M`                          -> round_trip.judge_reapply
    after_reapply   schema round trip, post-release rows survived the rollback
    after_steps     proofs that need a scratch database of their own (`OwnDatabases`)

Each migration is tested in the state a fresh database built forward to just before it holds
(`catch_up`: other apps' migrations that depend on the ones tested before it are applied first),
so where --jobs split the window changes no migration's schema state (only the rows the earlier
tests of a chain left differ).

With --since the window is one release: the pre-release rows are seeded before its first
migration only, and each later one is tested over them as the release's earlier migrations left
them (`release_carried`, `proofs.protocol.ReleaseStart`), as one deploy of the release runs.

A migration with an operation that has no reverse (named before the run, `window.mark_irreversible`)
is applied and observed like any other (apply, compat, deploy safety), then stays applied: there
is no rollback to test, and the newer migrations are tested on top of it.

Each finding belongs to the one migration applied and rolled back at that moment. A step that
leaves the database unusable (a re-apply that fails, a rollback that times out or leaves the
migration half reversed) ends that database, not the run: the newer migrations are tested on a
fresh database built forward past the one that broke (`rebuild_past`), because the forward path
through it works. Only when applying a migration fails is nothing newer tested.

Owns: `WindowChain` (the order of the steps, the round-trip verdicts written into the window's
results, and the moments at which the proofs are called), the `ChainDatabase` protocol it works
through (`scratch.ScratchDatabase` in a run, a fake in the unit tests) and `OwnDatabases`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .. import rules
from ..config import Config, MigrationKey
from ..errors import InfrastructureFault, Interrupted, UsageError
from ..inside_django.protocol import PrepareResponse, WindowMigration
from ..log import Log
from ..postgres.catalog import Columns
from ..postgres.faults import raise_if_fault
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
from ..proofs.data.fingerprints import dropped_and_restored
from ..proofs.deploy_safety.proof import DeploySafety
from ..proofs.protocol import (
    ApplyStep,
    MigrationTest,
    ObservedState,
    Proof,
    ProofDatabase,
    ReleaseStart,
    ScratchUnavailable,
)
from ..proofs.registry import PROOFS
from ..proofs.round_trip import (
    StepVerdict,
    judge_apply,
    judge_reapply,
    judge_rollback,
    judge_sibling_reapply,
)
from ..proofs.schema import diff_schema
from ..results import Finding, MigrationResult
from ..verdicts import CheckStatus, FindingKind, Rollback, StepOutcome

NO_META: WindowMigration = {"tables_before": {}, "tables_after": {}, "effects": []}


class ChainDatabase(ProofDatabase, Protocol):
    """What a chain needs of its database (see scratch.ScratchDatabase): what the proofs may do
    with it, and building, emptying and closing it."""

    def build(self, app: str, targets: Sequence[MigrationKey], window: Sequence[str],
              ) -> tuple[StepResult, PrepareResponse | None]: ...
    def empty_tables(self) -> None: ...
    def end_stray_sessions(self) -> None: ...
    def close(self) -> None: ...


@dataclass(kw_only=True)
class ChainContext:
    """What every chain of a run shares: the configuration, the project, the console, how
    to get a fresh database (named after its purpose), deploy safety's settings, and the proofs
    each migration gets (the registered ones; a unit test may add its own)."""

    config: Config
    project: Project
    log: Log
    open_database: Callable[[str], ChainDatabase]
    safety: DeploySafety = field(default_factory=DeploySafety)
    proofs: Sequence[type[Proof]] = PROOFS


class WindowChain:
    """Tests a segment of one app's window; see the module docstring for the steps."""

    def __init__(self, context: ChainContext, window: AppWindow, tested: list[MigrationInfo], restore: bool) -> None:
        self.context = context
        self.config = context.config
        self.log = context.log
        self.app = window.app
        self.results = window.results  # each chain writes only its own migrations' entries
        self.tested = tested
        self.app_window = list(window.window)  # the app's whole window (this chain tests a segment of it)
        self.restore = restore  # the chain that ends at the app's newest migration restores head
        self.metadata: PrepareResponse = {}
        self.database: ChainDatabase | None = None

    def check(self) -> str | None:
        """Test the segment; returns a problem with the app as a whole, if any."""
        try:
            return self.check_segment()
        except (Interrupted, KeyboardInterrupt, UsageError, InfrastructureFault):  # the run ends
            raise
        except Exception as unexpected:  # a bug here must not hide the other apps' results
            raise_if_fault(unexpected)  # the server failed (exit 3), not this code
            self.log.debug(traceback.format_exc())
            return f"internal error while testing {self.app}: {type(unexpected).__name__}: {unexpected}"
        finally:
            if self.database is not None:
                self.database.close()

    def check_segment(self) -> str | None:
        """Build the base state, then test each migration oldest first. Returns an app error."""
        failure = self.build_before(self.tested)
        if failure:
            message = f"could not build the state before {self.tested[0].name}: {failure}"
            for migration in self.tested:
                self.results[migration.name].error = message
            return message
        release: ReleaseStart | None = None
        for position, migration in enumerate(self.tested):
            test, broken = self.check_migration(migration, release)
            self.log.migration_done()
            newer = self.tested[position + 1 :]
            release = self.release_carried(test, broken, newer[0] if newer else None)
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
        """`migrate` targets of the state just before `migrations` (oldest first): `held_before`
        its oldest."""
        return forward_targets(self.context.project.plan, self.held_before(migrations[0], migrations))

    def held_before(self, migration: MigrationInfo, also: Sequence[MigrationInfo] = ()) -> set[MigrationKey]:
        """What a database in the state just before `migration` holds, whichever chain or segment
        reaches it: every migration of the plan but the app's window from `migration` on (a
        sibling branch of the window not tested yet included), `also`, and what depends on them."""
        keys = [m.key for m in self.app_window]
        untested = self.app_window[keys.index(migration.key):] if migration.key in keys else [migration]
        excluded = dependents_closure([m.key for m in [*untested, *also]], self.context.project.dependencies())
        return {m.key for m in self.context.project.plan} - excluded

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
        result = self.results[migration.name]
        if result.rollback == Rollback.NOT_RUN or result.apply == StepOutcome.NOT_RUN:  # never applied past
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

    def check_migration(self, migration: MigrationInfo,
                        release: ReleaseStart | None) -> tuple[MigrationTest | None, str | None]:
        """Apply, roll back and re-apply one migration, its proofs called at each moment (over the
        rows seeded at its release's start, when `release` is given); returns its test and why
        the chain broke, if it did."""
        result = self.results[migration.name]
        applied = self.db.applied()  # read once for both: what it depends on, then the rest of its state
        broken = self.apply_missing_dependencies(migration, result, applied)
        if broken:
            return None, broken
        failure, rebuilt = self.catch_up(migration, applied | self.dependencies_of(migration))
        if failure:  # an irreversible migration's error already names its operation: keep both
            result.apply = StepOutcome.NOT_RUN
            result.error = f"{result.error}; not tested: {failure}" if result.error else f"not tested: {failure}"
            return None, failure
        release = None if rebuilt else release  # a fresh database holds none of the release's rows
        test = MigrationTest(config=self.config, project=self.context.project, safety=self.context.safety,
                             migration=migration, meta=self.metadata.get(migration.name, NO_META), result=result,
                             database=self.db, before=ObservedState(columns=self.db.columns()),
                             release_start=release, log=self.log)
        if "unreadable" in test.meta:
            result.details.append(unreadable_models(migration, test.meta["unreadable"]))
        proofs = [make() for make in self.context.proofs]
        broken = self.round_trip(test, proofs)
        self.after_steps(test, proofs)
        return test, broken

    def release_carried(self, test: MigrationTest | None, broken: str | None,
                        following: MigrationInfo | None) -> ReleaseStart | None:
        """With --since, the rows seeded at the release's start as `test` leaves them on this
        database for `following`, when that is the release's next migration of the app (see
        `ReleaseStart`). None, and `following` seeds rows of its own, when there is no such
        release, when the rows did not come through `test` (its apply failed and the tables were
        emptied, the database broke, or no rows were seeded), when its rollback failed (the
        post-release rows seeded after it never went through its code again, as a re-apply runs
        it: no deploy leaves such rows before `following`) or when `following` is not the next."""
        if (self.config.since is None or test is None or broken is not None or following is None
                or previous_in_app(following) != test.migration.name
                or test.before.data is None or test.before.seeded is None
                or (test.result.reapply != StepOutcome.PASSED and test.result.rollback != Rollback.IRREVERSIBLE)):
            return None
        start = test.release_start or ReleaseStart(migration=test.migration, tables=test.meta["tables_before"],
                                                   columns=test.before.columns,
                                                   old_models=test.meta.get("models_before"),
                                                   seeded=test.before.seeded, through=(),
                                                   first=self.starts_release(test.migration))
        return dataclasses.replace(start, through=(*start.through, test.migration.name))

    def round_trip(self, test: MigrationTest, proofs: Sequence[Proof]) -> str | None:
        """The steps of one migration on the chain's database, with the proofs' moments."""
        migration, result = test.migration, test.result
        for proof in proofs:
            proof.before_apply(test)
        broken = self.apply(test, proofs)
        if broken:
            return broken
        for proof in proofs:
            proof.after_apply(test)
        if result.rollback == Rollback.IRREVERSIBLE:  # named before the run: no rollback to test
            self.log_irreversible(result)
            return None
        test.applied = ObservedState(columns=self.db.columns())
        for proof in proofs:
            proof.before_rollback(test)
        broken, test.collateral_columns = self.roll_back(migration, result, test.before.columns)
        broken = broken or self.half_reversed(migration, result, test.applied)
        if broken or result.rollback != Rollback.PASSED or result.reapply == StepOutcome.FAILED:
            return broken
        for proof in proofs:
            proof.after_rollback(test)
        broken = self.reapply(migration, result)
        if not broken:
            for proof in proofs:
                proof.after_reapply(test)
            self.log_verdict(result)
        return broken

    def after_steps(self, test: MigrationTest, proofs: Sequence[Proof]) -> None:
        """The proofs' last moment, with scratch databases of their own; one that cannot be built
        is information (the proof's verdict stays not_checked), not the chain's failure."""
        own = OwnDatabases(self)
        for proof in proofs:
            self.log.doing(f"{test.migration.label} {proof.name}")
            try:
                proof.after_steps(test, own)
            except ScratchUnavailable as problem:
                test.result.details.append(Finding(FindingKind.INFO, f"{proof.name}: {problem}"))

    def step(self, migration: MigrationInfo, target: str, what: str) -> StepResult:
        self.log.doing(f"{migration.label} {what}")
        outcome = self.db.migrate(self.app, target)
        self.log.step(f"{migration.label}: {what}", CheckStatus.of(outcome.ok), outcome.duration_s,
                      None if outcome.ok else outcome.error_summary())
        if outcome.timed_out:
            self.db.end_stray_sessions()
        return outcome

    def apply(self, test: MigrationTest, proofs: Sequence[Proof]) -> str | None:
        """`migrate APP M` over the pre-release data, wrapped by the proofs; when it fails, empty
        the tables and retry, so the rest of the window is still tested."""
        migration, result = test.migration, test.result

        def step(note: str = "") -> StepVerdict:
            return judge_apply(self.step(migration, migration.name, f"apply {note}".strip()), migration,
                               self.data_migration_before(migration))

        verdict = apply_through(proofs, test, step)
        result.apply = verdict.status
        if verdict.status == StepOutcome.PASSED:
            return None
        # An irreversible migration's error already names its operation: keep both.
        result.error = f"{verdict.error}; {result.error}" if result.error else verdict.error
        if verdict.broken:
            return verdict.broken
        self.db.empty_tables()
        if not self.step(migration, migration.name, "apply without data").ok:
            return f"{migration.name} could not be applied"
        test.before.data = None  # the pre-release data had to go
        test.before.columns = self.db.columns()
        return None

    def starts_release(self, migration: MigrationInfo) -> bool:
        """`migration` is its release's first of the app: the one before it is not in the window."""
        return previous_in_app(migration) not in {m.name for m in self.app_window}

    def data_migration_before(self, migration: MigrationInfo) -> str | None:
        """The data migration just before `migration` in its app, when the run does not know the
        releases (no --since); with --since, one in the release carried its rows already."""
        if self.config.since is not None:
            return None
        previous = (migration.app, previous_in_app(migration))
        found = [m for m in self.context.project.migrations_of(migration.app) if m.key == previous]
        return found[0].name if found and found[0].changes_rows() else None

    def roll_back(self, migration: MigrationInfo, result: MigrationResult,
                  columns_before: Columns) -> tuple[str | None, frozenset[tuple[str, str | None]]]:
        """`migrate APP PREVIOUS`; returns why the chain broke (if it did) and the columns of
        sibling migrations that Django rolled back alongside and that were put back."""
        applied_before = self.db.applied()
        target = previous_in_app(migration)
        step = self.step(migration, target, "rollback")
        result.durations["rollback"] = round(step.duration_s, 2)
        verdict = judge_rollback(step, migration, applied_before, self.db.applied())
        result.rollback = Rollback(verdict.status)
        if verdict.error:
            result.error = verdict.error
        if verdict.status != StepOutcome.PASSED or not verdict.collateral:
            return verdict.broken, frozenset()
        # `migrate APP PARENT` also unapplies PARENT's other children (a sibling branch): put them
        # back, so the comparison is with the state just before this migration.
        siblings = sorted(verdict.collateral)
        columns_rolled_back = self.db.columns()
        sibling = judge_sibling_reapply(self.apply_forward(set(siblings)), migration, siblings)
        if sibling.status == StepOutcome.FAILED:
            result.reapply, result.error = StepOutcome.FAILED, sibling.error
            return sibling.broken, frozenset()
        names = ", ".join(name for _, name in siblings)
        result.details.append(Finding(FindingKind.INFO, f"Django cannot roll back {migration.name} alone: `migrate "
                                      f"{self.app} {target}` also rolled back {names}, re-applied before comparing"))
        return None, frozenset(dropped_and_restored(columns_before, columns_rolled_back, self.db.columns()))

    def half_reversed(self, migration: MigrationInfo, result: MigrationResult, applied: ObservedState) -> str | None:
        """A migration with `atomic = False` reverses operation by operation, each committed (and
        an atomic one whose reverse SQL says COMMIT commits what it reversed so far): when its
        rollback fails, the operations reversed before the failure stay reversed and the
        database is between states (no later migration can be tested on it)."""
        in_parts = migration.rollback_in_parts()
        if result.rollback != Rollback.FAILED or in_parts is None:
            return None
        if applied.schema is None:  # --no-schema: what was reversed cannot be told, so assume the worst
            result.error = f"{result.error}; {in_parts}: the database may be left half reversed"
            return f"the failed rollback of {migration.name} ({in_parts}) may have left it half reversed"
        findings = diff_schema(applied.schema, self.db.schema(), "after the failed rollback")
        if not findings:
            return None
        result.error = (f"{result.error}; {in_parts}: the operations reversed before the failure stay "
                        f"reversed, the database is left half reversed ({findings[0].message})")
        return f"the failed rollback of {migration.name} ({in_parts}) left it half reversed"

    def reapply(self, migration: MigrationInfo, result: MigrationResult) -> str | None:
        """`migrate APP M` again, with the data present (the proofs judge what it brought back)."""
        step = self.step(migration, migration.name, "reapply")
        result.durations["reapply"] = round(step.duration_s, 2)
        verdict = judge_reapply(step, migration)
        result.reapply = verdict.status
        if verdict.status != StepOutcome.PASSED:
            result.error = verdict.error
            return verdict.broken
        return None

    # -- other apps' migrations -----------------------------------------------------------------

    def dependencies_of(self, migration: MigrationInfo) -> set[MigrationKey]:
        """What `migration` needs applied, transitively (the plan's migrations only)."""
        known = {m.key for m in self.context.project.plan}
        return dependency_closure([d for d in migration.dependencies if d in known],
                                  self.context.project.dependencies())

    def apply_missing_dependencies(self, migration: MigrationInfo, result: MigrationResult,
                                   applied: set[MigrationKey]) -> str | None:
        """Apply what `migration` needs and is not `applied` yet (other apps, or a sibling branch
        of its own app), so that applying and rolling it back touches it alone."""
        failed = self.apply_forward(self.dependencies_of(migration) - applied)
        if failed is None:
            return None
        result.apply, result.error = StepOutcome.FAILED, f"applying what {migration.name} depends on failed: " \
                                               f"{failed.error_summary()}"
        return f"what {migration.name} depends on could not be applied"

    def catch_up(self, migration: MigrationInfo, applied: set[MigrationKey]) -> tuple[str | None, bool]:
        """Bring this database to the state a fresh one built forward to just before `migration`
        holds: other apps' migrations that depend on the ones this chain tested before it are
        applied there. Without them the state may not even render (django-oscar: customer.0006
        applied, order.0008 not, and every `migrate` fails, so customer.0007 failed to apply in
        one chain and passed when --jobs split the window before it), and verdicts would depend on
        where a window was split. Applied over the rows the earlier tests left; when that fails
        (a fresh build applies them over empty tables), the chain starts again on a fresh
        database before `migration`. `applied`: what the database holds now. Returns why it could
        not, and whether it rebuilt."""
        missing = self.held_before(migration) - applied
        failed = self.apply_forward(missing) if missing else None
        if failed is None:
            return None, False
        self.log.info(f"{self.app}: catching up with the state before {migration.name} failed on this database; "
                      f"{migration.name} and newer are tested on a database built forward to it")
        self.results[migration.name].details.append(Finding(FindingKind.INFO, (
            f"tested on a fresh database built to the state before it: bringing the chain's database there "
            f"failed over the rows the earlier migrations' tests left ({failed.error_summary()})"
            + ("; the release's rows seeded at its start are not carried to it" if self.config.since else "")),
            {"table": None}))
        self.db.close()
        self.database = None
        failure = self.build_before(self.tested[self.tested.index(migration):])
        return (f"building a database before {migration.name} failed: {failure}" if failure else None), True

    def apply_forward(self, keys: set[MigrationKey]) -> StepResult | None:
        """Apply `keys` (their dependencies applied); returns the first step that failed."""
        for app, name in forward_targets(self.context.project.plan, keys):
            outcome = self.db.migrate(app, name)
            self.log.step(f"{self.app}: apply {app}.{name} first", CheckStatus.of(outcome.ok),
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
                      CheckStatus.of(outcome.ok), outcome.duration_s)
        if not outcome.ok:
            return f"restoring the full state after testing {self.app} failed: {outcome.error_summary()}"
        left = sorted(f"{app}.{name}" for app, name in expected - self.db.applied())
        if left:
            return f"after `migrate`, still unapplied: {', '.join(left)}"
        return None

    def log_irreversible(self, result: MigrationResult) -> None:
        """An irreversible migration stays applied: the newer ones are tested on top of it."""
        acknowledged = " (acknowledged)" if result.compat_acknowledged else ""
        self.log.info(f"{result.label}: apply {result.apply}, compat {result.compat}{acknowledged}; "
                      "irreversible, not rolled back")

    def log_verdict(self, result: MigrationResult) -> None:
        note = f"schema {result.schema}, data {result.data}" + (" (acknowledged)" if result.acknowledged else "")
        note += f", compat {result.compat}" + (" (acknowledged)" if result.compat_acknowledged else "")
        self.log.info(f"{result.label}: {note}")
        for finding in result.details:
            if finding.kind != FindingKind.INFO or self.log.verbosity >= 2:
                rule = f" [{finding.rule}]" if finding.rule else ""
                self.log.info(f"    {finding.kind}{rule}: {finding.message}")



def unreadable_models(migration: MigrationInfo, error: str) -> Finding:
    """What the data and compat checks could not speak for: the app's models around `migration`
    do not render from its own dependencies (the migration's steps are still tested)."""
    return Finding(FindingKind.COVERAGE, (
        f"the app's models around {migration.name} cannot be rendered from the migrations it depends on "
        f"({error}), so the data and compat checks did not run for it (and the retry proof and --volume found none of "
        f"its tables to fill); `migrate {migration.app} {migration.name}` can fail the same way on a database "
        "where migrations it does not depend on are not applied yet: a dependency missing from the migration?"),
        {"table": None, "column": None}, rules.DATA_NOT_COVERED)


def apply_through(proofs: Sequence[Proof], test: MigrationTest, step: ApplyStep) -> StepVerdict:
    """`step` wrapped by every proof's `around_apply`, the first proof outermost."""
    apply = step
    for proof in reversed(proofs):
        apply = wrapped(proof, test, apply)
    return apply()


def wrapped(proof: Proof, test: MigrationTest, inner: ApplyStep) -> ApplyStep:
    """`inner` as `proof` wraps it; a note given to the wrapper (a retry's) reaches the step."""
    def apply(note: str = "") -> StepVerdict:
        return proof.around_apply(test, NotedStep(inner, note))
    return apply


@dataclass(frozen=True)
class NotedStep:
    """`inner` with a default note: the one the outer wrapper was called with."""

    inner: ApplyStep
    note: str

    def __call__(self, note: str = "") -> StepVerdict:
        return self.inner(note or self.note)


class OwnDatabases:
    """Scratch databases for a proof's own use, built the way the chain builds its own (the
    replaced-path chain's path included); see `proofs.protocol.ScratchDatabases`."""

    def __init__(self, chain: WindowChain) -> None:
        self.chain = chain

    def targets_before(self, migration: MigrationInfo) -> list[MigrationKey]:
        return self.chain.base_targets([migration])

    @contextlib.contextmanager
    def before(self, migration: MigrationInfo, purpose: str) -> Iterator[ProofDatabase]:
        database = self.chain.context.open_database(purpose)
        try:
            step, response = database.build(self.chain.app, self.chain.base_targets([migration]), [migration.name])
            if response is None:
                raise ScratchUnavailable(f"could not build a database in the state before {migration.name} "
                                         f"({purpose}): {step.error_summary()}")
            yield database
        finally:
            database.close()
