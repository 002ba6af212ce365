#!/usr/bin/env python3
"""Prove that a Django project's migrations deploy and roll back safely on PostgreSQL.

Work happens on scratch databases that this script creates and drops; the database named in
DATABASE_URL is never migrated, written or dropped. See README.md ("Migration tests") for the
options, the exit codes and the JSON report; ../shared/CONTRACT.md is the interface contract.

Sections, in reading order: constants, CLI, discovery, database lifecycle, steps, checks,
reports, main.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

# ---------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------

EXIT_OK = 0
EXIT_MIGRATION_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

REPORT_SCHEMA_VERSION = 1
DEFAULT_DEPTH = 5
DEFAULT_STEP_TIMEOUT_S = 600.0
DEFAULT_SETTINGS = "hello_world.settings"
PREFERRED_PG_MAJOR = 15
SCRATCH_PREFIX = "tm_scratch_"

# Markers a migration file may carry to accept a finding on purpose (see README).
MARKER_ALLOW_DATA_LOSS = "test_migrations: allow-data-loss"
MARKER_ALLOW_IRREVERSIBLE = "test_migrations: allow-irreversible"

REPO_ROOT = Path(__file__).resolve().parent.parent

AppLabel = str
MigrationKey = tuple[str, str]  # (app_label, migration_name)


class UsageError(Exception):
    """A problem with the input or the environment: exit 2 with one line, no traceback."""


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class Log:
    """Console output: progress lines on stdout, flushed before slow work; errors on stderr.

    verbosity follows Django: 0 quiet, 1 default (one line per step), 2 verbose (commands and
    output of failing steps), 3 everything.
    """

    def __init__(self, verbosity: int = 1, stream=None, secret_url: str | None = None) -> None:
        self.verbosity = verbosity
        self.stream = stream or sys.stdout
        self.secret_urls: list[str] = [secret_url] if secret_url else []

    def mask(self, text: str) -> str:
        for url in self.secret_urls:
            text = mask_secrets(text, url)
        return text

    def write(self, text: str, level: int = 1, end: str = "\n") -> None:
        if self.verbosity >= level:
            self.stream.write(self.mask(text) + end)
            self.stream.flush()

    def info(self, text: str) -> None:
        self.write(text, 1)

    def detail(self, text: str) -> None:
        self.write(text, 2)

    def debug(self, text: str) -> None:
        self.write(text, 3)


# ---------------------------------------------------------------------------------------------
# Database lifecycle: finding a server, throwaway clusters, scratch databases
# ---------------------------------------------------------------------------------------------


def mask_url(url: str) -> str:
    """Return `url` with its password replaced by ``***`` (safe to print)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def mask_secrets(text: str, url: str | None) -> str:
    """Remove the password of `url` from any text (command output, error messages)."""
    if not url:
        return text
    password = urllib.parse.urlsplit(url).password
    if password:
        text = text.replace(password, "***")
        text = text.replace(urllib.parse.quote(password, safe=""), "***")
    return text


@dataclass(frozen=True)
class ServerAddress:
    """Where a PostgreSQL server listens and how to log in; parsed from a database URL."""

    host: str
    port: int
    user: str
    password: str | None
    dbname: str
    options: dict[str, str]

    @classmethod
    def from_url(cls, url: str) -> ServerAddress:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("postgres", "postgresql", "pgsql", "postgis"):
            shown = parts.scheme or url.split(":", 1)[0] or "empty"
            raise UsageError(
                f"the database URL {mask_url(url)!s} is not PostgreSQL (scheme {shown!r}); "
                "migrations are tested on PostgreSQL only, pass --database-url postgres://..."
            )
        query = dict(urllib.parse.parse_qsl(parts.query))
        host = urllib.parse.unquote(parts.hostname or "") or query.pop("host", "")
        try:
            port = parts.port or int(query.pop("port", 5432))
        except ValueError as error:
            raise UsageError(f"the database URL {mask_url(url)} has a bad port: {error}") from None
        return cls(
            host=host,
            port=port,
            user=urllib.parse.unquote(parts.username or "") or os.environ.get("USER", "postgres"),
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            dbname=urllib.parse.unquote(parts.path.lstrip("/")) or "postgres",
            options=query,
        )

    def url_for(self, dbname: str) -> str:
        """A URL for database `dbname` on this server (what the children get as DATABASE_URL)."""
        userinfo = urllib.parse.quote(self.user, safe="")
        if self.password is not None:
            userinfo += ":" + urllib.parse.quote(self.password, safe="")
        host = urllib.parse.quote(self.host, safe="") if self.host.startswith("/") else self.host
        query = ("?" + urllib.parse.urlencode(self.options)) if self.options else ""
        return f"postgres://{userinfo}@{host}:{self.port}/{urllib.parse.quote(dbname)}{query}"

    def connect_kwargs(self, dbname: str | None = None) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "host": self.host or None,
            "port": self.port,
            "user": self.user,
            "dbname": dbname or self.dbname,
            "connect_timeout": 10,
            "application_name": "test_migrations",
        }
        if self.password is not None:
            kwargs["password"] = self.password
        for key in ("sslmode", "sslrootcert", "sslcert", "sslkey"):
            if key in self.options:
                kwargs[key] = self.options[key]
        return kwargs


