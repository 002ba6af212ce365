"""EphemeralCluster: nothing is left behind when its start fails half-way."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from migration_check.errors import UsageError
from migration_check.postgres.cluster import EphemeralCluster, find_postgres_bindir


class RecordingCluster(EphemeralCluster):
    """Remembers the folder it made, which stop() forgets."""

    made = None

    def _make_folder(self):
        self.made = super()._make_folder()
        return self.made


def postgres_processes_in(folder) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(folder) in line and "postgres" in line]


def test_a_failing_pg_ctl_after_initdb_leaves_no_folder_and_no_server():
    """The port is taken, so the server cannot start after initdb made the data folder."""
    bindir = find_postgres_bindir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cluster = RecordingCluster(bindir, tcp_port=busy.getsockname()[1], password="pw")
        with pytest.raises(UsageError, match="could not start a throwaway PostgreSQL \\(pg_ctl\\)"):
            cluster.start()
    assert cluster.made is not None and not cluster.made.exists()
    assert postgres_processes_in(cluster.made) == []


@pytest.fixture
def failing_bindir():
    """initdb and pg_ctl that fail as on a full disk; in a folder the postgres user can reach
    (as root the cluster runs them as postgres)."""
    bindir = Path(tempfile.mkdtemp(prefix="tm-test-bin-", dir="/tmp"))
    bindir.chmod(0o755)
    for name in ("initdb", "pg_ctl"):
        script = bindir / name
        script.write_text("#!/bin/sh\necho 'initdb: error: could not create directory: No space left on device' >&2"
                          "\nexit 1\n")
        script.chmod(0o755)
    yield bindir
    shutil.rmtree(bindir)


def test_a_failing_initdb_leaves_no_folder(failing_bindir):
    cluster = RecordingCluster(failing_bindir)
    with pytest.raises(UsageError, match="\\(initdb\\): initdb: error: could not create directory: No space left"):
        cluster.start()
    assert cluster.made is not None and not cluster.made.exists()


def test_a_started_cluster_is_removed_by_stop():
    with RecordingCluster(find_postgres_bindir()) as cluster:
        assert (cluster.made / "data" / "postmaster.pid").exists()
        assert postgres_processes_in(cluster.made)
    assert not cluster.made.exists()
    assert postgres_processes_in(cluster.made) == []


PSQL_TIMEOUT_S = 30


def psql_as(os_user: str, cluster: EphemeralCluster, password: str | None = None) -> subprocess.CompletedProcess:
    """`psql -c 'SELECT 1'` on the cluster's socket as another OS user, never prompting."""
    argv = [str(cluster.bindir / "psql"), "-w", "-h", str(cluster.folder / "socket"), "-U", "postgres",
            "-d", "postgres", "-c", "SELECT 1"]
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **({"PGPASSWORD": password} if password else {})}
    return subprocess.run(["runuser", "-u", os_user, "--", *argv], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, env=env, timeout=PSQL_TIMEOUT_S)


@pytest.fixture
def private_cluster():
    if os.geteuid() != 0:
        pytest.skip("connecting as another OS user needs root (runuser)")
    with RecordingCluster(find_postgres_bindir()) as cluster:
        yield cluster


def test_another_local_user_is_refused(private_cluster):
    """`nobody` cannot even reach the socket (the folder and socket directory are 0700)."""
    refused = psql_as("nobody", private_cluster)
    assert refused.returncode != 0
    assert "Permission denied" in refused.stderr
    assert "(1 row)" not in refused.stdout


def test_even_the_server_user_needs_the_password(private_cluster):
    """No `trust` line: the server's own OS user gets in only with the run's password."""
    without = psql_as("postgres", private_cluster)
    assert without.returncode != 0 and "no password supplied" in without.stderr
    wrong = psql_as("postgres", private_cluster, password="not-the-password")
    assert wrong.returncode != 0 and "password authentication failed" in wrong.stderr
    right = psql_as("postgres", private_cluster, password=private_cluster.password)
    assert right.returncode == 0 and "(1 row)" in right.stdout
    hba = (private_cluster.made / "data" / "pg_hba.conf").read_text()
    assert [line for line in hba.splitlines() if line.strip() and not line.startswith("#")
            and line.split()[-1] == "trust"] == []


def test_folder_and_socket_are_private_and_the_password_is_in_no_file(private_cluster):
    folder = private_cluster.made
    for path in (folder, folder / "socket", folder / "socket" / ".s.PGSQL.5432"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    password = private_cluster.password.encode()
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert password not in path.read_bytes(), path
