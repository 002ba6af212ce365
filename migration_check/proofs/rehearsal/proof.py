"""The deploy rehearsal of one migration, on databases of its own (never the chain's).

For a migration M the rehearsal takes a scratch database at the state just before M
(`ScratchDatabases.before`), seeds the chain's pre-release rows for M (its round token: the same
rows), adds the --volume rows, and applies `migrate APP M` through the step runner like any step,
while:

- K sessions run the previous release's queries on the tables M touches (traffic.py), from a
  short baseline before `migrate` until it has finished;
- with --long-query S, one more session holds a read transaction on those tables from before
  `migrate` starts until S seconds have passed: the migration's lock request queues behind it,
  and the traffic behind that request; with a lock_timeout in the project's settings the
  migration fails fast instead.

With --table-sizes it then measures M's write-blocking locks at three volumes on fresh
databases (no traffic) and estimates their hold at production size (sizes.py); with
--max-blocking it gives M its `blocking` verdict (verdict_table.judge_blocking: `exceeds` fails
the run) and a line with the numbers per lock over the limit (`rehearsal_problems`); a migration
the rehearsal gave no figures is `blocking: not_checked`, never `within`. What goes
wrong in a rehearsal (a lock timeout, a deadlock victim, a database that cannot be built) is a
`rehearsal` finding in `details`, never a verdict of the chain's.

Owns: `RehearsalProof` (the registered proof: `after_steps`), `RehearsalOptions`, `Rehearsal`
(one migration's rehearsal), `touched_tables` and `lock_measurements`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ... import rules
from ...config import DEFAULT_VOLUME_MAX, Config
from ...errors import InfrastructureFault, Interrupted, UsageError
from ...inside_django.protocol import WindowMigration
from ...postgres.driver import load_driver
from ...postgres.faults import raise_if_fault
from ...postgres.server import quote_ident
from ...processes.steps import StepResult
from ...project.discovery import MigrationInfo
from ...results import Finding, Hazard, Impact, MigrationResult
from ...verdict_table import judge_blocking
from ...verdicts import Blocking, CheckStatus, FindingKind, StepOutcome
from ..data.pre_release import database_with_pre_release_rows
from ..deploy_safety.hazards import LOCK_MODES, WRITE_BLOCKING, DdlEvent, Event, RewriteEvent, judge_locks
from ..protocol import MigrationTest, Proof, ProofDatabase, ScratchDatabases, ScratchUnavailable
from .queries import traffic_lookups, traffic_queries
from .sizes import Measurement, blocking_message, blocking_problems, figure, impacts, volumes
from .traffic import LongQuery, Sample, TrafficSessions, summarize

BASELINE_S = 0.5  # traffic before `migrate` starts: what a query costs when nothing is in its way
TOUCHING = LOCK_MODES[LOCK_MODES.index("RowExclusiveLock"):]  # a lock taken to change the table


@dataclass(frozen=True)
class RehearsalOptions:
    """What the user asked of the rehearsal (docs/rehearsal.md, "Options"): traffic sessions
    (0: no traffic), the long query's seconds, the production sizes, the largest volume
    measured, the blocking limit, and --volume (rows added in the traffic run)."""

    sessions: int = 0
    long_query_s: float | None = None
    table_sizes: dict[str, int] | None = None
    volume_max: int = DEFAULT_VOLUME_MAX
    max_blocking_s: float | None = None
    volume: int | None = None

    @classmethod
    def of(cls, config: Config) -> RehearsalOptions:
        return cls(config.traffic_sessions, config.long_query, config.table_sizes, config.volume_max,
                   config.max_blocking, config.volume)

    @property
    def active(self) -> bool:
        return bool(self.sessions) or self.long_query_s is not None or self.table_sizes is not None


@dataclass
class Run:
    """One apply of M on a rehearsal database: the step, the rows per table, what the observer
    recorded, the write-blocking locks' holds, and the traffic's samples and window."""

    step: StepResult
    rows: dict[str, int]
    events: list[Event] | None
    measurements: list[Measurement] = field(default_factory=list)
    traffic: list[Sample] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 0.0)
    problems: list[str] = field(default_factory=list)
    queued_behind_long_query: bool = False  # a lock request of M waited on the --long-query read


def touched_tables(result: MigrationResult, meta: WindowMigration) -> list[str]:
    """The tables M changes: those the chain's observation saw it lock to change them; when
    nothing was observed (no superuser, or a migration without DDL such as a RunPython backfill),
    every table of the app's models that exists before it."""
    if result.locks:
        locked = sorted({lock["table"] for lock in result.locks if lock["mode"] in TOUCHING})
        if locked:
            return locked
    models = meta.get("models_before") or []
    return sorted({m["table"] for m in models if m["table"] in meta["tables_before"]})


