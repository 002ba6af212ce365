"""The retry proof of one migration, on databases of its own (see `cuts` for what it proves).

Every database here is the proof's own, built forward to the state just before the migration
(`ScratchDatabases.before`) and seeded with the chain's pre-release rows for it (the same round
token), so the clean apply and each cut attempt start from identical states, and nothing here
touches the chain's database or its verdicts.

Owns: `RetryProof` (the clean apply, the cut attempts and their retries, and `retry` with its
findings written into the migration's result).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...config import MARKER_ALLOW_UNSAFE_RETRY
from ...inside_django.protocol import StatementRecord
from ...results import Finding
from ...verdicts import FindingKind, Retry, StepOutcome
from ..data.fingerprints import Fingerprint
from ..data.pre_release import database_with_pre_release_rows
from ..protocol import MigrationTest, Proof, ScratchDatabases
from ..schema import SchemaSnapshot, diff_schema
from .cuts import Attempt, Cut, build_noise, choose_cuts, data_differences, judge_retry, runs_in_one_transaction


@dataclass
class CleanApply:
    """The migration applied whole on a database of the proof's own: what it ran, and where it ended."""

    statements: list[StatementRecord]
    schema: SchemaSnapshot
    data: Fingerprint
    start: Fingerprint  # before the apply: what an attempt's database is compared with for build noise


class RetryProof(Proof):
    """Deploys get cut off (a lock_timeout, a CI time-out, a killed pod). An atomic migration is
    then rolled back whole, but one with `atomic = False` keeps what its statements did, and the
    retry runs it again from the top: a cancelled CREATE INDEX CONCURRENTLY leaves an INVALID
    index that makes AddIndexConcurrently fail with "already exists" (and IF NOT EXISTS keep it
    INVALID), and a backfill that adds to what it finds counts its first batches twice. So does an
    atomic migration whose RunSQL issues a COMMIT: what ran before it stays."""

    name = "retry"

    def after_steps(self, test: MigrationTest, scratch: ScratchDatabases) -> None:
        if not test.config.check_retry:
            return
        migration, result = test.migration, test.result
        result.retry_acknowledged = (migration.key in test.config.allow_unsafe_retry
                                     or migration.marker_present(MARKER_ALLOW_UNSAFE_RETRY))
        if result.apply != StepOutcome.PASSED:  # nothing to retry over: the apply itself is the problem
            return
        if migration.atomic and not migration.ends_transaction:
            result.retry = Retry.PASSED  # PostgreSQL rolls a cut-off attempt back whole: the retry starts clean
            return
        clean, why = self.clean_apply(test, scratch)
        if clean is None:
            result.details.append(Finding(FindingKind.INFO, f"retry not checked: {why}"))
            return
        if runs_in_one_transaction(migration.atomic, clean.statements):
            result.retry = Retry.PASSED  # the statement read as a COMMIT did not end the transaction
            return
        if migration.atomic:  # the clean apply saw its transaction end part-way
            ended = ", ".join(f"`{statement}`" for statement in migration.ends_transaction)
            result.details.append(Finding(FindingKind.INFO, f"atomic, but its RunSQL ends the transaction part-way "
                                          f"({ended}): what ran before that stays done when a deploy is cut off "
                                          "after it, so it is cut off and run again as a non-atomic migration is"))
        attempts = [self.attempt(test, scratch, cut, clean) for cut in choose_cuts(clean.statements)]
        result.retry, findings = judge_retry(attempts)
        result.details.extend(findings)

    @staticmethod
    def ignored_columns(test: MigrationTest) -> dict[str, set[str]]:
        # Columns Django fills on every save (auto_now) differ between any two applies.
        tables = {**test.meta["tables_before"], **test.meta["tables_after"]}
        return {table: set(info.get("auto_now", [])) for table, info in tables.items()}

    def clean_apply(self, test: MigrationTest, scratch: ScratchDatabases) -> tuple[CleanApply | None, str]:
        migration = test.migration
        # The chain's pre-release rows for this migration (the same round token: the same rows).
        with database_with_pre_release_rows(test, scratch, f"{migration.app}-retry-clean") as database:
            start = database.fingerprint(self.ignored_columns(test))
            step, response = database.interrupted_apply(migration.app, migration.name, None)
            if response is None or not step.ok:
                return None, f"its clean apply on a database of its own failed: {step.error_summary()}"
            return CleanApply(response["statements"], database.schema(),
                              database.fingerprint(self.ignored_columns(test)), start), ""

    def attempt(self, test: MigrationTest, scratch: ScratchDatabases, cut: Cut, clean: CleanApply) -> Attempt:
        """Cut one attempt off at `cut`, migrate again with nothing in the way, and compare."""
        migration = test.migration
        described = cut.describe(clean.statements)
        # The chain's pre-release rows for this migration (the same round token: the same rows).
        with database_with_pre_release_rows(test, scratch, f"{migration.app}-retry") as database:
            noise = build_noise(clean.start, database.fingerprint(self.ignored_columns(test)))
            database.interrupted_apply(migration.app, migration.name, cut.request())
            retry = database.migrate(migration.app, migration.name)
            if not retry.ok:
                return Attempt(described, retry.error_summary(), [], [])
            moment = f"after a retry of {migration.name} {described}"
            return Attempt(described, None, diff_schema(clean.schema, database.schema(), moment),
                           data_differences(clean.data, database.fingerprint(self.ignored_columns(test)), noise))
