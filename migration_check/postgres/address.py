"""Where the PostgreSQL server is: database URLs, `.env`, and which server a run uses.

Owns: `ServerAddress` (a parsed URL, turned back into the URL each child gets and into psycopg2
connection arguments) and `resolve_server_url` (--database-url, then $DATABASE_URL, then
DATABASE_URL in `.env`, read the way python-dotenv reads it).

No database access.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..log import mask_passwords, mask_url

POSTGRES_SCHEMES = ("postgres", "postgresql", "pgsql", "postgis")
# Connection settings of the URL's query string that psycopg2 (libpq) takes as they are.
LIBPQ_OPTIONS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "options")


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
        """Parsed as libpq reads a URL: user and password from the user-info part, else from the
        query (`?user=`, `?password=`); a URL that cannot be parsed is a UsageError."""
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError as error:
            raise UsageError(f"the database URL {mask_passwords(url)} cannot be read: {error} "
                             "(expected postgres://USER@HOST:PORT/DATABASE, the password after USER:)") from None
        if parts.scheme not in POSTGRES_SCHEMES:
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
        query_user, query_password = query.pop("user", ""), query.pop("password", None)
        return cls(
            host=host,
            port=port,
            user=urllib.parse.unquote(parts.username or "") or query_user or os.environ.get("USER", "postgres"),
            password=urllib.parse.unquote(parts.password) if parts.password else query_password or None,
            dbname=urllib.parse.unquote(parts.path.lstrip("/")) or "postgres",
            options=query,
        )

    def url_for(self, dbname: str) -> str:
        """A URL for database `dbname` on this server (what the children get as DATABASE_URL)."""
        userinfo = urllib.parse.quote(self.user, safe="")
        if self.password is not None:
            userinfo += ":" + urllib.parse.quote(self.password, safe="")
        if self.host.startswith("/"):
            host = urllib.parse.quote(self.host, safe="")
        elif ":" in self.host:  # IPv6 literal
            host = f"[{self.host}]"
        else:
            host = self.host
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
        kwargs.update({key: self.options[key] for key in LIBPQ_OPTIONS if key in self.options})
        return kwargs


def parse_dotenv_value(path: Path, key: str) -> str | None:
    """The value of `key` in a .env file, as python-dotenv would read it: the last assignment
    wins, quotes are removed, an unquoted value ends at " #"; `export` is allowed."""
    value = None
    for raw in read_utf8(path).splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, text = line.partition("=")
        if not sep or name.strip() != key:
            continue
        text = text.strip()
        if text[:1] in ("'", '"'):
            closing = text.find(text[0], 1)
            value = text[1:closing] if closing > 0 else None  # an unclosed quote: not a value
        else:
            value = text.split(" #", 1)[0].rstrip()
    return value or None


def read_dotenv_value(path: Path, key: str) -> str | None:
    """The value of `key` in the .env file at `path`: python-dotenv's parser when it is
    installed (the project reads its .env with it), else the small equivalent above."""
    if not path.is_file():
        return None
    read_utf8(path)  # python-dotenv reads UTF-8 and fails with a traceback on anything else
    try:
        from dotenv import dotenv_values
    except ImportError:
        return parse_dotenv_value(path, key)
    return dotenv_values(path, encoding="utf-8").get(key) or None


def read_utf8(path: Path) -> str:
    """The text of `path` as UTF-8 (as python-dotenv reads .env); one line saying where it is
    not UTF-8 otherwise."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(f"{path} is not UTF-8: byte 0x{data[error.start]:02x} on line {line} cannot be decoded "
                         "(python-dotenv reads .env as UTF-8); save the file as UTF-8") from None


def is_postgres_url(url: str | None) -> bool:
    return url is not None and url.split(":", 1)[0] in POSTGRES_SCHEMES


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
        if is_postgres_url(candidate):
            return candidate
    return None
