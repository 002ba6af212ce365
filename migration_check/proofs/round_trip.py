"""Judging: the verdicts of one migration's test, from what its steps did and what was observed.

Every function here is pure (results in, verdicts out): no database, no process, so each rule
is unit-tested on its own. The window (`chain.WindowChain`) runs the steps and calls these.

Owns: the apply, rollback and re-apply verdicts (`judge_apply`, `judge_rollback`,
`judge_reapply`), the data verdict (`judge_data`: losses, their cause, what the migration
created), and the line a verdict is logged with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import rules
from ..config import MigrationKey
from ..inside_django.protocol import OperationEffect, WindowMigration
from ..postgres.catalog import Columns
from ..processes.steps import StepResult
from ..project.discovery import MigrationInfo
from ..results import Finding
from ..verdicts import Data, FindingKind, StepOutcome
from .data.fingerprints import Fingerprint, compare_fingerprints, example_key

Loss = tuple[str, str | None, int, str]  # table, column (None: whole rows), rows, example key


@dataclass(frozen=True)
class StepVerdict:
    """A step's verdict: status (passed or failed), the error to report, and why the chain of
    migrations cannot go on from this database (None when it can)."""

    status: StepOutcome
    error: str | None = None
    broken: str | None = None


@dataclass(frozen=True)
class RollbackVerdict(StepVerdict):
    """Also: the migrations Django rolled back alongside (a sibling branch of a merge)."""

    collateral: frozenset[MigrationKey] = field(default_factory=frozenset)


def judge_apply(step: StepResult, migration: MigrationInfo, data_migration_before: str | None = None) -> StepVerdict:
    """Applying the migration over pre-release data, as production does. `data_migration_before`:
    the data migration just before it in its app, when the run does not know the releases (no
    --since): the rows seeded at the migration's own state may hold values that one fixes."""
    if step.ok:
        return StepVerdict(StepOutcome.PASSED)
    error = f"applying {migration.name} over pre-release data failed: {step.error_summary()}"
    if data_migration_before:
        error += (f" (if {data_migration_before}, the data migration just before it, is deployed in the same "
                  "release, run with --since and the release's base revision: the rows are then seeded before "
                  "the release and go through its data migration first)")
    return StepVerdict(StepOutcome.FAILED, error, f"{migration.name} could not be applied" if step.timed_out else None)


def judge_rollback(step: StepResult, migration: MigrationInfo, applied_before: set[MigrationKey],
                   applied_after: set[MigrationKey]) -> RollbackVerdict:
    """`migrate APP PREVIOUS`: it must succeed and leave the migration unapplied. `applied_*`
    are what django_migrations records (squashes resolved) before and after the step."""
    if not step.ok:
        if step.timed_out:
            broken = f"rolling back {migration.name} timed out"
        elif migration.key not in applied_after:
            broken = f"the failed rollback of {migration.name} left it unapplied"
        else:
            broken = None
        return RollbackVerdict(StepOutcome.FAILED, step.error_summary(), broken)
    if migration.key in applied_after:
        return RollbackVerdict(StepOutcome.FAILED,
                               f"migrate exited 0 but {migration.name} is still recorded as applied",
                               f"{migration.name} is still applied after its rollback")
    return RollbackVerdict(StepOutcome.PASSED, collateral=frozenset(applied_before - applied_after - {migration.key}))


def judge_sibling_reapply(step: StepResult | None, migration: MigrationInfo,
                          siblings: list[MigrationKey]) -> StepVerdict:
    """Putting back what Django rolled back alongside `migration`: without it the database is
    not in the state before `migration`, so nothing can be compared there."""
    names = ", ".join(f"{app}.{name}" for app, name in siblings)
    if step is None or step.ok:
        return StepVerdict(StepOutcome.PASSED)
    error = (f"rolling back {migration.name} also rolled back {names}, and re-applying "
             f"{names} failed: {step.error_summary()}")
    return StepVerdict(StepOutcome.FAILED, error,
                       f"{names} could not be re-applied after rolling back {migration.name}")


def judge_reapply(step: StepResult, migration: MigrationInfo) -> StepVerdict:
    """`migrate APP M` again, after the rollback, with the data present."""
    if step.ok:
        return StepVerdict(StepOutcome.PASSED)
    return StepVerdict(StepOutcome.FAILED, step.error_summary(), f"{migration.name} could not be re-applied")


