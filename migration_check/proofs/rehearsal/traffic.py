"""The previous release's traffic, server part: K sessions running `TrafficQuery`s while a
migration applies, each query in its own short transaction that is rolled back; and the
summary of what they saw (pure).

Each session is a thread with its own connection (the project's connection options,
as the running site connects). It cycles through the queries, starting at its own offset so
the K sessions spread over the tables, and records when each query started and how long it
took (a query blocked behind the migration's lock takes as long as it waited). `mark` opens
the measured window ("during": just before `migrate` starts, until it finishes); what ran before
the mark is the baseline. A statement_timeout bounds every query, so a session never outlives
its step.

Owns: `Sample`, `TrafficSessions` (start, mark, stop), `summarize` (pure) and `LongQuery`
(one session holding a read transaction on tables while the migration starts).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ...postgres.driver import load_driver
from ...postgres.server import quote_ident
from ...results import TrafficStat
from ...verdicts import TrafficKind
from .queries import TrafficQuery

Connection = Any  # a psycopg2 connection
DEADLOCK = "40P01"
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
# --long-query: how the long read looks for a lock request queued behind it, and how often.
# Reading pg_locks takes every lock-manager partition for a moment, so it is not done at full
# speed for the length of a long migration; a late sighting only starts the long read's clock
# later (the queue waits longer), it never misses one: a queued request stays queued.
WAITING_ON_ME_SQL = ("SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE NOT l.granted "
                     "AND pg_backend_pid() = ANY(pg_blocking_pids(l.pid)))")
WAITER_POLL_S = 0.05


@dataclass(frozen=True)
class Sample:
    """One query run by a session: which, when it started (time.monotonic), how long it took,
    and the first line of its error (None when it succeeded; deadlocks and timeouts named)."""

    table: str
    kind: str
    started: float
    duration_s: float
    error: str | None = None


def error_text(error: Exception) -> str:
    """The first line of a driver error, deadlocks and timeouts named (the SQLSTATE is `pgcode`
    in psycopg2, `sqlstate` in psycopg 3)."""
    text = str(error).strip()
    message = text.splitlines()[0] if text else type(error).__name__
    code = getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)
    names = {DEADLOCK: "deadlock", LOCK_NOT_AVAILABLE: "lock timeout", QUERY_CANCELED: "statement timeout"}
    name = names.get(code or "")
    return f"{name}: {message}" if name else message


def run_query(cursor: Any, query: TrafficQuery, timeout_s: float) -> str | None:
    """One short transaction, rolled back; its error, if any."""
    cursor.execute("BEGIN")
    try:
        cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_s * 1000)}")
        returned: tuple[Any, ...] | None = None
        for statement in query.statements:
            params = statement.params if returned is None else (returned[0],)
            cursor.execute(statement.sql, params or None)
            returned = cursor.fetchone() if cursor.description and query.kind == TrafficKind.DELETE_INSERTED else None
    except load_driver().Error as error:
        return error_text(error)
    finally:
        cursor.execute("ROLLBACK")
    return None


class TrafficSessions:
    """K sessions running `queries` until `stop`; `connect` opens one connection (autocommit)."""

    def __init__(self, connect: Callable[[], Connection], queries: Sequence[TrafficQuery], sessions: int,
                 timeout_s: float) -> None:
        self.connect = connect
        self.queries = list(queries)
        self.sessions = sessions
        self.timeout_s = timeout_s
        self.stopped = threading.Event()
        self.samples: list[Sample] = []
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []
        self.problems: list[str] = []
        self.marks: list[float] = []

    def start(self) -> None:
        if not self.queries:
            return
        for number in range(self.sessions):
            thread = threading.Thread(target=self.session, args=(number,), daemon=True,
                                      name=f"rehearsal-traffic-{number}")
            thread.start()
            self.threads.append(thread)

    def session(self, number: int) -> None:
        try:
            connection = self.connect()
        except Exception as error:  # noqa: BLE001 - a session that cannot connect is reported, not raised
            with self.lock:
                self.problems.append(f"a traffic session could not connect: {error}")
            return
        try:
            with connection.cursor() as cursor:
                position = number * max(len(self.queries) // max(self.sessions, 1), 1)
                while not self.stopped.is_set():
                    query = self.queries[position % len(self.queries)]
                    position += 1
                    started = time.monotonic()
                    failed = run_query(cursor, query, self.timeout_s)
                    sample = Sample(query.table, query.kind, started, time.monotonic() - started, failed)
                    with self.lock:
                        self.samples.append(sample)
        except Exception as broken:  # noqa: BLE001 - a broken connection ends this session only
            with self.lock:
                self.problems.append(f"a traffic session ended: {str(broken).strip().splitlines()[0]}")
        finally:
            connection.close()

    def mark(self) -> float:
        """The moment the measured window opens or closes."""
        moment = time.monotonic()
        self.marks.append(moment)
        return moment

    def stop(self) -> list[Sample]:
        self.stopped.set()
        for thread in self.threads:
            thread.join(self.timeout_s + 5)
        with self.lock:
            return list(self.samples)


def percentile_50(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def summarize(samples: Sequence[Sample], window: tuple[float, float]) -> list[TrafficStat]:
    """Per (table, kind): the queries that ran (at least partly) inside `window`, their errors,
    the longest and the median duration, the median before it (baseline), the first error."""
    start, end = window
    keys = sorted({(s.table, s.kind) for s in samples})
    stats = []
    for table, kind in keys:
        mine = [s for s in samples if (s.table, s.kind) == (table, kind)]
        during = [s for s in mine if s.started < end and s.started + s.duration_s > start]
        before = [s.duration_s for s in mine if s.started + s.duration_s <= start]
        errors = [s.error for s in during if s.error is not None]
        stats.append(TrafficStat(
            table, kind, len(during), len(errors),
            round(max((s.duration_s for s in during), default=0.0), 4),
            percentile_50([s.duration_s for s in during]), percentile_50(before),
            errors[0] if errors else None))
    return stats


class LongQuery:
    """--long-query: one session holds a read transaction on `tables` (ACCESS SHARE, as a slow
    report would) from before the migration starts; once a lock request of the migration queues
    behind it, it holds `seconds` more, then ends. The clock starts at that moment, not at the
    migration's start: a step that needs a while to reach its DDL (a loaded machine, a large
    project's planning) must meet the long read all the same, or the rehearsal's verdict would
    depend on the machine's speed. A migration that never waits on it (its locks do not conflict
    with a read) ends it as soon as the migration ends (`migration_ended`)."""

    def __init__(self, connect: Callable[[], Connection], tables: Sequence[str], seconds: float) -> None:
        self.connect = connect
        self.tables = list(tables)
        self.seconds = seconds
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self.hold, daemon=True, name="rehearsal-long-query")
        self.problem: str | None = None
        self.queued_behind = False  # a lock request of the migration waited on the long read

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)

    def migration_ended(self) -> None:
        self.ended.set()

    def hold(self) -> None:
        try:
            connection = self.connect()
            try:
                with connection.cursor() as cursor:
                    cursor.execute("BEGIN")
                    for table in self.tables:
                        cursor.execute(f"SELECT 1 FROM {quote_ident(table)} LIMIT 1")
                    self.ready.set()
                    self.queued_behind = self.wait_for_a_waiter(cursor)
                    if self.queued_behind:
                        self.ended.wait(self.seconds)  # the migration can only end now by failing
                    cursor.execute("ROLLBACK")
            finally:
                connection.close()
        except Exception as error:  # noqa: BLE001 - reported with the migration, not raised
            self.problem = f"the long query could not run: {str(error).strip().splitlines()[0]}"
        finally:
            self.ready.set()

    def wait_for_a_waiter(self, cursor: Any) -> bool:
        """Whether a lock request queued behind this session before the migration ended (asked
        in this transaction: reading pg_locks takes no lock on the tables)."""
        while not self.ended.is_set():
            cursor.execute(WAITING_ON_ME_SQL)
            if cursor.fetchone()[0]:
                return True
            self.ended.wait(WAITER_POLL_S)
        return False

    def join(self) -> None:
        self.migration_ended()
        self.thread.join(self.seconds + 30)
