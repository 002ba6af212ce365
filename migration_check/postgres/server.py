"""The PostgreSQL server a run works on, and its scratch databases.

Owns: `Server` (the administrative connection; creating, connecting to and dropping scratch
databases, and refusing to touch any other database) and `postgres_server`, which yields a
Server on the user's server or on a throwaway cluster and always cleans up. Each Server holds,
on its administrative session and for its whole life, an advisory lock derived from the run id
that every one of its scratch database names carries (`run_lock_key`): while a run lives its
lock is held, so a scratch database whose lock nobody holds belongs to a run that is gone.

Uses: address, cluster, errors, log, resources; psycopg2 (imported when a server is opened).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..log import Log, mask_url
from ..processes.resources import NO_WATCH, ResourceWatch
from .address import ServerAddress, resolve_server_url
from .cluster import EphemeralCluster, find_postgres_bindir

SCRATCH_PREFIX = "tm_scratch_"
# The first key of every run's advisory lock ("tm_s"); the second is the run id (8 hex digits).
RUN_LOCK_CLASS = 0x746D5F73
RUN_ID_ATTEMPTS = 20
# DROP DATABASE ... WITH (FORCE), which ends the sessions a killed step left, needs 13.
MINIMUM_SERVER_VERSION_NUM = 130000
DROP_RETRY_DELAYS_S = (1.0, 3.0, None)  # seconds before the next attempt; None: the last one

Connection = Any  # a psycopg2 connection (psycopg2 ships no type information)


def import_psycopg2() -> Any:
    try:
        import psycopg2
        import psycopg2.errors
    except ImportError:
        raise UsageError(
            "psycopg2 is not installed in this Python; install it (pip install psycopg2-binary) "
            "or run the script with the project's virtualenv Python"
        ) from None
    return psycopg2


def describe_connection_error(error: Exception, address: ServerAddress) -> str:
    """Turn a psycopg2 connection failure into one line saying what to do."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    where = address.host if address.host.startswith("/") else f"{address.host or 'localhost'}:{address.port}"
    if "password authentication failed" in message or "no password supplied" in message:
        hint = "check the user and password in the database URL"
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
        self.psycopg2 = import_psycopg2()
        self.scratch: set[str] = set()
        self._numbers = itertools.count()
        self._lock = threading.Lock()
        self.admin = self.connect_admin(address)
        self.admin.autocommit = True
        self.server_version = str(self.scalar("SHOW server_version"))
        require_supported_version(int(self.scalar("SHOW server_version_num")), self.server_version)
        self.run_id = self.claim_run_id()
        pid, started = self.rows("SELECT pid, backend_start::text FROM pg_stat_activity "
                                 "WHERE pid = pg_backend_pid()")[0]
        watch.server_opened(address.connect_kwargs(self.admin.info.dbname), {"pid": pid, "started": started},
                            self.run_id)

    def claim_run_id(self) -> str:
        """A run id whose advisory lock this session now holds and that no database carries yet
        (a database left by a killed run with the same id must not pass for one of ours)."""
        for _ in range(RUN_ID_ATTEMPTS):
            run_id = secrets.token_hex(4)
            if not self.scalar("SELECT pg_try_advisory_lock(%s::int4, %s::int4)", run_lock_key(run_id)):
                continue
            if not self.scalar("SELECT count(*) FROM pg_database WHERE starts_with(datname, %s)",
                               (f"{SCRATCH_PREFIX}{run_id}_",)):
                return run_id
            self.scalar("SELECT pg_advisory_unlock(%s::int4, %s::int4)", run_lock_key(run_id))
        raise UsageError("could not find a free run id for the scratch databases on this server")

    def connect_admin(self, address: ServerAddress) -> Connection:
        """Connect to the URL's database, or, when that one does not exist yet (a fresh .env),
        to the `postgres` maintenance database: the tool only needs the server."""
        try:
            return self.psycopg2.connect(**address.connect_kwargs())
        except self.psycopg2.OperationalError as error:
            if f'database "{address.dbname}" does not exist' not in str(error) or address.dbname == "postgres":
                raise UsageError(describe_connection_error(error, address)) from None
        try:
            return self.psycopg2.connect(**address.connect_kwargs("postgres"))
        except self.psycopg2.Error as error:
            raise UsageError(describe_connection_error(error, address)) from None

    def scalar(self, sql: str, params: Sequence[object] = ()) -> object:
        """Run one statement on the administrative connection; the first value it returns."""
        with self._lock, self.admin.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone() if cursor.description else None
        return row[0] if row else None

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        """Run one query on the administrative connection; every row it returns."""
        with self._lock, self.admin.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []

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

    def create_database(self, purpose: str, template: str | None = None, strategy: str | None = None) -> str:
        """Create a scratch database (optionally a copy of another scratch one, copied with
        `strategy`, PostgreSQL 15's FILE_COPY or WAL_LOG) and return its name."""
        with self._lock:
            name = self.new_database_name(purpose)
            self.scratch.add(name)
        self.watch.database_created(name)  # before it exists: a kill during CREATE leaves nothing
        sql = f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(self.address.user)}"
        if template is not None:
            self.assert_scratch(template)
            sql += f" TEMPLATE {quote_ident(template)}"
            if strategy is not None:
                sql += f" STRATEGY {strategy}"
        self.scalar(sql)
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
        with contextlib.suppress(Exception):
            self.admin.close()


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
        if cluster is not None:
            cluster.stop()
