"""Infrastructure faults: the server, not a migration, ended a step or a statement.

A connection that is refused, lost, ended by the server or an administrator, or refused because
every connection slot is taken is a fault of the infrastructure. It must never become a verdict
on the migration that happened to run at that moment (a false alarm naming an innocent
migration). Faults are told apart by SQLSTATE (class 08, 57P01-57P03, 53300), read from psycopg2
(`pgcode`) and psycopg 3 (`sqlstate`) alike, and, where libpq gives no SQLSTATE (a connection
that could not be made or broke), by the driver's connection-error class and libpq's words.
`query_canceled` (57014) is never a fault: the tool's own time-outs and cancels cause it, and a
migration's own `statement_timeout` is the migration's problem.

A step child (a `manage.py` process or a forked step) shows its fault in its stderr: the
traceback's exception lines, and, for forked steps, a `FAULT_MARKER` line the step server's
child prints with the SQLSTATE (`fault_line`).

Owns: `Fault`, `classify_exception`, `classify_output`, `fault_line`, `is_connect_failure` and
the hint of what to check for each kind. No database access; no driver import; the standard
library only, so both the tool and the code in the Django process (fork_server) import it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# kind -> what to check, in the one line that ends a run (exit status 3)
HINTS = {
    "unreachable": "is the server running and reachable? check host and port, then run again",
    "connection_lost": "the connection to the server broke (server restarted, network, a proxy's time-out)",
    "terminated": "an administrator or the server ended the run's sessions (pg_terminate_backend, "
                  "idle_session_timeout); run again",
    "server_shutdown": "the server is shutting down, restarting or recovering; run again once it is up",
    "too_many_connections": "the server has no free connection slots (max_connections); free some, or run "
                            "with fewer --jobs",
}

# SQLSTATEs that are faults, by kind (the class 08 codes all go to connection_lost unless named)
SQLSTATE_KINDS = {
    "08001": "unreachable", "08004": "unreachable",
    "57P01": "terminated", "57P02": "server_shutdown", "57P03": "server_shutdown",
    "53300": "too_many_connections",
}
# psycopg2.errors and psycopg.errors name each SQLSTATE's class the same way.
CLASS_SQLSTATES = {
    "ConnectionException": "08000", "ConnectionDoesNotExist": "08003", "ConnectionFailure": "08006",
    "SqlclientUnableToEstablishSqlconnection": "08001", "SqlserverRejectedEstablishmentOfSqlconnection": "08004",
    "TransactionResolutionUnknown": "08007", "ProtocolViolation": "08P01",
    "AdminShutdown": "57P01", "CrashShutdown": "57P02", "CannotConnectNow": "57P03",
    "TooManyConnections": "53300",
}
# libpq's words for connection faults that carry no SQLSTATE (or whose SQLSTATE psycopg2 drops
# when the connection could not be made), by kind; the first match wins.
LIBPQ_WORDS = (
    ("too_many_connections", ("too many clients already", "remaining connection slots are reserved")),
    ("terminated", ("terminating connection due to administrator command",
                    "terminating connection due to idle-session timeout")),
    ("server_shutdown", ("the database system is shutting down", "the database system is starting up",
                         "the database system is in recovery mode", "terminating connection due to unexpected "
                         "postmaster exit", "the database system is not yet accepting connections")),
    ("unreachable", ("connection refused", "could not connect to server", "no such file or directory",
                     "could not translate host name", "timeout expired", "network is unreachable")),
    ("connection_lost", ("server closed the connection unexpectedly", "connection already closed",
                         "ssl connection has been closed unexpectedly", "ssl syscall error", "could not receive data",
                         "could not send data", "no connection to the server", "consuming input failed",
                         "lost synchronization with server", "the connection is closed", "connection is lost")),
)
# Kinds where no statement of the step can have run: the connection was never made.
CONNECT_KINDS = frozenset({"unreachable", "too_many_connections", "server_shutdown"})
DRIVER_MODULES = ("psycopg2", "psycopg", "django.db")
CONNECTION_ERROR_CLASSES = ("OperationalError", "InterfaceError")
FAULT_MARKER = "test_migrations: connection fault:"
# A traceback's last line for a driver's (or Django's wrapping) connection error:
#   psycopg2.errors.AdminShutdown: terminating connection due to administrator command
#   django.db.utils.OperationalError: connection to server at "127.0.0.1", port 1 failed: ...
EXCEPTION_LINE = re.compile(
    r"^(?P<module>(?:psycopg2|psycopg|django\.db)[\w.]*)\.(?P<type>[A-Z]\w*): ?(?P<message>.*)$")


@dataclass(frozen=True)
class Fault:
    """An infrastructure fault: its kind (a key of HINTS), the database's words, its SQLSTATE."""

    kind: str
    message: str
    sqlstate: str | None = None
    connecting: bool = False  # it happened while connecting: nothing of the step can have run

    @property
    def hint(self) -> str:
        return HINTS.get(self.kind, HINTS["connection_lost"])

    def line(self) -> str:
        """The one line that ends a run: the fault, then what to check."""
        code = f" (SQLSTATE {self.sqlstate})" if self.sqlstate else ""
        return f"the run could not finish: {self.kind.replace('_', ' ')}{code}: {self.message} ({self.hint})"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message}


