"""The PostgreSQL server a run works on, and its scratch databases.

Owns: `Server` (the administrative connection; creating, connecting to and dropping scratch
databases, and refusing to touch any other database) and `postgres_server`, which yields a
Server on the user's server or on a throwaway cluster and always cleans up. Each Server holds,
for its whole life, an advisory lock derived from the run id that every one of its scratch
database names carries (`run_lock_key`), in shared mode on two sessions: the administrative one
and a keeper. A thread pings both and, when one is lost (pg_terminate_backend, a network
fault), connects again at once and re-takes the lock, while the other still holds it; a run
that cannot re-take it stops (InfrastructureFault). While a run lives its lock is held, so a
scratch database whose lock nobody holds belongs to a run that is gone.

psycopg2 or psycopg 3 (postgres/driver.py) is loaded when a server is opened.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InfrastructureFault, UsageError
from ..inside_django.faults import Fault, backoff_delays, classify_exception, retry_window_s
from ..log import Log, mask_url
from ..processes.resources import NO_WATCH, ResourceWatch
from .address import ServerAddress, resolve_server_url
from .cluster import EphemeralCluster, find_postgres_bindir
from .driver import load_driver

SCRATCH_PREFIX = "tm_scratch_"
# The first key of every run's advisory lock ("tm_s"); the second is the run id (8 hex digits).
RUN_LOCK_CLASS = 0x746D5F73
RUN_ID_ATTEMPTS = 20
# DROP DATABASE ... WITH (FORCE), which ends the sessions a killed step left, needs 13.
MINIMUM_SERVER_VERSION_NUM = 130000
DROP_RETRY_DELAYS_S = (1.0, 3.0, None)  # seconds before the next attempt; None: the last one
KEEPALIVE_S = 1.0  # how often the lock-holding sessions are checked (a lost one is replaced at once)
# The run's own sessions must not be ended for idling (a step can run for minutes), and a dead
# peer must be noticed: TCP keepalives (libpq parameters) and, from 14 on, idle_session_timeout.
KEEPALIVE_KWARGS = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3}
IDLE_SESSION_TIMEOUT_VERSION_NUM = 140000

Connection = Any  # a psycopg2 connection (psycopg2 ships no type information)


def import_psycopg2() -> Any:
    """The driver (psycopg2, else psycopg 3), with psycopg2's names (driver.py)."""
    return load_driver()


