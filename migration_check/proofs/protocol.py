"""The proof protocol: what a proof is, the moments of a migration's test it hooks into, and
what its hooks are handed. docs/proofs.md is the page for it.

The chain (`chain.window_chain.WindowChain`) exercises every migration M of a window with the
same steps, the round trip: `migrate APP M` over pre-release rows, `migrate APP PREVIOUS`, `migrate
APP M` again. The round trip is the skeleton the proofs hang on, so it is the chain's own work
(verdicts `apply`, `rollback`, `reapply`, judged in `round_trip`). Everything else a migration is
proved to do is a proof: a class with a `name`, a docstring saying why it matters, and hooks the
chain calls at these moments, for every proof of `registry.PROOFS`, in that order:

    before_apply     the state just before M (pre-release rows seeded by the data proof)
    around_apply     wraps `migrate APP M`: the first proof listed is the outermost wrapper
    after_apply      M applied; skipped when the apply left the chain's database unusable
    before_rollback  the state after M, before the rollback (post-release rows seeded)
    after_rollback   the rollback passed (the schema and rows are back before M, or should be)
    after_reapply    the re-apply passed (the round trip is complete)
    after_steps      once the steps on the chain's database are over, whatever they found,
                     with a factory of scratch databases of the proof's own

A proof object lives for one migration's test: the chain makes a fresh one per migration, so
what a hook keeps on `self` is for the later hooks of the same migration (threads never share
it). Hooks write verdicts and findings into `test.result`; they never run a step of the chain.

Owns: `Proof`, `MigrationTest` (what the hooks share), `ReleaseStart`, `ObservedState`, `ProofDatabase` (what a
proof may do with a database), `ApplyStep` and `ScratchDatabases` (the hooks' extra arguments)
and `ScratchUnavailable`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ..config import Config, MigrationKey
from ..inside_django.protocol import (
    CutRequest,
    InterruptedApplyResponse,
    ModelDescription,
    TableDescription,
    WindowMigration,
)
from ..log import Log
from ..postgres.catalog import Columns
from ..processes.steps import StepResult
from ..project.discovery import MigrationInfo, Project
from ..results import MigrationResult
from .compat.statements import Lookup, Outcome, Resolved, Statement
from .data.fingerprints import Fingerprint
from .data.seeding import Choices, SeedReport
from .data.unique_keys import UniqueKeys
from .deploy_safety.hazards import Event
from .deploy_safety.settings import DeploySafety
from .deploy_safety.volume import VolumeFill
from .round_trip import StepVerdict
from .schema import SchemaSnapshot


class ProofDatabase(Protocol):
    """What a proof may do with a database: the chain's (`scratch.ScratchDatabase`), a scratch
    database of its own, or a fake in the unit tests."""

    def migrate(self, app: str | None = None, target: str | None = None) -> StepResult: ...
    def applied(self) -> set[MigrationKey]: ...
    def schema(self) -> SchemaSnapshot: ...
    def columns(self) -> Columns: ...
    def fingerprint(self, ignore_columns: dict[str, set[str]]) -> Fingerprint: ...
    def seed(self, tables: Sequence[str], profiles: Sequence[str], round_token: int | None = None,
             choices: Choices | None = None) -> SeedReport: ...
    def compat_resolve(self, lookups: Sequence[Lookup]) -> Resolved: ...
    def compat_run(self, statements: Sequence[Statement]) -> list[Outcome]: ...
    def begin_observation(self, tables: Sequence[str], volume: int | None) -> VolumeFill | None: ...
    def end_observation(self, fill: VolumeFill | None) -> tuple[list[Event] | None, list[str]]: ...
    def unique_keys(self) -> UniqueKeys: ...
    def repeat_key(self, table: str, key: Sequence[str], report: SeedReport, choices: Choices | None = None,
                   ) -> str | None: ...
    def interrupted_apply(self, app: str, name: str, cut: CutRequest | None,
                          ) -> tuple[StepResult, InterruptedApplyResponse | None]: ...
    def session(self) -> Any:
        """A new connection (autocommit) to this database, as the project's code connects: a
        proof's concurrent sessions (the rehearsal's traffic); the caller closes it."""
        ...


@dataclass(kw_only=True)
class ObservedState:
    """What was recorded of a database state: the column inventory (the chain's), the schema
    snapshot (the schema proof's; None when off), and the data proof's fingerprint (None when
    off, or when the data had to go) and what its seeding did."""

    columns: Columns
    schema: SchemaSnapshot | None = None
    data: Fingerprint | None = None
    seeded: SeedReport | None = None


@dataclass(frozen=True, kw_only=True)
class ReleaseStart:
    """With --since the window is the release: its migrations are deployed together, and no user
    writes a row between two of them. The rows written before the release are seeded once, just
    before its first migration of the app, and each later migration is tested over those rows as
    the release's own earlier migrations left them (their data migrations' fixes included), not
    over rows seeded at its own state, which no production database holds (docs/proofs.md).

    `migration`: the release's first migration of the app, where the rows were seeded; `tables`
    and `columns`: the app's tables as `prepare` described them, and the database's columns, at
    that moment; `old_models`: the models of the code before the release (the compat check's
    previous release; None when `prepare` described none); `seeded`: what the seeding did;
    `through`: the release's migrations applied over the rows since, oldest first (`migration`
    included); `first`: `migration` is the release's first of the app (False when the rows
    seeded there could not reach it: a failed apply emptied the tables, a database was rebuilt)."""

    migration: MigrationInfo
    tables: dict[str, TableDescription]
    columns: Columns
    old_models: list[ModelDescription] | None
    seeded: SeedReport
    through: tuple[str, ...]
    first: bool = True

    def new_in_release(self, columns: Columns) -> frozenset[tuple[str, str | None]]:
        """What of `columns` (a later inventory) the release created: (table, None) for a whole
        table, (table, column) for a column. No value written before the release can be there.
        When unsure, a name is not new: while a table of the start is gone no new table counts (it
        may be that one renamed), and while a column of a table is gone no new column of it does."""
        gone_tables = set(self.columns) - set(columns)
        tables = set() if gone_tables else {(table, None) for table in columns if table not in self.columns}
        added = {(table, column) for table, names in columns.items()
                 if table in self.columns and not self.columns[table] - names
                 for column in names - self.columns[table]}
        return frozenset(tables | added)


@dataclass(kw_only=True)
class MigrationTest:
    """What the proofs of one migration's test share: the run's configuration, the project, the
    migration and what `prepare` described of it, its result (where verdicts are written), the
    chain's database, and the states observed so far. The chain fills `applied` after the apply
    and `collateral_columns` after the rollback (columns of sibling migrations Django rolled
    back alongside M and that were put back: not M's to judge). `release_start` is set when M
    is tested over the rows seeded at its release's start (with --since; see `ReleaseStart`)."""

    config: Config
    project: Project
    safety: DeploySafety
    migration: MigrationInfo
    meta: WindowMigration
    result: MigrationResult
    database: ProofDatabase
    before: ObservedState
    applied: ObservedState | None = None
    collateral_columns: frozenset[tuple[str, str | None]] = frozenset()
    release_start: ReleaseStart | None = None
    log: Log | None = None  # the run's console, for the progress line of a proof's own slow steps

    @property
    def observed_after(self) -> ObservedState:
        """The state after the apply (from `before_rollback` on)."""
        assert self.applied is not None, "the state after the apply is observed before the rollback"
        return self.applied


class ApplyStep(Protocol):
    """`migrate APP M` on the chain's database, logged as "apply" (plus `note`), judged. A proof
    wrapping the apply calls it once, or again after undoing what made it fail, and returns the
    verdict the migration gets."""

    def __call__(self, note: str = "") -> StepVerdict: ...


class ScratchDatabases(Protocol):
    """Scratch databases for a proof's own use (a uniqueness probe, an interrupted-and-retried
    apply, a second volume), apart from the chain's database, which the proofs share."""

    def before(self, migration: MigrationInfo, purpose: str) -> AbstractContextManager[ProofDatabase]:
        """A fresh database built forward to the state just before `migration` (neither it nor
        anything that depends on it applied), named after `purpose`; dropped when the block
        ends. Raises `ScratchUnavailable` when it cannot be built."""
        ...

    def targets_before(self, migration: MigrationInfo) -> list[MigrationKey]:
        """The `migrate APP NAME` targets of the state just before `migration` (what `before`
        builds): to carry a database built to an older state there (pre_release)."""
        ...


class ScratchUnavailable(Exception):
    """A proof's scratch database could not be built (the message says why)."""


class Proof:
    """A named unit of proof. Subclasses set `name` (a stable id, the docs' anchor), say in their
    docstring why the property matters, and override the hooks they need; every hook here does
    nothing. Hooks are called in the order of the module docstring."""

    name: ClassVar[str]
    # False: not run on a squash's replaced path (tested for older databases; a deploy of the
    # squash never applies those migrations, so what a deploy costs is not theirs to show).
    replaced_paths: ClassVar[bool] = True

    def before_apply(self, test: MigrationTest) -> None:
        """The database is in the state just before the migration (`test.before`)."""

    def around_apply(self, test: MigrationTest, apply: ApplyStep) -> StepVerdict:
        """Wrap the apply, as a Django middleware wraps `get_response`: do something before
        (start concurrent sessions, fill tables), call `apply()`, do something after (stop and
        judge), and return its verdict. Runs whether the apply passes or fails."""
        return apply()

    def after_apply(self, test: MigrationTest) -> None:
        """The migration was applied (over the pre-release rows when `test.result.apply` is
        passed, on emptied tables when it is failed), before anything else touched the data."""

    def before_rollback(self, test: MigrationTest) -> None:
        """The state after the migration (`test.applied`), before it is rolled back."""

    def after_rollback(self, test: MigrationTest) -> None:
        """The rollback passed; the database should be back in the state before the migration."""

    def after_reapply(self, test: MigrationTest) -> None:
        """The re-apply passed: the round trip is complete."""

    def after_steps(self, test: MigrationTest, scratch: ScratchDatabases) -> None:
        """The migration's steps on the chain's database are over (read `test.result` for what
        they found). A proof that needs a database of its own at a given state gets one from
        `scratch`; the chain's database is not to be touched here."""
