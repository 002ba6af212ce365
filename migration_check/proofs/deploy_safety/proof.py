"""One apply's observation, written into its migration's result: the chain's hook for locks.

Owns: `record_apply` (the lock verdict of hazards.py, squawk's findings on the statements that
ran, and what --volume could not do, as fields and details of the MigrationResult) and
`DeploySafety`, what a chain needs to know for it (squawk, the server version, --volume).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...results import Finding, MigrationResult
from ...verdicts import FindingKind
from .hazards import Event, judge_locks
from .squawk import Squawk, run_squawk, squawk_hazards
from .volume import VolumeFill


@dataclass(frozen=True)
class DeploySafety:
    """Shared by a run's chains: whether to observe, squawk if installed, the server's version
    (squawk's --pg-version), and --volume."""

    observe: bool = False
    squawk: Squawk | None = None
    server_version: str = ""
    volume: int | None = None


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
