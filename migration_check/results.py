"""Results of a run: what every check and every migration was found to be.

Owns: `Finding` (one entry of a migration's `details`), `CheckResult`, `MigrationResult` (the
verdicts of CONTRACT.md, and which of them fail the run), `AppResult` and `RunResult`. Reports
read these and never recompute a verdict.

Uses: timing (the Phase type).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .timing import Phase

# Values of the verdict fields (CONTRACT.md).
APPLY_VALUES = ("passed", "failed", "not_run")
ROLLBACK_VALUES = ("passed", "failed", "irreversible", "blocked", "not_run")
REAPPLY_VALUES = ("passed", "failed", "not_run")
SCHEMA_VALUES = ("identical", "differs", "not_checked")
DATA_VALUES = ("preserved", "lost", "not_checked")
FINDING_KINDS = ("schema", "data_lost", "info")


@dataclass(frozen=True)
class Finding:
    """One entry of a migration's `details`: kind is schema, data_lost or info."""

    kind: str
    message: str
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, **self.extra}


@dataclass
class CheckResult:
    name: str
    status: str  # passed | failed | skipped
    duration_s: float
    detail: str | None = None


@dataclass
class MigrationResult:
    """The verdicts for one migration of a window (values as in CONTRACT.md)."""

    app: str
    name: str
    file: str | None
    line: int | None = None
    apply: str = "not_run"  # applying it over pre-release data: passed | failed | not_run
    rollback: str = "not_run"  # passed | failed | irreversible | blocked | not_run
    reapply: str = "not_run"  # passed | failed | not_run
    schema: str = "not_checked"  # identical | differs | not_checked
    data: str = "not_checked"  # preserved | lost | not_checked
    error: str | None = None
    details: list[Finding] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    acknowledged: bool = False

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"

    @property
    def problems(self) -> list[str]:
        """What makes this migration fail the run (empty when it passes or is acknowledged)."""
        found = []
        if self.apply == "failed":
            found.append("apply failed")
        if self.rollback in ("failed", "not_run") or (self.rollback == "irreversible" and not self.acknowledged):
            found.append(f"rollback {self.rollback}")
        if self.reapply == "failed":
            found.append("re-apply failed")
        if self.schema == "differs":
            found.append("schema differs")
        if self.data == "lost" and not self.acknowledged:
            found.append("data lost")
        return found


@dataclass
class AppResult:
    app: str
    migrations: list[MigrationResult]  # newest first
    error: str | None = None


@dataclass
class RunResult:
    checks: list[CheckResult]
    apps: list[AppResult]
    duration_s: float
    server_version: str
    ephemeral: bool
    processes: int
    skipped_apps: list[str] = field(default_factory=list)
    project_dir: Path | None = None  # what migration file paths are relative to
    timings: dict[str, Phase] = field(default_factory=dict)  # seconds by phase, summed over threads
    steps: int = 0  # Django commands run (processes counts Python processes started)
    isolation: str = "process"  # how the steps ran: fork | process

    @property
    def ok(self) -> bool:
        return (all(c.status == "passed" for c in self.checks)
                and all(a.error is None and not any(m.problems for m in a.migrations) for a in self.apps))