def nothing_to_rehearse(migration: MigrationInfo, result: MigrationResult) -> bool:
    """Observed to lock no existing table, and no code of its own that could write to one
    (a CreateModel): nobody's queries can meet it."""
    code = {"RunPython", "RunSQL"} & {operation.type for operation in migration.operations}
    return result.locks == [] and not code


def xid_of(txid: int) -> str:
    return str(txid % 2**32)  # txid_current() is 64-bit, xmin the 32-bit xid


def lock_measurements(connection: Any, events: Sequence[Event], pre_existing: set[str],
                      rows: dict[str, int]) -> list[Measurement]:
    """Each write-blocking lock's hold, with what happened under it: a rewrite or a scan (seen
    by the observer), rows written (rows whose xmin is the transaction that held the lock)."""
    verdict = judge_locks(events, pre_existing, rows)
    found = []
    for hold in verdict.holds:
        held_in = {e.txid for e in events if isinstance(e, DdlEvent) and e.locks.get(hold.table) in WRITE_BLOCKING}
        rewrote = any(isinstance(e, RewriteEvent) and e.table == hold.table and e.txid in held_in for e in events)
        scanned = any(isinstance(e, DdlEvent) and e.txid in held_in and hold.table in e.scanned for e in events)
        wrote = rows_written(connection, hold.table, held_in) if not rewrote else False
        found.append(Measurement(hold.table, hold.mode, rows.get(hold.table, 0), hold.held_s, rewrote, scanned, wrote))
    return found


def rows_written(connection: Any, table: str, txids: set[int]) -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {quote_ident(table)} WHERE xmin::text = ANY(%s))",
                           ([xid_of(t) for t in txids],))
            return bool(cursor.fetchone()[0])
    except load_driver().Error as error:
        raise_if_fault(error)
        return True  # unknown: measured and fitted rather than called flat


def table_rows(connection: Any, tables: Sequence[str]) -> dict[str, int]:
    rows = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {quote_ident(table)}")
            rows[table] = int(cursor.fetchone()[0])
    return rows


def lock_timeout_failure(step: StepResult) -> bool:
    text = f"{step.stderr}\n{step.stdout}"
    return "lock timeout" in text or "LockNotAvailable" in text


def ordered_hazards(hazards: list[Hazard], found: Sequence[Impact]) -> list[Hazard]:
    """Hazards by estimated blocking of their table, longest first, each with its figure."""
    by_table = {impact.table: impact for impact in found}
    shown = []
    for hazard in hazards:
        impact = by_table.get(hazard.table or "")
        if impact is not None and "rehearsal:" not in hazard.message:
            hazard = dataclasses.replace(hazard, message=f"{hazard.message} (rehearsal: {blocking_message(impact)})")
        shown.append(hazard)
    return sorted(shown, key=lambda h: -(by_table[h.table].blocking_s if h.table in by_table else 0.0))


def not_run(message: str) -> Finding:
    return Finding(FindingKind.REHEARSAL, f"rehearsal: not run: {message}", rule=rules.REHEARSAL_NOT_RUN)


class RehearsalProof(Proof):
    """A deploy runs each migration while the previous release still serves traffic. A lock that
    blocks writes for 4 s at 20,000 rows blocks them for minutes at production size, and a
    migration that queues behind a slow read queues every query behind itself: the warnings of
    deploy safety say what kind of lock is taken, the rehearsal says how long the site waits."""

    name = "rehearsal"
    replaced_paths = False  # a deploy applies the squash, never the migrations it replaces

    def after_steps(self, test: MigrationTest, scratch: ScratchDatabases) -> None:
        options = RehearsalOptions.of(test.config)
        result = test.result
        if options.max_blocking_s is not None:
            result.blocking = Blocking.NOT_CHECKED  # until the rehearsal's figures say otherwise
        # Only over an apply that passed in the chain: a failing apply is the chain's verdict already.
        if not options.active or result.apply != StepOutcome.PASSED:
            return
        if nothing_to_rehearse(test.migration, result):  # it locks no existing table: nothing can block
            result.blocking = judge_blocking([], options.max_blocking_s)
            return
        try:
            Rehearsal(options, test, scratch).rehearse()
        except (Interrupted, UsageError, InfrastructureFault):  # the run ends: not a rehearsal finding
            raise
        except Exception as error:  # noqa: BLE001 - a rehearsal never takes the chain's verdicts down
            result.details.append(not_run(f"{type(error).__name__}: {error}"))


