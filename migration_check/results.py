"""Results of a run: what every check and every migration was found to be.

Owns: `Finding` (one entry of a migration's `details`), `Hazard` and `LockHold` (what was
observed on the server while a migration was applied, see hazards.py), `CheckResult`,
`MigrationResult` (the verdicts of CONTRACT.md, and which of them fail the run), `AppResult`,
`Selection` (what --since and --shard chose) and `RunResult`. Reports read these and never
recompute a verdict.

Uses: timing (the Phase type).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .postgres.faults import Fault
from .timing import Phase

NOT_CHECKED = "not_checked"

@dataclass(frozen=True)
class Finding:
    """One entry of a migration's `details`: kind is schema, data_lost, compat or info."""

    kind: str
    message: str
    extra: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, **self.extra}


@dataclass(frozen=True)
class Hazard:
    """A deploy hazard: a stable rule id, the table, the lock mode held (pg_locks' name), the
    statement that ran, what happened, the Django way around it, and where it comes from
    (`observed` on the server, or `squawk`). `migrations` names them for a run-wide hazard."""

    rule: str
    table: str | None
    mode: str | None
    statement: str
    message: str
    fix: str
    source: str = "observed"
    migrations: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"rule": self.rule, "table": self.table, "mode": self.mode,
                                   "statement": self.statement, "message": self.message, "fix": self.fix,
                                   "source": self.source}
        if self.migrations:
            data["migrations"] = list(self.migrations)
        return data


@dataclass(frozen=True)
class LockHold:
    """How long a write-blocking lock on an existing table was held while the migration applied,
    measured, with the table's rows at that moment when known (--volume)."""

    table: str
    mode: str
    held_s: float
    rows: int | None = None

    def to_json(self) -> dict[str, object]:
        return {"table": self.table, "mode": self.mode, "held_s": self.held_s, "rows": self.rows}


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
    # The compat check: the code beside the schema during the deploy (compatible |
    # breaks_old_code | not_checked), which
    # direction was checked (old_code_on_new_schema | new_code_on_old_schema, None when
    # not checked), and whether a
    # breaks_old_code verdict was accepted on purpose.
    compat: str = NOT_CHECKED
    compat_direction: str | None = None
    compat_acknowledged: bool = False
    # Observed while applying it over pre-release rows (hazards.py); "not_checked" when not observed.
    rewrites: list[str] | str = NOT_CHECKED
    locks: list[dict[str, str]] | str = NOT_CHECKED
    statements: list[str] | str = NOT_CHECKED
    hazards: list[Hazard] | str = NOT_CHECKED
    lock_holds: list[LockHold] = field(default_factory=list)
    exclusive_without_timeout: list[str] = field(default_factory=list)  # for the run-wide hazard
    not_reached: bool = False  # an infrastructure fault ended the run before its test finished

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"

    @property
    def hazard_list(self) -> list[Hazard]:
        return self.hazards if isinstance(self.hazards, list) else []

    @property
    def statement_list(self) -> list[str]:
        return self.statements if isinstance(self.statements, list) else []

    @property
    def problems(self) -> list[str]:
        """What makes this migration fail the run (empty when it passes or is acknowledged)."""
        if self.not_reached:
            return []  # never judged: the run's fault says why
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
        if self.compat == "breaks_old_code" and not self.compat_acknowledged:
            found.append("breaks the new code (post-deploy)" if self.compat_direction == "new_code_on_old_schema"
                         else "breaks old code")
        return found

    @property
    def problem_details(self) -> list[Finding]:
        """The findings behind `problems` (none of an acknowledged verdict)."""
        failing = {"schema": self.schema == "differs",
                   "data_lost": self.data == "lost" and not self.acknowledged,
                   "compat": self.compat == "breaks_old_code" and not self.compat_acknowledged}
        kinds = {kind for kind, fails in failing.items() if fails}
        return [finding for finding in self.details if finding.kind in kinds]


@dataclass
class AppResult:
    app: str
    migrations: list[MigrationResult]  # newest first
    error: str | None = None


@dataclass
class Selection:
    """What the run tested instead of the default windows: `since` (--since REF) with the
    migration files added or modified since then (`changed`, relative to the project folder) and
    those of them edited after they were merged (`edited`); `shard` (index, count) of --shard;
    `shards`, in a merged report, the (index, count) of each shard merged."""

    since: str | None = None
    changed: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)
    shard: tuple[int, int] | None = None
    shards: list[tuple[int, int]] = field(default_factory=list)


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
    # Deploy hazards (hazards.py): whether locks were observed ("observed" | "not_checked" | "off")
    # and why not, the run-wide hazards, the squawk version used, --volume and --fail-on-hazards.
    observation: str = "off"
    observation_note: str | None = None
    run_hazards: list[Hazard] = field(default_factory=list)
    squawk: str | None = None
    volume: int | None = None
    fail_on_hazards: bool = False
    selection: Selection = field(default_factory=Selection)
    steps: int = 0  # Django commands run (processes counts Python processes started)
    isolation: str = "process"  # how the steps ran: fork | process
    fault: Fault | None = None  # the infrastructure fault that ended the run (exit status 3)

    def hazards(self) -> list[tuple[MigrationResult | None, Hazard]]:
        """Every hazard, the run-wide ones first (they concern many migrations)."""
        found: list[tuple[MigrationResult | None, Hazard]] = [(None, h) for h in self.run_hazards]
        return found + [(m, h) for a in self.apps for m in a.migrations for h in m.hazard_list]

    @property
    def ok(self) -> bool:
        return self.fault is None and (all(c.status == "passed" for c in self.checks)
                and all(a.error is None and not any(m.problems for m in a.migrations) for a in self.apps)
                and not (self.fail_on_hazards and self.hazards()))