def describe_connection_error(error: Exception, address: ServerAddress) -> str:
    """Turn a psycopg2 connection failure into one line saying what to do."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = address.host if address.host.startswith("/") else f"{address.host or 'localhost'}:{address.port}"
    if "password authentication failed" in message or "no password supplied" in message:
        hint = "check the user and password in the database URL"
    elif "too many clients" in message or "remaining connection slots" in message:
        hint = "the server has no free connection: end idle sessions or raise max_connections, then run again"
    elif "does not exist" in message and "database" in message:
        hint = "the database named in the URL must exist (it is only used to connect)"
    else:
        hint = "is the server running and reachable? check host and port in the database URL"
    return f"cannot connect to PostgreSQL at {where} as {address.user}: {message} ({hint})"


def quote_ident(name: str) -> str:
    """An SQL identifier, quoted (database, table and column names built into statements)."""
    return '"' + name.replace('"', '""') + '"'


def run_lock_key(run_id: str) -> tuple[int, int]:
    """The two int4 keys of the advisory lock of run `run_id` (pg_advisory_lock(int4, int4))."""
    value = int(run_id, 16)
    return RUN_LOCK_CLASS, value - (1 << 32) if value >= 1 << 31 else value


def require_supported_version(version_num: int, version: str) -> None:
    if version_num < MINIMUM_SERVER_VERSION_NUM:
        raise UsageError(f"PostgreSQL {version} is too old: the tool needs 13 or newer (it drops its scratch "
                         "databases with DROP DATABASE ... WITH (FORCE)); test on the version production runs")


class Server:
    """A connection to the PostgreSQL server used for administration and for catalog reads.

    It creates and drops scratch databases, all named with SCRATCH_PREFIX, this run's id and a
    number never used twice, and refuses to drop any other database, so the one named in the
    user's URL is safe. Safe to use from several threads.
    """

    def __init__(self, address: ServerAddress, ephemeral: bool, watch: ResourceWatch = NO_WATCH) -> None:
        self.address = address
        self.ephemeral = ephemeral
        self.watch = watch
        self.psycopg2 = import_psycopg2()  # the driver, under psycopg2's names (driver.py)
        self.scratch: set[str] = set()
        self.created: set[str] = set()  # scratch databases known to exist (checked after a reconnection)
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.retry_s = retry_window_s(dict(os.environ))
        self.fault: Fault | None = None  # set once the server could not be reached again
        self.run_id = ""
        self.admin = self.connect_admin(address)
        self.admin.autocommit = True
        self.admin_dbname = self.admin.info.dbname
        self.server_version = str(self.scalar("SHOW server_version"))
        self.version_num = int(str(self.scalar("SHOW server_version_num")))
        require_supported_version(self.version_num, self.server_version)
        self.keep_sessions(self.admin)
        self.run_id = self.claim_run_id()
        self.keeper = self.open_keeper()
        self._closing = threading.Event()
        self._keeper_thread = threading.Thread(target=self.keep_alive, daemon=True, name="run-lock-keeper")
        self._keeper_thread.start()
        self.tell_watchdog()

    def tell_watchdog(self) -> None:
        """The watchdog's way to the server and to the administrative session (again after a
        reconnection: it ends that session before it drops what a killed run left)."""
        pid, started = self._rows_on(self.admin, "SELECT pid, backend_start::text FROM pg_stat_activity "
                                                 "WHERE pid = pg_backend_pid()")[0]
        self.watch.server_opened(self.address.connect_kwargs(self.admin_dbname),
                                 {"pid": pid, "started": started}, self.run_id)

    @staticmethod
    def _rows_on(connection: Connection, sql: str,
                 params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

    def keep_sessions(self, connection: Connection) -> None:
        """The server must not end a lock-holding session for idling."""
        if self.version_num >= IDLE_SESSION_TIMEOUT_VERSION_NUM:
            self._rows_on(connection, "SET idle_session_timeout = 0")
        self._rows_on(connection, "SET idle_in_transaction_session_timeout = 0")

    def take_shared_lock(self, connection: Connection) -> bool:
        return bool(self._rows_on(connection, "SELECT pg_try_advisory_lock_shared(%s::int4, %s::int4)",
                                  run_lock_key(self.run_id))[0][0])

    def open_keeper(self) -> Connection:
        """The second session holding the run's lock (see the module docstring)."""
        try:
            keeper = self.psycopg2.connect(**self.admin_kwargs(self.admin_dbname))
        except self.psycopg2.Error as error:  # e.g. the first session took the last free slot
            fault = classify_exception(error)
            if fault is None:
                raise UsageError(describe_connection_error(error, self.address)) from None
            return self.reconnect(None, fault)
        keeper.autocommit = True
        self.keep_sessions(keeper)
        if not self.take_shared_lock(keeper):
            raise InfrastructureFault(Fault("terminated", f"the run's lock on run id {self.run_id} was taken "
                                                          "by another session"))
        return keeper

    def admin_kwargs(self, dbname: str | None = None) -> dict[str, object]:
        return {**self.address.connect_kwargs(dbname), **KEEPALIVE_KWARGS}

    def claim_run_id(self) -> str:
        """A run id whose advisory lock this session now holds and that no database carries yet
        (a database left by a killed run with the same id must not pass for one of ours)."""
        for _ in range(RUN_ID_ATTEMPTS):
            run_id = secrets.token_hex(4)
            if not self.scalar("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", run_lock_key(run_id)):
                continue
            if not self.scalar("SELECT count(*) FROM pg_database WHERE starts_with(datname, %s)",
                               (f"{SCRATCH_PREFIX}{run_id}_",)):
                # Held exclusively only to claim the id: from now on shared, by several sessions.
                self.scalar("SELECT pg_advisory_lock_shared(%s::int4, %s::int4)", run_lock_key(run_id))
                self.scalar("SELECT pg_advisory_unlock(%s::int4, %s::int4)", run_lock_key(run_id))
                return run_id
            self.scalar("SELECT pg_advisory_unlock(%s::int4, %s::int4)", run_lock_key(run_id))
        raise UsageError("could not find a free run id for the scratch databases on this server")

    def connect_admin(self, address: ServerAddress) -> Connection:
        """Connect to the URL's database, or, when that one does not exist yet (a fresh .env),
        to the `postgres` maintenance database: the tool only needs the server."""
        try:
            return self.psycopg2.connect(**{**address.connect_kwargs(), **KEEPALIVE_KWARGS})
        except self.psycopg2.OperationalError as error:
            if f'database "{address.dbname}" does not exist' not in str(error) or address.dbname == "postgres":
                raise UsageError(describe_connection_error(error, address)) from None
        try:
            return self.psycopg2.connect(**{**address.connect_kwargs("postgres"), **KEEPALIVE_KWARGS})
        except self.psycopg2.Error as error:
            raise UsageError(describe_connection_error(error, address)) from None

    def scalar(self, sql: str, params: Sequence[object] = ()) -> object:
        """Run one statement on the administrative connection; the first value it returns."""
        rows = self.rows(sql, params)
        return rows[0][0] if rows else None

    def rows(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple[Any, ...]]:
        """Run one query on the administrative connection; every row it returns. A session the
        server ended or lost is replaced (lock re-taken) and the statement sent again: it never
        reached a live session. When the server stays unreachable: InfrastructureFault."""
        with self._lock:
            try:
                return self._rows_on(self.admin, sql, params)
            except self.psycopg2.Error as error:
                fault = classify_exception(error)
                if fault is None or not self.run_id:
                    raise
                self.admin = self.reconnect(self.admin, fault)
            return self._rows_on(self.admin, sql, params)

    def reconnect(self, lost: Connection | None, fault: Fault) -> Connection:
        """A new session in place of `lost`, holding the run's lock, tried with back-off for
        `retry_s`; InfrastructureFault when that fails or the run's databases are gone."""
        if self.fault is not None:  # the server was already found unreachable: do not wait again
            raise InfrastructureFault(self.fault)
        if lost is not None:
            with contextlib.suppress(Exception):
                lost.close()
        for delay in [0.0, *backoff_delays(self.retry_s)]:
            time.sleep(delay)
            try:
                connection = self.psycopg2.connect(**self.admin_kwargs(self.admin_dbname))
            except self.psycopg2.Error as error:
                fault = classify_exception(error) or fault
                continue
            connection.autocommit = True
            self.keep_sessions(connection)
            if not self.take_shared_lock(connection):
                connection.close()
                break
            self.check_scratch_exists(connection)
            return connection
        self.fault = fault
        raise InfrastructureFault(fault)

    def check_scratch_exists(self, connection: Connection) -> None:
        """After a lost session: every scratch database of the run must still be there."""
        names = sorted(self.created.copy())  # copy(): atomic, other threads add and remove
        found = {row[0] for row in self._rows_on(connection, "SELECT datname FROM pg_database "
                                                             "WHERE datname = ANY(%s)", (names,))}
        missing = [name for name in names if name not in found]
        if missing:
            self.fault = Fault("terminated", f"the run's scratch database {missing[0]} was dropped while its "
                                             "session was lost")
            raise InfrastructureFault(self.fault)

    def keep_alive(self) -> None:
        """Every KEEPALIVE_S: a lost keeper or idle administrative session is replaced at once
        (the other one holds the lock meanwhile)."""
        while not self._closing.wait(KEEPALIVE_S):
            with contextlib.suppress(InfrastructureFault):
                self.keeper = self.checked(self.keeper)
            if self._lock.acquire(blocking=False):  # busy: in use, so it is checked by that use
                try:
                    with contextlib.suppress(InfrastructureFault):
                        admin, self.admin = self.admin, self.checked(self.admin)
                        if self.admin is not admin:
                            self.tell_watchdog()
                finally:
                    self._lock.release()

    def checked(self, connection: Connection) -> Connection:
        """`connection` when it answers, else its replacement."""
        try:
            self._rows_on(connection, "SELECT 1")
            return connection
        except self.psycopg2.Error as error:
            if self._closing.is_set():
                return connection
            fault = classify_exception(error) or Fault("connection_lost", str(error).strip())
            return self.reconnect(connection, fault)

    @property
    def version(self) -> str:
        """The plain version number ("15.18"), without the packager's suffix."""
        return self.server_version.split()[0]

    def check_can_create_databases(self) -> None:
        allowed = self.scalar("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user")
        if not allowed:
            raise UsageError(
                f"the role {self.address.user!r} may not create databases; the tool needs CREATEDB "
                "to make its scratch databases (ALTER ROLE ... CREATEDB, or use another role)"
            )

    def new_database_name(self, purpose: str) -> str:
        name = f"{SCRATCH_PREFIX}{self.run_id}_{next(self._numbers)}_{purpose}"[:63]
        return re.sub(r"[^a-z0-9_]", "_", name.lower())

    def create_database(self, purpose: str, template: str | None = None, strategy: str | None = None,
                        name: str | None = None) -> str:
        """Create a scratch database (optionally a copy of another scratch one, copied with
        `strategy`, PostgreSQL 15's FILE_COPY or WAL_LOG) and return its name: a new one, or
        `name`, one this run's `new_database_name` gave before (a name used again once the
        database that had it is dropped: see chain/slots.py)."""
        with self._lock:
            if name is None:
                name = self.new_database_name(purpose)
            elif not name.startswith(f"{SCRATCH_PREFIX}{self.run_id}_") or name in self.created:
                raise ValueError(f"not a free scratch database name of this run: {name}")
            self.scratch.add(name)
        self.watch.database_created(name)  # before it exists: a kill during CREATE leaves nothing
        sql = f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(self.address.user)}"
        if template is not None:
            self.assert_scratch(template)
            sql += f" TEMPLATE {quote_ident(template)}"
            if strategy is not None:
                sql += f" STRATEGY {strategy}"
        self.scalar(sql)
        self.created.add(name)
        return name

    def assert_scratch(self, name: str) -> None:
        if name not in self.scratch or not name.startswith(SCRATCH_PREFIX):
            raise RuntimeError(f"refusing to touch {name!r}: not a scratch database of this run")

    def drop_database(self, name: str) -> None:
        """DROP ... WITH (FORCE) ends the database's sessions, but gives up when one does not end
        within 5 s ("being accessed by other users": a backend busy on a loaded machine); then
        it is tried again a little later."""
        self.assert_scratch(name)
        for delay in DROP_RETRY_DELAYS_S:
            try:
                self.scalar(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
                break
            except self.psycopg2.errors.ObjectInUse:
                if delay is None:
                    raise
                time.sleep(delay)
        with self._lock:
            self.scratch.discard(name)
            self.created.discard(name)
        self.watch.database_dropped(name)

    def drop_all_scratch(self) -> None:
        for name in sorted(self.scratch, reverse=True):
            with contextlib.suppress(Exception):
                self.drop_database(name)

    def connect(self, dbname: str, options: dict[str, object] | None = None) -> Connection:
        """A connection to scratch database `dbname`; `options`: more driver parameters (those
        Django connects with, so that the tool sees what the project's code sees)."""
        self.assert_scratch(dbname)
        connection = self.psycopg2.connect(**{**self.address.connect_kwargs(dbname), **(options or {})})
        connection.autocommit = True
        return connection

    def url_for(self, dbname: str) -> str:
        return self.address.url_for(dbname)

    def end_sessions(self, dbname: str) -> None:
        """End every session on scratch database `dbname` but the tool's own (a killed step's
        query may still run in the server)."""
        self.assert_scratch(dbname)
        self.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name <> 'test_migrations' AND pid <> pg_backend_pid()",
                    (dbname,))

    def close(self) -> None:
        self._closing.set()
        self._keeper_thread.join(KEEPALIVE_S * 5)
        for connection in (self.admin, self.keeper):
            with contextlib.suppress(Exception):
                connection.close()