def kind_of_sqlstate(sqlstate: str | None) -> str | None:
    if not sqlstate:
        return None
    if sqlstate in SQLSTATE_KINDS:
        return SQLSTATE_KINDS[sqlstate]
    return "connection_lost" if sqlstate.startswith("08") else None


def kind_of_words(message: str) -> str | None:
    lowered = message.lower()
    for kind, words in LIBPQ_WORDS:
        if any(word in lowered for word in words):
            return kind
    return None


def first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else ""


CONNECT_FAILED = re.compile(r"connection to server .*\bfailed\b|could not connect", re.IGNORECASE | re.DOTALL)


def is_connecting(message: str) -> bool:
    """libpq's words for a connection that could not be made (`connection to server ... failed`)."""
    return CONNECT_FAILED.search(message) is not None


def classify_one(error: BaseException) -> Fault | None:
    """One exception (not its chain): a fault, or None."""
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    sqlstate = sqlstate if isinstance(sqlstate, str) else None
    message = first_line(str(error)) or type(error).__name__
    kind = kind_of_sqlstate(sqlstate)
    if kind is None and sqlstate is None:
        sqlstate = CLASS_SQLSTATES.get(type(error).__name__)
        kind = kind_of_sqlstate(sqlstate)
    driver_error = (type(error).__module__.startswith(DRIVER_MODULES)
                    and any(c.__name__ in CONNECTION_ERROR_CLASSES for c in type(error).__mro__))
    if kind is None and driver_error and not getattr(error, "pgcode", None) and not getattr(error, "sqlstate", None):
        kind = kind_of_words(message)  # libpq's own error: no SQLSTATE
    if kind is None:
        return None
    return Fault(kind, message, sqlstate, connecting=is_connecting(message) or kind in ("too_many_connections",))


def classify_exception(error: BaseException) -> Fault | None:
    """The fault in `error` or in what caused it (Django wraps the driver's errors)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        fault = classify_one(current)
        if fault is not None:
            return fault
        current = current.__cause__ or current.__context__
    return None


def fault_line(error: BaseException) -> str | None:
    """The marker line a step child prints for a fault (None when `error` is none)."""
    fault = classify_exception(error)
    if fault is None:
        return None
    return f"{FAULT_MARKER} {fault.sqlstate or '-'} {fault.kind} {fault.message}"


def classify_output(output: str) -> Fault | None:
    """The fault a failed step's stderr shows: the marker line, else the last exception line of
    its traceback when that is a driver's connection error. A migration's own SQL error (a
    DatabaseError with another SQLSTATE) is no fault."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(FAULT_MARKER):
            sqlstate, kind, message = (line[len(FAULT_MARKER):].strip().split(" ", 2) + ["", ""])[:3]
            if kind in HINTS:
                return Fault(kind, message, None if sqlstate == "-" else sqlstate,
                             connecting=is_connecting(message) or kind == "too_many_connections")
    for line in reversed(lines):
        match = EXCEPTION_LINE.match(line)
        if match is None:
            continue
        error_type, message = match.group("type"), match.group("message").strip()
        class_sqlstate = CLASS_SQLSTATES.get(error_type)
        found = kind_of_sqlstate(class_sqlstate)
        if found is None and error_type in CONNECTION_ERROR_CLASSES:
            found = kind_of_words(message)
        if found is not None:
            return Fault(found, message, class_sqlstate,
                         connecting=is_connecting(message) or found == "too_many_connections")
        if error_type not in CONNECTION_ERROR_CLASSES:
            return None  # the step ended on another error: a verdict, not a fault
    return None


def is_connect_failure(fault: Fault) -> bool:
    """Nothing of the step ran (the connection was never made): trying again is safe."""
    return fault.connecting and fault.kind in CONNECT_KINDS


# How long a connection that cannot be made is tried again, and how long the watchdog waits for
# the server before it gives up; the tests shorten both through the environment.
CONNECT_RETRY_ENV = "TEST_MIGRATIONS_CONNECT_RETRY_S"
CONNECT_RETRY_S = 30.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 5.0


def retry_window_s(environ: dict[str, str], name: str = CONNECT_RETRY_ENV, default: float = CONNECT_RETRY_S) -> float:
    """Seconds from the environment variable `name` (a test's shorter wait), else `default`."""
    try:
        return max(0.0, float(environ.get(name, default)))
    except ValueError:
        return default


def backoff_delays(window_s: float) -> list[float]:
    """Waits between attempts (doubling from FIRST_DELAY_S up to MAX_DELAY_S) within `window_s`."""
    delays, total, delay = [], 0.0, FIRST_DELAY_S
    while total + delay <= window_s:
        delays.append(delay)
        total += delay
        delay = min(delay * 2, MAX_DELAY_S)
    if total < window_s:
        delays.append(window_s - total)
    return delays
