"""Deploy hazards: judging what the server was seen doing while a migration was applied.

Every function here is pure (observed events in, verdicts out): no database, no process. The
events come from locks.py (PostgreSQL event triggers in the scratch database); chain.py writes
the verdict into the migration's result, run.py asks for the one run-wide hazard.

Owns: the event shapes (`DdlEvent`, `RewriteEvent`), PostgreSQL's lock modes in order of
strength, the hazard rules with their stable ids and the Django way around each (`RULES`),
`judge_locks` (rewrites, strongest lock per table, statements, hazards, how long each
write-blocking lock was held) and `lock_timeout_hazard` (one line per run).

Only tables that existed before the migration count: a table the migration creates is empty
and nobody uses it yet, so nothing it does to that table blocks anyone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ... import rules
from ...results import Hazard, LockHold, MigrationResult
from ...verdicts import HazardSource

# pg_locks mode names, weakest first. From SHARE on, a lock conflicts with ROW EXCLUSIVE, the
# lock every INSERT, UPDATE and DELETE takes: writes wait while it is held. ACCESS EXCLUSIVE
# also makes reads wait.
LOCK_MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
              "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
WRITE_BLOCKING = frozenset(LOCK_MODES[LOCK_MODES.index("ShareLock"):])
ACCESS_EXCLUSIVE = "AccessExclusiveLock"
SHARE_UPDATE_EXCLUSIVE = "ShareUpdateExclusiveLock"
CONCURRENT_TAGS = ("CREATE INDEX", "REINDEX")
CONCURRENTLY = re.compile(r"\bCONCURRENTLY\b", re.IGNORECASE)

# pg_event_trigger_table_rewrite_reason() bits (src/include/nodes/parsenodes.h, AT_REWRITE_*).
REWRITE_REASONS = {1: "persistence changed", 2: "a default that must be computed for every row",
                   4: "a column type change", 8: "a new access method"}


@dataclass(frozen=True)
class Rule:
    """A hazard rule: its stable id, what happened (a format string) and the Django way around it."""

    id: str
    message: str
    fix: str


RULES = {rule.id: rule for rule in (
    Rule(rules.TABLE_REWRITE,
         "{table} was rewritten ({reason}) while {mode} was held: every query on it waits until the whole "
         "table is copied",
         "Avoid the rewrite: AddField a new nullable field of the new type, backfill it in batches (RunPython in "
         "a migration with atomic = False), switch the code to it and RemoveField the old one in a later release; "
         "or pick a change PostgreSQL makes in place (varchar to text, a longer max_length, more digits at "
         "the same decimal_places)."),
    Rule(rules.INDEX_WITHOUT_CONCURRENTLY,
         "an index on {table} was built without CONCURRENTLY while {mode} was held: writes to the table wait "
         "for the whole build",
         "Build it with AddIndexConcurrently (django.contrib.postgres.operations) in a migration with "
         "atomic = False, preceded in that migration by RunSQL('DROP INDEX CONCURRENTLY IF EXISTS <index>', "
         "reverse_sql=migrations.RunSQL.noop): a build that is cut off (lock_timeout, a killed deploy) leaves "
         "an INVALID index that makes the retry fail ('already exists'; IF NOT EXISTS keeps it INVALID). "
         "For a ForeignKey, declare it with db_index=False and add that index the same way."),
    Rule(rules.UNIQUE_INDEX_UNDER_LOCK,
         "a unique or primary key constraint on {table} built its index while {mode} was held",
         "Build the unique index first with RunSQL('CREATE UNIQUE INDEX CONCURRENTLY ...') in a migration "
         "with atomic = False, then attach it with ALTER TABLE ... ADD CONSTRAINT ... UNIQUE USING INDEX "
         "(state_operations carrying the Django constraint)."),
    Rule(rules.FOREIGN_KEY_VALIDATION,
         "a foreign key on {table} was validated against every existing row while {mode} was held",
         "Add the foreign key NOT VALID (RunSQL 'ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ... NOT "
         "VALID' with state_operations), then run VALIDATE CONSTRAINT in a later migration, which scans "
         "under SHARE UPDATE EXCLUSIVE and blocks no writes."),
    Rule(rules.CHECK_CONSTRAINT_VALIDATION,
         "a check constraint on {table} was validated against every existing row while {mode} was held",
         "Use AddConstraintNotValid, then ValidateConstraint (both from django.contrib.postgres.operations) in "
         "a later migration: the validation scans under SHARE UPDATE EXCLUSIVE. Keep them in two atomic "
         "migrations rather than one with atomic = False, whose retry after a cut-off deploy fails with "
         "'already exists'."),
    Rule(rules.SET_NOT_NULL_SCAN,
         "SET NOT NULL scanned every row of {table} while {mode} was held",
         "First add a CHECK (column IS NOT NULL) with AddConstraintNotValid in one migration, then "
         "ValidateConstraint and the AlterField to null=False in a later one: PostgreSQL 12+ uses the validated "
         "check and skips the scan (two atomic migrations converge when a cut-off deploy is run again)."),
    Rule(rules.SCAN_UNDER_LOCK,
         "{table} was scanned by the statement while {mode} was held",
         "Split the change so that the scan runs under a weaker lock (NOT VALID, then VALIDATE CONSTRAINT "
         "in a later migration; indexes with DROP INDEX CONCURRENTLY IF EXISTS then AddIndexConcurrently, atomic = "
         "False)."),
    Rule(rules.ACCESS_EXCLUSIVE_WITHOUT_LOCK_TIMEOUT,
         "{count} migration(s) took ACCESS EXCLUSIVE on an existing table with lock_timeout = 0 (first: "
         "{first}): behind one long query the lock request waits, and every query on the table queues "
         "behind it",
         "Give the deploy's migrate a lock_timeout (DATABASES['default']['OPTIONS'] = {'options': "
         "'-c lock_timeout=5s'}) or start each such migration with RunSQL(\"SET lock_timeout = '5s'\"), "
         "so it fails fast and can be retried instead of stopping the site."),
)}

# Which validation an ALTER TABLE that scanned a table was doing, from the statement that ran.
SCAN_CAUSES = (
    (rules.FOREIGN_KEY_VALIDATION, re.compile(r"\bFOREIGN\s+KEY\b|\bREFERENCES\b", re.IGNORECASE)),
    (rules.CHECK_CONSTRAINT_VALIDATION, re.compile(r"\bCHECK\s*\(", re.IGNORECASE)),
    (rules.SET_NOT_NULL_SCAN, re.compile(r"\bSET\s+NOT\s+NULL\b", re.IGNORECASE)),
    (rules.UNIQUE_INDEX_UNDER_LOCK, re.compile(r"\bUNIQUE\b|\bPRIMARY\s+KEY\b", re.IGNORECASE)),
)


@dataclass(frozen=True)
class DdlEvent:
    """One `ddl_command_end`: the statement, when it started and ended, when its transaction
    committed (None if never seen), the strongest lock the backend held on each relation at that
    moment, the tables it seq-scanned, the tables it altered or indexed, and lock_timeout."""

    txid: int
    tag: str
    statement: str
    started: float
    ended: float
    committed: float | None
    locks: dict[str, str]
    scanned: frozenset[str] = frozenset()
    targets: tuple[str, ...] = ()
    lock_timeout: str = "0"


@dataclass(frozen=True)
class RewriteEvent:
    """One `table_rewrite`: the table PostgreSQL rewrote and its reason (bit mask)."""

    txid: int
    statement: str
    table: str
    reason: int


Event = DdlEvent | RewriteEvent


@dataclass
class LockVerdict:
    """What a migration's apply was seen doing (the fields of MigrationResult of the same names)."""

    rewrites: list[str] = field(default_factory=list)
    locks: list[dict[str, str]] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)
    hazards: list[Hazard] = field(default_factory=list)
    holds: list[LockHold] = field(default_factory=list)
    exclusive_without_timeout: list[str] = field(default_factory=list)
    atomic: bool = True  # every statement ran in one transaction