def start_throwaway_cluster(log: Log | None, watch: ResourceWatch = NO_WATCH) -> EphemeralCluster:
    bindir = find_postgres_bindir()
    if bindir is None:
        raise UsageError(
            "no PostgreSQL server given and no PostgreSQL binaries found (initdb, pg_ctl); "
            "pass --database-url postgres://user:pass@host:5432/postgres or install PostgreSQL 15"
        )
    if log:
        log.info(f"Starting a throwaway PostgreSQL cluster ({bindir})...")
    return EphemeralCluster(bindir, watch=watch).start()


@contextlib.contextmanager
def postgres_server(cli_url: str | None, environ: dict[str, str], project_dir: Path,
                    log: Log | None = None, watch: ResourceWatch = NO_WATCH) -> Iterator[Server]:
    """Yield a Server on the user's PostgreSQL or on a throwaway cluster; clean up always."""
    url = resolve_server_url(cli_url, environ, project_dir)
    cluster: EphemeralCluster | None = None
    server: Server | None = None
    try:
        if url is None:
            cluster = start_throwaway_cluster(log, watch)
            url = cluster.url
        elif log:
            log.info(f"Using PostgreSQL server {mask_url(url)} (scratch databases only)")
        server = Server(ServerAddress.from_url(url), ephemeral=cluster is not None, watch=watch)
        server.check_can_create_databases()
        yield server
    finally:
        if server is not None:
            server.drop_all_scratch()
            server.close()
            if server.scratch and log:
                log.info(f"could not drop {len(server.scratch)} scratch database(s): the server is unreachable; "
                         "the watchdog drops them once it is back (or a later run does)")
        if cluster is not None:
            cluster.stop()
