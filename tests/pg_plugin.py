"""Pytest plugin: one throwaway PostgreSQL 15 server for the whole test run.

Loaded with ``-p tests.pg_plugin`` (pyproject.toml) so that it runs before pytest-django reads
the settings: the host app's tests then run on PostgreSQL, the production engine, and the
migration tool's tests get a server to make scratch databases on.

- ``TEST_DATABASE_URL`` set: Django uses it (e.g. ``sqlite:///test.sqlite3`` for the quick SQLite
  job); a PostgreSQL server is still started for the tests that need one, when they ask.
- otherwise: a cluster is started (as the ``postgres`` user when root) on 127.0.0.1 with a
  password, ``DATABASE_URL`` points at it, and pytest-xdist workers share it.

The cluster is the migration tool's own ``EphemeralCluster``, so the tests exercise it too.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVER_URL_ENV = "HELLO_TEST_PG_SERVER_URL"


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SharedServer:
    """Starts the cluster at most once per pytest process tree."""

    def __init__(self) -> None:
        self.cluster = None

    def url(self) -> str:
        if os.environ.get(SERVER_URL_ENV):
            return os.environ[SERVER_URL_ENV]
        from migration_check.postgres.cluster import EphemeralCluster, find_postgres_bindir

        bindir = find_postgres_bindir()
        if bindir is None:
            raise pytest.UsageError(
                "the tests need PostgreSQL 15 server binaries (initdb, pg_ctl): "
                "apt-get install postgresql-15, or put its bin folder on PATH"
            )
        self.cluster = EphemeralCluster(
            bindir, tcp_port=free_tcp_port(), password=secrets.token_hex(8)
        ).start()
        os.environ[SERVER_URL_ENV] = self.cluster.url
        return self.cluster.url

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
            os.environ.pop(SERVER_URL_ENV, None)


SHARED = SharedServer()


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config, parser, args):
    if os.environ.get("TEST_DATABASE_URL"):
        os.environ["DATABASE_URL"] = os.environ["TEST_DATABASE_URL"]
    else:
        os.environ["DATABASE_URL"] = SHARED.url()
    return (yield)


def pytest_unconfigure(config):
    SHARED.stop()


def existing_databases(server_url: str, names: list[str]) -> list[str]:
    """Which of `names` exist on the server (to prove that scratch databases were dropped)."""
    import psycopg2

    connection = psycopg2.connect(server_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))
            return [name for (name,) in cursor.fetchall()]
    finally:
        connection.close()


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """URL of a PostgreSQL 15 server (its ``postgres`` database) the tests may create databases on."""
    return SHARED.url()