def collateral_info(table: str, column: str | None) -> Finding:
    return Finding(FindingKind.INFO, f"{table}.{column or '*'}: values went with the sibling migration rolled back "
                   "alongside; not judged here", {"table": table})


def release_info(table: str, column: str | None, rows: int, migration: MigrationInfo) -> Finding:
    return Finding(FindingKind.INFO, f"{table}.{column or '*'}: {rows} row(s) changed by rolling back "
                   f"{migration.name}; the release created it, so no value written before the release is among "
                   "them (the release's rollback removes it)", {"table": table})


def cause_of(loss: Loss, effects: list[OperationEffect]) -> OperationEffect | None:
    """The forward operation that destroyed the values (a column first altered then removed was
    destroyed by the removal: removals are named first)."""
    table, column = loss[0], loss[1]
    ordered = sorted(effects, key=lambda e: e["type"] == "AlterField")
    return next((e for e in ordered if e["table"] == table.strip('"')
                 and (e["column"] is None or e["column"] == column)), None)


def loss_finding(loss: Loss, migration: MigrationInfo, cause: OperationEffect | None) -> Finding:
    table, column, count, example = loss
    what = f"column {table}.{column}: {count} row(s) changed or emptied" if column \
        else f"table {table}: {count} row(s) gone"
    message = f"{what} after rolling back {migration.name} (e.g. primary key {example_key(example)})"
    if cause:
        message += f"; destroyed by the forward operation {cause['type']} ({cause['description']})"
    return Finding(FindingKind.DATA_LOST, message, {
        "table": table, "column": column, "rows": count, "example_pk": example,
        "operation": f"{cause['type']}: {cause['description']}" if cause else None}, rules.DATA_LOST)


def created_by(migration: MigrationInfo, columns_before: Columns, columns_applied: Columns) -> list[Finding]:
    """Tables and columns the migration created: post-release values in them are necessarily
    discarded by the rollback (information, not loss). Renamed ones are not new."""
    kinds = {op.type for op in migration.operations}
    tables_gone = columns_before.keys() - columns_applied.keys()
    findings = []
    for table, columns in sorted(columns_applied.items()):
        created = sorted(columns - columns_before.get(table, set())) if table in columns_before else None
        # A renamed table or column is not new: the rollback renames it back, values and all.
        if created is None and tables_gone and kinds & {"RenameModel", "AlterModelTable"}:
            continue
        if created and "RenameField" in kinds and columns_before[table] - columns:
            continue
        if created is None:
            findings.append(Finding(FindingKind.INFO, f"table {table} was created by {migration.name}; "
                                    "post-release rows in it are discarded by the rollback"))
        elif created:
            findings.append(Finding(FindingKind.INFO, f"column(s) {', '.join(created)} of {table} were created by "
                                    f"{migration.name}; post-release values in them are discarded by the rollback"))
    return findings


@dataclass(frozen=True)
class DataVerdict:
    data: Data  # preserved or lost
    findings: list[Finding]


def judge_data(migration: MigrationInfo, meta: WindowMigration, before: Fingerprint, after: Fingerprint,
               columns_before: Columns, columns_applied: Columns,
               collateral_columns: frozenset[tuple[str, str | None]] = frozenset(),
               new_in_release: frozenset[tuple[str, str | None]] = frozenset()) -> DataVerdict:
    """Pre-release rows after the rollback against their fingerprints before the migration.
    `new_in_release`: tables and columns the migration's release created before it (--since):
    what their values become is not a loss of anything written before the release."""
    findings: list[Finding] = []
    losses: list[Loss] = []
    for loss in compare_fingerprints(before, after):
        table, column = loss[0], loss[1]
        if (table, column) in collateral_columns or (table, None) in collateral_columns:
            findings.append(collateral_info(table, column))
        elif (table, column) in new_in_release or (table, None) in new_in_release:
            findings.append(release_info(table, column, loss[2], migration))
        else:
            losses.append(loss)
    findings += [loss_finding(loss, migration, cause_of(loss, meta.get("effects", []))) for loss in losses]
    findings += created_by(migration, columns_before, columns_applied)
    return DataVerdict(Data.LOST if losses else Data.PRESERVED, findings)
