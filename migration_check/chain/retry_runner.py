"""The retry proof's database work (see proofs/retry.py for what it proves and why).

Every database here is the proof's own, built forward to the state just before the migration and
seeded with the same pre-release rows (the same round token), so the clean apply and each cut
attempt start from identical states and nothing here touches the chain's database or verdicts.

Owns: `RetryRunner` (the clean apply, the cut attempts and their retries, the verdict written
into the migration's result).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..config import MigrationKey
from ..inside_django.protocol import (
    CutRequest,
    InterruptedApplyResponse,
    PrepareResponse,
    StatementRecord,
    WindowMigration,
)
from ..log import Log
from ..processes.steps import StepResult
from ..project.discovery import MigrationInfo
from ..proofs.data.fingerprints import Fingerprint
from ..proofs.data.seeding import PRE_RELEASE_PROFILES, Choices, SeedReport
from ..proofs.retry import Attempt, Cut, choose_cuts, data_differences, judge_retry, runs_in_one_transaction
from ..proofs.schema import SchemaSnapshot, diff_schema
from ..results import Finding, MigrationResult
from ..verdicts import FindingKind, Retry


class RetryDatabase(Protocol):
    """What the retry proof needs of a scratch database (chain/scratch.py ScratchDatabase)."""

    def build(self, app: str, targets: Sequence[MigrationKey], window: Sequence[str],
              ) -> tuple[StepResult, PrepareResponse | None]: ...
    def seed(self, tables: Sequence[str], profiles: Sequence[str], round_token: int | None = None,
             choices: Choices | None = None) -> SeedReport: ...
    def interrupted_apply(self, app: str, name: str, cut: CutRequest | None,
                          ) -> tuple[StepResult, InterruptedApplyResponse | None]: ...
    def migrate(self, app: str | None = None, target: str | None = None) -> StepResult: ...
    def schema(self) -> SchemaSnapshot: ...
    def fingerprint(self, ignore_columns: dict[str, set[str]]) -> Fingerprint: ...
    def close(self) -> None: ...


@dataclass
class RetryPlan:
    """One migration's retry proof: where its databases start and what they hold."""

    migration: MigrationInfo
    base_targets: list[MigrationKey]  # `migrate` targets of the state just before it
    meta: WindowMigration  # its tables before it (seeded), their choices and auto_now columns
    round_token: int  # the chain's pre-release round for it: the same rows


@dataclass
class CleanApply:
    statements: list[StatementRecord]
    schema: SchemaSnapshot
    data: Fingerprint


class RetryRunner:
    """Runs the retry proof of one migration on databases of its own."""

    def __init__(self, open_database: Callable[[str], RetryDatabase], log: Log) -> None:
        self.open_database = open_database
        self.log = log

    def prove(self, plan: RetryPlan, result: MigrationResult) -> None:
        """Write `result.retry` (and its findings into `result.details`)."""
        migration = plan.migration
        clean, why = self.clean_apply(plan)
        if clean is None:
            result.retry = Retry.NOT_CHECKED
            result.details.append(Finding(FindingKind.INFO, f"retry not checked: {why}"))
            return
        if runs_in_one_transaction(migration.atomic, clean.statements):
            result.retry = Retry.PASSED  # a cut attempt is rolled back whole: nothing to retry over
            return
        cuts = choose_cuts(clean.statements)
        self.log.detail(f"  {migration.label}: retry proof, {len(cuts)} cut(s) of {len(clean.statements)} statements")
        attempts = [self.attempt(plan, cut, clean) for cut in cuts]
        result.retry, findings = judge_retry([a for a in attempts if a is not None])
        if any(a is None for a in attempts):
            findings.append(Finding(FindingKind.INFO, "some cut attempts could not be prepared (see -v 2)"))
        result.details.extend(findings)

    def prepared(self, plan: RetryPlan, purpose: str) -> tuple[RetryDatabase, str | None]:
        """A database of its own at the state just before the migration, with its pre-release rows."""
        database = self.open_database(purpose)
        step, response = database.build(plan.migration.app, plan.base_targets, [plan.migration.name])
        if response is None:
            return database, f"building the state before it failed: {step.error_summary()}"
        tables = plan.meta["tables_before"]
        choices = {table: info.get("choices", {}) for table, info in tables.items()}
        database.seed(sorted(tables), PRE_RELEASE_PROFILES, plan.round_token, choices)
        return database, None

    def ignored_columns(self, plan: RetryPlan) -> dict[str, set[str]]:
        # Columns Django fills on every save (auto_now) differ between any two applies.
        tables = {**plan.meta["tables_before"], **plan.meta["tables_after"]}
        return {table: set(info.get("auto_now", [])) for table, info in tables.items()}

    def clean_apply(self, plan: RetryPlan) -> tuple[CleanApply | None, str]:
        database, failure = self.prepared(plan, f"{plan.migration.app}-retry-clean")
        try:
            if failure:
                return None, failure
            step, response = database.interrupted_apply(plan.migration.app, plan.migration.name, None)
            if response is None or not step.ok:
                return None, f"its clean apply failed: {step.error_summary()}"
            return CleanApply(response["statements"], database.schema(),
                              database.fingerprint(self.ignored_columns(plan))), ""
        finally:
            database.close()

    def attempt(self, plan: RetryPlan, cut: Cut, clean: CleanApply) -> Attempt | None:
        """Cut one attempt off at `cut`, migrate again, and compare with the clean apply."""
        migration = plan.migration
        described = cut.describe(clean.statements)
        database, failure = self.prepared(plan, f"{migration.app}-retry")
        try:
            if failure:
                self.log.detail(f"  {migration.label}: retry {described}: {failure}")
                return None
            step, response = database.interrupted_apply(migration.app, migration.name, cut.request())
            reached = response is not None and response["cut"] is not None
            if response is None:  # the attempt itself failed before the cut: a fault of its own
                self.log.detail(f"  {migration.label}: the attempt {described} failed: {step.error_summary()}")
            retry = database.migrate(migration.app, migration.name)
            if not retry.ok:
                return Attempt(described, reached, retry.error_summary(), [], [])
            moment = f"after a retry of {migration.name} {described}"
            return Attempt(described, reached, None, diff_schema(clean.schema, database.schema(), moment),
                           data_differences(clean.data, database.fingerprint(self.ignored_columns(plan))))
        finally:
            database.close()