class Rehearsal:
    """The rehearsal of one migration: the traffic run, the volume measurements, the verdicts."""

    def __init__(self, options: RehearsalOptions, test: MigrationTest, scratch: ScratchDatabases) -> None:
        self.options = options
        self.test = test
        self.scratch = scratch
        self.step_timeout_s = test.config.step_timeout

    @property
    def result(self) -> MigrationResult:
        return self.test.result

    def rehearse(self) -> None:
        options, result = self.options, self.result
        traffic_run = None
        if options.sessions or options.long_query_s is not None:
            traffic_run = self.measure(options.volume, True)
            if traffic_run is None:
                return
            result.traffic = summarize(traffic_run.traffic, traffic_run.window)
            result.details.extend(self.traffic_findings(traffic_run))
        # The figures: the traffic run's holds with --volume, or the three volumes of --table-sizes.
        complete = traffic_run is not None and traffic_run.step.ok and bool(options.volume)
        measurements = list(traffic_run.measurements) if complete and traffic_run is not None else []
        if options.table_sizes is not None:
            complete, measurements = self.measure_volumes()
        result.impact = impacts(measurements, options.table_sizes)
        result.blocking = judge_blocking(result.impact, options.max_blocking_s)
        if result.blocking == Blocking.WITHIN and not complete:
            result.blocking = Blocking.NOT_CHECKED  # a missing figure is not a passed one
        result.rehearsal_problems = blocking_problems(result.impact, options.max_blocking_s)
        if result.hazards is not None:
            result.hazards = ordered_hazards(result.hazards, result.impact)
        if self.test.log is not None:
            for impact in result.impact[:1]:
                self.test.log.info(f"{result.label}: rehearsal: {blocking_message(impact)}")

    def measure_volumes(self) -> tuple[bool, list[Measurement]]:
        """The holds at each volume, and whether every volume was measured (an apply that failed
        or a database that could not be built leaves a gap)."""
        sizes = self.options.table_sizes or {}
        touched = [sizes[t] for t in touched_tables(self.result, self.test.meta) if t in sizes]
        found: list[Measurement] = []
        complete = True
        for rows in volumes(max(touched) if touched else None, self.options.volume_max):
            run = self.measure(rows, False)
            if run is None:
                return False, found
            found += run.measurements
            complete = complete and run.step.ok
        return complete, found

    def measure(self, volume: int | None, with_traffic: bool) -> Run | None:
        """One apply of M on a fresh database before it, with `volume` more rows per table."""
        migration = self.test.migration
        try:
            with database_with_pre_release_rows(self.test, self.scratch, f"{migration.app}-rehearsal") as database:
                return self.apply_once(database, volume, with_traffic)
        except ScratchUnavailable as problem:
            self.result.details.append(not_run(str(problem)))
            return None

    def apply_once(self, database: ProofDatabase, volume: int | None, with_traffic: bool) -> Run:
        own = database.session()  # the rehearsal's own connection: filling, counting, xmin reads
        try:
            return self.apply_with(database, own, volume, with_traffic)
        finally:
            own.close()

    def apply_with(self, database: ProofDatabase, own: Any, volume: int | None, with_traffic: bool) -> Run:
        migration, meta, result = self.test.migration, self.test.meta, self.result
        tables_before = sorted(meta["tables_before"])
        # The --volume rows, as the chain adds them (when observing); never removed: the database goes.
        fill = database.begin_observation(tables_before, volume)
        rows = table_rows(own, tables_before)
        touched = touched_tables(result, meta)
        sessions = self.traffic_sessions(database, touched) if with_traffic else None
        long_query = LongQuery(database.session, touched, self.options.long_query_s) \
            if with_traffic and self.options.long_query_s is not None and touched else None
        try:
            if sessions is not None:
                sessions.start()
                time.sleep(BASELINE_S)
            if long_query is not None:
                long_query.start()
            started = time.monotonic()
            step = database.migrate(migration.app, migration.name)
            ended = time.monotonic()
        finally:  # also when the run is interrupted: no session outlives its database
            if long_query is not None:
                long_query.migration_ended()
            samples = sessions.stop() if sessions is not None else []
            if long_query is not None:
                long_query.join()
        self.log_apply(step, volume, sessions is not None)
        events, _ = database.end_observation(None)
        run = Run(step, rows, events, traffic=samples, window=(started, ended),
                  queued_behind_long_query=long_query is not None and long_query.queued_behind)
        run.problems = [*(sessions.problems if sessions else []),
                        *([long_query.problem] if long_query and long_query.problem else [])]
        if fill is not None:
            run.problems += [f"--volume: {t} was not filled: {why}" for t, why in sorted(fill.skipped.items())]
        if step.ok and events is not None:
            run.measurements = lock_measurements(own, events, set(tables_before), rows)
        elif not step.ok and not with_traffic:
            result.details.append(self.failure_finding(step, volume))
        return run

    def log_apply(self, step: StepResult, volume: int | None, traffic: bool) -> None:
        """A progress line like every step's, so a slow rehearsal shows in the log."""
        if self.test.log is None:
            return
        what = f"with {self.options.sessions} traffic session(s)" if traffic else "without traffic"
        self.test.log.step(f"{self.result.label}: rehearsal apply {what}, +{volume or 0:,} rows per table",
                           CheckStatus.of(step.ok), step.duration_s, None if step.ok else step.error_summary())

    def traffic_sessions(self, database: ProofDatabase, touched: Sequence[str]) -> TrafficSessions | None:
        if not self.options.sessions:
            return None
        models = self.test.meta.get("models_before") or []
        resolved = database.compat_resolve(traffic_lookups(models))
        queries = traffic_queries(models, touched, resolved)
        return TrafficSessions(database.session, queries, self.options.sessions, self.step_timeout_s)

    # -- findings ---------------------------------------------------------------------------------

    def failure_finding(self, step: StepResult, volume: int | None) -> Finding:
        name = self.test.migration.name
        where = f" over {volume:,} more rows per table" if volume else ""
        if lock_timeout_failure(step) and self.options.long_query_s is not None:
            return Finding(FindingKind.REHEARSAL, f"rehearsal: {name} failed fast on the settings' lock_timeout "
                           f"behind a {self.options.long_query_s:g} s read transaction{where} "
                           f"({step.error_summary()}); in production the deploy fails and can be retried, "
                           "instead of queueing every query on the table behind it", rule=rules.REHEARSAL_LOCK_TIMEOUT)
        return Finding(FindingKind.REHEARSAL, f"rehearsal: applying {name} under the previous release's traffic"
                       f"{where} failed: {step.error_summary()} (the chain's own apply passed)",
                       rule=rules.REHEARSAL_APPLY_FAILED)

    def traffic_findings(self, run: Run) -> list[Finding]:
        found = [Finding(FindingKind.INFO, f"rehearsal: {problem}") for problem in run.problems]
        if not run.step.ok:
            return [*found, self.failure_finding(run.step, self.options.volume)]
        traffic = self.result.traffic
        # Only when M's lock request was seen queued behind the long read: traffic that waited
        # on M's own lock (a SHARE lock does not conflict with a read) is deploy safety's and the
        # figures' to report, not a lock queue behind a slow query.
        if self.options.long_query_s is not None and traffic and run.queued_behind_long_query:
            worst = max(traffic, key=lambda stat: stat.max_wait_s)
            if worst.max_wait_s >= self.options.long_query_s / 2:
                found.append(Finding(FindingKind.REHEARSAL, (
                    f"rehearsal: behind a {self.options.long_query_s:g} s read transaction, "
                    f"{self.test.migration.name}'s lock request queued and the previous release's queries queued "
                    f"behind it: {worst.kind} on {worst.table} waited {figure(worst.max_wait_s)} (baseline median "
                    f"{figure(worst.baseline_p50_s or 0.0)}); set a lock_timeout for migrate so it fails fast"),
                    {"table": worst.table, "max_wait_s": worst.max_wait_s}, rules.REHEARSAL_LOCK_QUEUE))
        return found