def read_dotenv_value(path: Path, key: str) -> str | None:
    """The value of `key` in a .env file (KEY=VALUE lines, optional quotes and `export`)."""
    if not path.is_file():
        return None
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            return value or None
    return None


def resolve_server_url(cli_url: str | None, environ: dict[str, str], project_dir: Path) -> str | None:
    """The server to work on: --database-url, then $DATABASE_URL, then DATABASE_URL in .env.

    Returns None when none is given, or none of the implicit ones is PostgreSQL (a project that
    uses SQLite for quick local work still gets tested on a throwaway PostgreSQL cluster). An
    explicit --database-url that is not PostgreSQL is an error.
    """
    if cli_url:
        ServerAddress.from_url(cli_url)  # raises UsageError when it is not PostgreSQL
        return cli_url
    for candidate in (environ.get("DATABASE_URL"), read_dotenv_value(project_dir / ".env", "DATABASE_URL")):
        if candidate and candidate.split(":", 1)[0] in ("postgres", "postgresql", "pgsql", "postgis"):
            return candidate
    return None


def find_postgres_bindir(preferred_major: int = PREFERRED_PG_MAJOR) -> Path | None:
    """A folder holding initdb and pg_ctl: PATH, `pg_config --bindir`, /usr/lib/postgresql/*/bin.

    Major version `preferred_major` wins when several are installed.
    """
    candidates: list[Path] = []
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found:
            candidates.append(Path(found).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin")))
    usable = [d for d in dict.fromkeys(candidates) if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]
    if not usable:
        return None

    def major(bindir: Path) -> int:
        match = re.search(r"(\d+)", (bindir / "PG_VERSION").read_text() if (bindir / "PG_VERSION").exists() else "")
        if match:
            return int(match.group(1))
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([str(bindir / "initdb"), "--version"], capture_output=True, text=True, timeout=10)
            match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
            if match:
                return int(match.group(1))
        return 0

    usable.sort(key=lambda d: (major(d) != preferred_major, -major(d)))
    return usable[0]


class EphemeralCluster:
    """A throwaway PostgreSQL cluster in a temporary folder, removed by `stop()`.

    It listens on a private Unix socket (and on 127.0.0.1:`tcp_port` when asked, with password
    authentication, which the tests use); durability is off because nothing here must survive.
    initdb and pg_ctl refuse to run as root, so as root they run as the `postgres` user.
    """

    def __init__(self, bindir: Path, tcp_port: int | None = None, password: str | None = None) -> None:
        self.bindir = bindir
        self.tcp_port = tcp_port
        self.password = password
        self.folder: Path | None = None
        self.started = False

    @property
    def address(self) -> ServerAddress:
        assert self.folder is not None
        if self.tcp_port:
            return ServerAddress("127.0.0.1", self.tcp_port, "postgres", self.password, "postgres", {})
        return ServerAddress(str(self.folder / "socket"), 5432, "postgres", None, "postgres", {})

    @property
    def url(self) -> str:
        return self.address.url_for("postgres")

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv: list[str], timeout: float = 120) -> None:
        result = subprocess.run(
            self._as_owner(argv), capture_output=True, text=True, timeout=timeout,
            start_new_session=True,  # a Ctrl-C meant for us must not reach the server first
        )
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UsageError(f"could not start a throwaway PostgreSQL ({Path(argv[0]).name}): {last[0]}")

    def start(self) -> EphemeralCluster:
        # Lower-case, short path: Unix socket paths are limited to ~107 bytes, and URL host names
        # are case-folded by urllib.
        self.folder = Path(tempfile.mkdtemp(prefix="tm-pg-", dir="/tmp" if Path("/tmp").is_dir() else None))
        data, socket_dir = self.folder / "data", self.folder / "socket"
        socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            shutil.chown(socket_dir, "postgres")
        self.folder.chmod(0o755)
        initdb = [str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--no-sync",
                  "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=trust"]
        if self.password is not None:
            pwfile = self.folder / "pwfile"
            pwfile.write_text(self.password + "\n")
            if os.geteuid() == 0:
                shutil.chown(pwfile, "postgres")
            initdb += ["--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        else:
            initdb += ["--auth-host=trust"]
        self._run(initdb)
        listen = f"-c listen_addresses=127.0.0.1 -p {self.tcp_port}" if self.tcp_port else "-c listen_addresses='' -p 5432"
        options = (f"{listen} -k {socket_dir} -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")
        self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"),
                   "-o", options, "-w", "-t", "60", "start"])
        self.started = True
        return self

    def stop(self) -> None:
        if self.folder is None:
            return
        if self.started:
            with contextlib.suppress(Exception):
                subprocess.run(
                    self._as_owner([str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                                    "-m", "immediate", "-w", "stop"]),
                    capture_output=True, timeout=60, start_new_session=True,
                )
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> EphemeralCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def import_psycopg2():  # noqa: ANN201 - the module, typed loosely to keep it optional at import
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