def strongest(modes: Sequence[str]) -> str:
    return max(modes, key=lambda mode: LOCK_MODES.index(mode) if mode in LOCK_MODES else -1)


def sql_mode(mode: str) -> str:
    """`AccessExclusiveLock` -> `ACCESS EXCLUSIVE`, as the PostgreSQL documentation writes it."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", mode.removesuffix("Lock")).upper()


def reason_text(reason: int) -> str:
    named = [text for bit, text in REWRITE_REASONS.items() if reason & bit]
    return f"table_rewrite reason {reason}: {', '.join(named) or 'unknown'}"


def hazard(rule_id: str, table: str, mode: str, statement: str, **values: object) -> Hazard:
    rule = RULES[rule_id]
    message = rule.message.format(table=table, mode=sql_mode(mode), **values)
    return Hazard(rule.id, table, mode, statement, message, rule.fix, HazardSource.OBSERVED)


def with_concurrent_lock(tag: str, statement: str, locks: dict[str, str], targets: Sequence[str]) -> dict[str, str]:
    """`locks` with the SHARE UPDATE EXCLUSIVE that CREATE INDEX / REINDEX CONCURRENTLY holds on
    its table for the whole build: a session lock, released before `ddl_command_end`, where the
    observer looks, so PostgreSQL's documented lock is added to what was seen."""
    if tag not in CONCURRENT_TAGS or not CONCURRENTLY.search(statement):
        return locks
    added = dict(locks)
    for table in targets:
        added[table] = strongest([*filter(None, [locks.get(table)]), SHARE_UPDATE_EXCLUSIVE])
    return added


def ddl_events(events: Sequence[Event]) -> list[DdlEvent]:
    return [event for event in events if isinstance(event, DdlEvent)]


def statements_of(events: Sequence[Event]) -> list[str]:
    """The statements that ran, in order (a query string holding several DDL commands once)."""
    statements: list[str] = []
    for event in ddl_events(events):
        if not statements or statements[-1] != event.statement:
            statements.append(event.statement)
    return statements


