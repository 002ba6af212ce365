"""EphemeralCluster: nothing is left behind when its start fails half-way."""

from __future__ import annotations

import shutil
import socket
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
