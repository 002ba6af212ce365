"""Server: scratch database names, refusing old servers; on the test run's PostgreSQL 15."""

from __future__ import annotations

import threading

import pytest

from migration_check.errors import UsageError
from migration_check.postgres.address import ServerAddress
from migration_check.postgres.server import SCRATCH_PREFIX, Server, require_supported_version


@pytest.fixture
def server(pg_server_url):
    server = Server(ServerAddress.from_url(pg_server_url), ephemeral=False)
    yield server
    server.drop_all_scratch()
    server.close()


def test_servers_older_than_13_are_refused_with_one_line():
    with pytest.raises(UsageError) as raised:
        require_supported_version(120017, "12.17 (Debian 12.17-1)")
    assert str(raised.value) == (
        "PostgreSQL 12.17 (Debian 12.17-1) is too old: the tool needs 13 or newer (it drops its scratch "
        "databases with DROP DATABASE ... WITH (FORCE)); test on the version production runs")
    require_supported_version(130000, "13.0")  # the oldest one that works


def test_the_test_server_is_supported(server):
    assert server.version.startswith("15.")


def test_a_dropped_database_number_is_never_reused(server):
    """Names once came from the length of a list that drops shorten: the next name then equalled
    a live database's, and CREATE DATABASE failed with "already exists"."""
    first = server.create_database("a")
    second = server.create_database("b")
    server.drop_database(first)
    third = server.create_database("b")
    assert len({first, second, third}) == 3
    assert all(name.startswith(f"{SCRATCH_PREFIX}{server.run_id}_") for name in (first, second, third))


def test_names_made_in_parallel_are_unique(server):
    names: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        for _ in range(50):
            name = server.new_database_name("x")
            with lock:
                names.append(name)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(names) == len(set(names)) == 400


def test_only_this_runs_scratch_databases_can_be_dropped(server, pg_server_url):
    with pytest.raises(RuntimeError, match="refusing to touch 'postgres'"):
        server.drop_database("postgres")
    other = Server(ServerAddress.from_url(pg_server_url), ephemeral=False)
    try:
        theirs = other.create_database("theirs")
        with pytest.raises(RuntimeError, match="not a scratch database of this run"):
            server.drop_database(theirs)
    finally:
        other.drop_all_scratch()
        other.close()


def test_a_drop_that_finds_a_session_still_ending_is_tried_again(server, monkeypatch):
    """Under load a terminated backend may take longer than DROP ... WITH (FORCE) waits (5 s)."""
    name = server.create_database("busy")
    real_scalar, attempts = server.scalar, []

    def scalar(sql, params=()):
        if sql.startswith("DROP DATABASE"):
            attempts.append(sql)
            if len(attempts) == 1:
                raise server.psycopg2.errors.ObjectInUse(f'database "{name}" is being accessed by other users')
        return real_scalar(sql, params)

    monkeypatch.setattr(server, "scalar", scalar)
    monkeypatch.setattr("migration_check.postgres.server.DROP_RETRY_DELAYS_S", (0.0, 0.0, None))
    server.drop_database(name)
    assert len(attempts) == 2
    assert name not in server.scratch
    assert real_scalar("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)) == 0


def test_a_reserved_name_is_created_again_once_its_database_is_dropped(server):
    """A slot's name (chain/slots.py): made once, then each of its databases is created under it."""
    name = server.new_database_name("worker1")
    assert server.create_database("ignored", name=name) == name
    with pytest.raises(ValueError, match="not a free scratch database name"):  # still in use
        server.create_database("ignored", name=name)
    server.drop_database(name)
    assert server.create_database("ignored", name=name) == name
    assert server.scalar("SELECT count(*) FROM pg_database WHERE datname = %s", (name,)) == 1


def test_a_name_of_another_run_is_refused(server):
    with pytest.raises(ValueError, match="not a free scratch database name"):
        server.create_database("ignored", name=f"{SCRATCH_PREFIX}0000beef_1_worker1")


def test_a_reserved_name_whose_create_failed_can_be_created_again(server):
    name = server.new_database_name("worker1")
    with pytest.raises(RuntimeError, match="not a scratch database of this run"):  # the template is not ours
        server.create_database("ignored", template=f"{SCRATCH_PREFIX}0000beef_1_template", name=name)
    assert server.create_database("ignored", name=name) == name