def strongest_locks(events: Sequence[Event], pre_existing: set[str]) -> dict[str, str]:
    held: dict[str, list[str]] = {}
    for event in ddl_events(events):
        for table, mode in event.locks.items():
            if table in pre_existing:
                held.setdefault(table, []).append(mode)
    return {table: strongest(modes) for table, modes in sorted(held.items())}


def mode_at(events: Sequence[Event], rewrite: RewriteEvent) -> str:
    """The lock held on the rewritten table when its statement ended (ACCESS EXCLUSIVE if unseen)."""
    for event in ddl_events(events):
        if event.txid == rewrite.txid and event.statement == rewrite.statement and rewrite.table in event.locks:
            return event.locks[rewrite.table]
    return ACCESS_EXCLUSIVE


def rewrite_hazards(events: Sequence[Event], pre_existing: set[str]) -> list[Hazard]:
    found = []
    for event in events:
        if isinstance(event, RewriteEvent) and event.table in pre_existing:
            found.append(hazard(rules.TABLE_REWRITE, event.table, mode_at(events, event), event.statement,
                                reason=reason_text(event.reason)))
    return found


def statement_hazards(event: DdlEvent, pre_existing: set[str], rewritten: set[tuple[int, str, str]]) -> list[Hazard]:
    """The hazards of one statement on the existing tables it altered or indexed."""
    found = []
    for table in dict.fromkeys(event.targets):
        mode = event.locks.get(table)
        if table not in pre_existing or mode not in WRITE_BLOCKING:
            continue
        if event.tag == "CREATE INDEX":
            found.append(hazard(rules.INDEX_WITHOUT_CONCURRENTLY, table, mode, event.statement))
        elif table in event.scanned and (event.txid, event.statement, table) not in rewritten:
            causes = [rule for rule, pattern in SCAN_CAUSES if pattern.search(event.statement)]
            found += [hazard(rule, table, mode, event.statement) for rule in causes or [rules.SCAN_UNDER_LOCK]]
    return found


def lock_holds(events: Sequence[Event], pre_existing: set[str], rows: dict[str, int]) -> list[LockHold]:
    """Per existing table, the longest time a write-blocking lock was held: from the start of the
    first statement that held it to the commit of its transaction (in an atomic migration every
    lock is held until the migration commits)."""
    spans: dict[tuple[str, int], tuple[float, float, list[str]]] = {}
    for event in ddl_events(events):
        for table, mode in event.locks.items():
            if table in pre_existing and mode in WRITE_BLOCKING:
                end = event.committed if event.committed is not None else event.ended
                start, last, modes = spans.get((table, event.txid), (event.started, end, []))
                spans[(table, event.txid)] = (min(start, event.started), max(last, end), [*modes, mode])
    longest: dict[str, LockHold] = {}
    for (table, _txid), (start, end, modes) in sorted(spans.items()):
        hold = LockHold(table, strongest(modes), round(max(end - start, 0.0), 4), rows.get(table))
        if table not in longest or hold.held_s > longest[table].held_s:
            longest[table] = hold
    return [longest[table] for table in sorted(longest)]


def judge_locks(events: Sequence[Event], pre_existing: set[str], rows: dict[str, int] | None = None) -> LockVerdict:
    """Everything observed while one migration was applied, judged for the tables that existed
    before it. `rows` (table -> rows before the apply) is known with --volume."""
    ddl = ddl_events(events)
    rewrites = [e for e in events if isinstance(e, RewriteEvent) and e.table in pre_existing]
    rewritten = {(e.txid, e.statement, e.table) for e in rewrites}
    hazards = rewrite_hazards(events, pre_existing)
    for event in ddl:
        hazards += statement_hazards(event, pre_existing, rewritten)
    unguarded = sorted({table for e in ddl if e.lock_timeout in ("0", "")
                        for table, mode in e.locks.items() if table in pre_existing and mode == ACCESS_EXCLUSIVE})
    return LockVerdict(
        rewrites=sorted({e.table for e in rewrites}),
        locks=[{"table": table, "mode": mode} for table, mode in strongest_locks(events, pre_existing).items()],
        statements=statements_of(events),
        hazards=hazards,
        holds=lock_holds(events, pre_existing, rows or {}),
        exclusive_without_timeout=unguarded,
        atomic=len({e.txid for e in ddl}) <= 1,
    )


def lock_timeout_hazard(migrations: Sequence[MigrationResult]) -> list[Hazard]:
    """ACCESS EXCLUSIVE on an existing table with no lock_timeout: one hazard for the whole run
    (Django never sets one, so it would otherwise repeat on nearly every migration)."""
    unguarded = [m for m in migrations if m.exclusive_without_timeout]
    if not unguarded:
        return []
    first = unguarded[0]
    table = first.exclusive_without_timeout[0]
    rule = RULES[rules.ACCESS_EXCLUSIVE_WITHOUT_LOCK_TIMEOUT]
    statement = next((s for s in first.statement_list if table in s), first.statement_list[0] if first.statement_list
                     else "")
    message = rule.message.format(count=len(unguarded), first=f"{first.label} on {table}")
    return [Hazard(rule.id, table, ACCESS_EXCLUSIVE, statement, message, rule.fix, HazardSource.OBSERVED,
                   tuple(m.label for m in unguarded))]
