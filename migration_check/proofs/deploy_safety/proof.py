"""One apply's observation, written into its migration's result: the deploy-safety proof.

Owns: `DeploySafetyProof` (the observation around each apply, and the --volume rows, see
`protocol`), `record_apply` (the lock verdict of hazards.py, squawk's findings on the statements
that ran, and what --volume could not do, as fields and details of the MigrationResult); and
re-exports `DeploySafety` (settings.py), what a chain needs to know for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...results import Finding, MigrationResult
from ...verdicts import FindingKind, StepOutcome
from ..protocol import ApplyStep, MigrationTest, Proof
from ..round_trip import StepVerdict
from .hazards import Event, judge_locks
from .settings import DeploySafety
from .squawk import run_squawk, squawk_hazards
from .volume import VolumeFill

__all__ = ["DeploySafety", "DeploySafetyProof", "record_apply", "volume_findings"]


def volume_findings(fill: VolumeFill | None, cleanup_problems: Sequence[str]) -> list[Finding]:
    if fill is None:
        return []
    found = [Finding(FindingKind.INFO, f"--volume: {table} was not filled: {why}", {"table": table})
             for table, why in sorted(fill.skipped.items())]
    found += [Finding(FindingKind.INFO, f"--volume: the added rows could not be deleted again: {problem}")
              for problem in cleanup_problems]
    return found


def record_apply(result: MigrationResult, events: Sequence[Event], pre_existing: set[str], safety: DeploySafety,
                 fill: VolumeFill | None, cleanup_problems: Sequence[str]) -> None:
    """Judge what was observed while `result`'s migration was applied, and write it down."""
    verdict = judge_locks(events, pre_existing, fill.counts if fill is not None else None)
    hazards = list(verdict.hazards)
    if safety.squawk is not None:
        findings, problem = run_squawk(safety.squawk, verdict.statements, safety.server_version, verdict.atomic)
        hazards += squawk_hazards(findings, verdict.statements, events, pre_existing)
        if problem:
            result.details.append(Finding(FindingKind.INFO, problem))
    result.rewrites, result.locks, result.statements = verdict.rewrites, verdict.locks, verdict.statements
    result.hazards, result.lock_holds = hazards, verdict.holds
    result.exclusive_without_timeout = verdict.exclusive_without_timeout
    result.details.extend(volume_findings(fill, cleanup_problems))


class DeploySafetyProof(Proof):
    """A migration that takes a write-blocking lock on a busy table, or rewrites it, is an outage
    while it runs, however correct its result: the server is watched while the migration is
    applied (locks, rewrites, the statements that ran), and the hazards are named with their fix.
    Observed only where event triggers can be installed (a superuser); the database decides."""

    name = "deploy_safety"

    def around_apply(self, test: MigrationTest, apply: ApplyStep) -> StepVerdict:
        """Observe the apply (with --volume, over more rows per table); a verdict only when it passed."""
        database, safety = test.database, test.safety
        fill = database.begin_observation(sorted(test.meta["tables_before"]), safety.volume)
        verdict = apply()
        if verdict.status != StepOutcome.PASSED and fill is not None and fill.keys and not verdict.broken:
            verdict = self.apply_without_volume(test, apply, fill, verdict)
            fill = None
        if verdict.status == StepOutcome.PASSED:
            events, cleanup = database.end_observation(fill)
            if events is not None:
                record_apply(test.result, events, set(test.before.columns), safety, fill, cleanup)
        return verdict

    @staticmethod
    def apply_without_volume(test: MigrationTest, apply: ApplyStep, fill: VolumeFill,
                             failed: StepVerdict) -> StepVerdict:
        """The --volume rows are made up: when the apply fails over them, delete them and apply
        over the seeded rows alone, as without --volume."""
        test.database.end_observation(fill)
        test.result.details.append(Finding(FindingKind.INFO, f"--volume: over {fill.rows} more rows per table "
                                           f"the apply failed ({failed.error}); applied again without them"))
        test.database.begin_observation([], None)
        return apply("without the volume rows")