class Server:
    """A connection to the PostgreSQL server used for administration and for catalog reads.

    It creates and drops scratch databases, all named with SCRATCH_PREFIX and a random suffix,
    and refuses to drop any other database, so the one named in the user's URL is safe.
    """

    def __init__(self, address: ServerAddress, ephemeral: bool) -> None:
        self.address = address
        self.ephemeral = ephemeral
        self.psycopg2 = import_psycopg2()
        self.scratch: list[str] = []
        self.run_id = secrets.token_hex(4)
        try:
            self.admin = self.psycopg2.connect(**address.connect_kwargs())
        except self.psycopg2.Error as error:
            raise UsageError(describe_connection_error(error, address)) from None
        self.admin.autocommit = True
        self.server_version = self.scalar("SHOW server_version")

    def scalar(self, sql: str, params: Sequence[object] = ()) -> object:
        with self.admin.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        return row[0] if row else None

    def check_can_create_databases(self) -> None:
        allowed = self.scalar("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user")
        if not allowed:
            raise UsageError(
                f"the role {self.address.user!r} may not create databases; the tool needs CREATEDB "
                "to make its scratch databases (ALTER ROLE ... CREATEDB, or use another role)"
            )

    def new_database_name(self, purpose: str) -> str:
        name = f"{SCRATCH_PREFIX}{self.run_id}_{len(self.scratch)}_{purpose}"[:63]
        return re.sub(r"[^a-z0-9_]", "_", name.lower())

    def create_database(self, purpose: str, template: str | None = None) -> str:
        """Create a scratch database (optionally a copy of another scratch one) and return its name."""
        name = self.new_database_name(purpose)
        self.scratch.append(name)
        quoted = self.quote_ident(name)
        sql = f"CREATE DATABASE {quoted} OWNER {self.quote_ident(self.address.user)}"
        if template is not None:
            self.assert_scratch(template)
            sql += f" TEMPLATE {self.quote_ident(template)}"
        with self.admin.cursor() as cursor:
            cursor.execute(sql)
        return name

    def assert_scratch(self, name: str) -> None:
        if name not in self.scratch or not name.startswith(SCRATCH_PREFIX):
            raise RuntimeError(f"refusing to touch {name!r}: not a scratch database of this run")

    def drop_database(self, name: str) -> None:
        self.assert_scratch(name)
        with self.admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {self.quote_ident(name)} WITH (FORCE)")
        self.scratch.remove(name)

    def drop_all_scratch(self) -> None:
        for name in list(reversed(self.scratch)):
            with contextlib.suppress(Exception):
                self.drop_database(name)

    def connect(self, dbname: str):  # noqa: ANN201 - a psycopg2 connection
        self.assert_scratch(dbname)
        connection = self.psycopg2.connect(**self.address.connect_kwargs(dbname))
        connection.autocommit = True
        return connection

    def url_for(self, dbname: str) -> str:
        return self.address.url_for(dbname)

    @staticmethod
    def quote_ident(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.admin.close()


@contextlib.contextmanager
def postgres_server(cli_url: str | None, environ: dict[str, str], project_dir: Path,
                    log: Log | None = None) -> Iterator[Server]:
    """Yield a Server on the user's PostgreSQL or on a throwaway cluster; clean up always."""
    url = resolve_server_url(cli_url, environ, project_dir)
    cluster: EphemeralCluster | None = None
    server: Server | None = None
    try:
        if url is None:
            bindir = find_postgres_bindir()
            if bindir is None:
                raise UsageError(
                    "no PostgreSQL server given and no PostgreSQL binaries found (initdb, pg_ctl); "
                    "pass --database-url postgres://user:pass@host:5432/postgres or install PostgreSQL 15"
                )
            if log:
                log.info(f"Starting a throwaway PostgreSQL cluster ({bindir})...")
            cluster = EphemeralCluster(bindir).start()
            url = cluster.url
        elif log:
            log.info(f"Using PostgreSQL server {mask_url(url)} (scratch databases only)")
        server = Server(ServerAddress.from_url(url), ephemeral=cluster is not None)
        server.check_can_create_databases()
        yield server
    finally:
        if server is not None:
            server.drop_all_scratch()
            server.close()
        if cluster is not None:
            cluster.stop()
