"""Results of a run: what every check and every migration was found to be.

Owns: `Finding` (one entry of a migration's `details`), `Hazard` and `LockHold` (what was
observed on the server while a migration was applied, see hazards.py), `CheckResult`,
`MigrationResult` (the verdicts of CONTRACT.md; which of them fail the run is verdict_table's), `AppResult`,
`Selection` (what --since and --shard chose) and `RunResult`. Reports read these and never
recompute a verdict.
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path

from .errors import FaultDescription
from .timing import Phase
from .verdict_table import FINDING_KINDS, judge_migration, own_rollback, problem_words
from .verdicts import (
    Blocking,
    CheckStatus,
    Compat,
    CompatDirection,
    Data,
    FindingKind,
    HazardSource,
    Observation,
    Retry,
    Rollback,
    Schema,
    StepOutcome,
)


@dataclass(frozen=True)
class Finding:
    """One entry of a migration's `details`: kind is schema, data_lost, compat, coverage or info;
    `rule` the stable id of a finding (rules.py, a docs page each), None for information."""

    kind: FindingKind
    message: str
    extra: dict[str, object] = field(default_factory=dict)
    rule: str | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "message": self.message, **self.extra}
        if self.rule is not None:
            data["rule"] = self.rule
        return data


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
    source: HazardSource = HazardSource.OBSERVED
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


@dataclass(frozen=True)
class TrafficStat:
    """What the previous release's sessions saw on one table, for one kind of query, while the
    migration applied (proofs/rehearsal/traffic.py): queries run, errors, the longest and the
    median duration, the median before the migration started, the first error (deadlocks and
    lock timeouts named)."""

    table: str
    kind: str
    queries: int
    errors: int
    max_wait_s: float
    p50_s: float | None
    baseline_p50_s: float | None
    first_error: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"table": self.table, "kind": self.kind, "queries": self.queries, "errors": self.errors,
                "max_wait_s": self.max_wait_s, "p50_s": self.p50_s, "baseline_p50_s": self.baseline_p50_s,
                "first_error": self.first_error}


@dataclass(frozen=True)
class Impact:
    """A write-blocking lock of the migration measured at several volumes (proofs/rehearsal/sizes.py):
    [(rows, held_s)], the production rows (--table-sizes), the estimate there, and how it was
    made: `flat` (no rewrite, no scan, no rows written under the lock: the largest hold
    measured), `fitted` (fixed + per-row cost), `proportional` (the largest hold scaled by rows:
    the times were too small to fit) or `measured` (no production size given); `cause` what
    was seen under the lock (rewrite, table scan, rows written, or catalog only)."""

    table: str
    mode: str
    measured: tuple[tuple[int, float], ...]
    production_rows: int | None
    estimated_held_s: float | None
    basis: str = "measured"
    cause: str = ""

    def to_json(self) -> dict[str, object]:
        return {"table": self.table, "mode": self.mode, "measured": [list(point) for point in self.measured],
                "production_rows": self.production_rows, "estimated_held_s": self.estimated_held_s,
                "basis": self.basis, "cause": self.cause}

    @property
    def blocking_s(self) -> float:
        """How long writes are expected to wait: the estimate, else the longest hold measured."""
        if self.estimated_held_s is not None:
            return self.estimated_held_s
        return max((held for _, held in self.measured), default=0.0)


@dataclass
class CheckResult:
    name: str
    status: CheckStatus
    duration_s: float
    detail: str | None = None


@dataclass
class MigrationResult:
    """The verdicts for one migration of a window (values as in CONTRACT.md). Built as
    `MigrationResult(app, name, file=..., ...)`: everything after the name by keyword."""

    app: str
    name: str
    _: KW_ONLY
    file: str | None
    line: int | None = None
    apply: StepOutcome = StepOutcome.NOT_RUN  # applying it over pre-release data
    rollback: Rollback = Rollback.NOT_RUN
    reapply: StepOutcome = StepOutcome.NOT_RUN
    schema: Schema = Schema.NOT_CHECKED
    data: Data = Data.NOT_CHECKED
    error: str | None = None
    details: list[Finding] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)
    acknowledged: bool = False
    # The compat check: the code beside the schema during the deploy, which direction was checked
    # (None when not checked), and whether a breaks_old_code verdict was accepted on purpose.
    compat: Compat = Compat.NOT_CHECKED
    compat_direction: CompatDirection | None = None
    compat_acknowledged: bool = False
    # Observed while applying it over pre-release rows (hazards.py); None when not observed (the
    # reports write verdicts.NOT_CHECKED then).
    rewrites: list[str] | None = None
    locks: list[dict[str, str]] | None = None
    statements: list[str] | None = None
    hazards: list[Hazard] | None = None
    lock_holds: list[LockHold] = field(default_factory=list)
    exclusive_without_timeout: list[str] = field(default_factory=list)  # for the run-wide hazard
    # When `rollback` is "blocked": the nearest newer migration of the window that cannot be
    # rolled back, and this migration's own rollback verdict (passed | failed | irreversible),
    # tested on a database that never applied it (window.mark_blocked).
    blocked_by: str | None = None
    rollback_alone: Rollback | None = None
    # The retry proof (proofs/retry/): a non-atomic migration cut off part-way and run again
    # ends where a clean apply does (passed | failed | not_checked), and whether a failure was
    # accepted on purpose.
    retry: Retry = Retry.NOT_CHECKED
    retry_acknowledged: bool = False
    not_reached: bool = False  # an infrastructure fault ended the run before its test finished
    # The deploy rehearsal (proofs/rehearsal/): the previous release's traffic while it applied,
    # each write-blocking lock's hold by volume and at production size, the verdict against
    # --max-blocking (`exceeds` fails the run: verdict_table), and the locks over it, with the numbers.
    traffic: list[TrafficStat] = field(default_factory=list)
    impact: list[Impact] = field(default_factory=list)
    blocking: Blocking = Blocking.OFF
    rehearsal_problems: list[str] = field(default_factory=list)
    # The data proof's fingerprints, as digests (moment -> sha256 of every row's hashes): what a
    # run compares to show that something else (the rehearsal) left the chain's rows alone.
    data_fingerprints: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.app}.{self.name}"

    def blocking_of(self, table: str | None) -> float:
        """Seconds the rehearsal measured or estimated a lock on `table` to block writes (0: none)."""
        return max((impact.blocking_s for impact in self.impact if impact.table == table), default=0.0)

    @property
    def hazard_list(self) -> list[Hazard]:
        return self.hazards or []

    @property
    def statement_list(self) -> list[str]:
        return self.statements or []

    @property
    def own_rollback(self) -> Rollback:
        """`rollback_alone` when blocked, else `rollback` (JSON `rollback_alone`)."""
        return own_rollback(self)

    @property
    def problems(self) -> list[str]:
        """What makes this migration fail the run (empty when it passes or is acknowledged):
        the words of verdict_table, the one place that says which verdicts fail."""
        if self.not_reached:
            return []  # never judged: the run's fault says why
        return problem_words(self)

    @property
    def problem_details(self) -> list[Finding]:
        """The findings behind `problems` (none of an acknowledged verdict)."""
        kinds = {FINDING_KINDS[j.step] for j in judge_migration(self) if j.fails and j.step in FINDING_KINDS}
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


@dataclass(kw_only=True)
class RunResult:
    """Everything a run found, and how it ran (the reports' one input). Built by keyword."""

    checks: list[CheckResult]
    apps: list[AppResult]
    duration_s: float
    server_version: str
    ephemeral: bool
    processes: int
    skipped_apps: list[str] = field(default_factory=list)
    project_dir: Path | None = None  # what migration file paths are relative to
    timings: dict[str, Phase] = field(default_factory=dict)  # seconds by phase, summed over threads
    # Deploy hazards (hazards.py): whether locks were observed and why not, the run-wide hazards,
    # the squawk version used, --volume and --fail-on-hazards.
    observation: Observation = Observation.OFF
    observation_note: str | None = None
    run_hazards: list[Hazard] = field(default_factory=list)
    squawk: str | None = None
    volume: int | None = None
    fail_on_hazards: bool = False
    selection: Selection = field(default_factory=Selection)
    steps: int = 0  # Django commands run (processes counts Python processes started)
    isolation: str = "process"  # how the steps ran: fork | process
    fault: FaultDescription | None = None  # the infrastructure fault that ended the run (exit status 3)

    def hazards(self) -> list[tuple[MigrationResult | None, Hazard]]:
        """Every hazard, the run-wide ones first (they concern many migrations), then by how long
        the rehearsal estimated their lock to block writes (longest first; in order without it)."""
        found: list[tuple[MigrationResult | None, Hazard]] = [(None, h) for h in self.run_hazards]
        per_migration = [(m, h) for a in self.apps for m in a.migrations for h in m.hazard_list]
        return found + sorted(per_migration, key=lambda pair: -pair[0].blocking_of(pair[1].table))

    @property
    def ok(self) -> bool:
        return self.fault is None and (all(c.status == CheckStatus.PASSED for c in self.checks)
                and all(a.error is None and not any(m.problems for m in a.migrations) for a in self.apps)
                and not (self.fail_on_hazards and self.hazards()))
