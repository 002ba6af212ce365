"""A throwaway PostgreSQL cluster, for runs that are given no server.

Owns: finding PostgreSQL server binaries (`find_postgres_bindir`) and `EphemeralCluster`, a
cluster in a temporary folder on a private Unix socket, removed by `stop()`, also when its
start fails half-way. The cluster is private: its folder and socket directory are 0700, the
socket 0700, and every login needs a password (scram-sha-256) that exists only in the memory
of the run (handed to initdb through a pipe, to children in DATABASE_URL, to the watchdog
through its pipe), so another local user gets no session even on a shared machine.
Each folder carries an owner record (`OwnerRecord`: the process that made
it, its watchdog, the binaries), so a later run can tell a folder whose owner was killed.

No Django, no psycopg2.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..processes.identity import ProcessId, kill_pgid, kill_processes_naming
from ..processes.resources import NO_WATCH, ResourceWatch
from .address import ServerAddress

PREFERRED_PG_MAJOR = 15
FOLDER_PREFIX = "tm-pg-"
OWNER_FILE = "owner.json"
# Only the user who runs the server may reach its folder and socket (the run itself when it is
# that user, or root, which runs the server as `postgres`).
PRIVATE_MODE = 0o700
SERVER_USER = "postgres"  # initdb and pg_ctl refuse root: as root the cluster runs as this user


def bindir_major(bindir: Path) -> int:
    """The major version of the server binaries in `bindir` (0 when it cannot be told)."""
    version_file = bindir / "PG_VERSION"
    match = re.search(r"(\d+)", version_file.read_text() if version_file.exists() else "")
    if match:
        return int(match.group(1))
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run([str(bindir / "initdb"), "--version"], capture_output=True, text=True, timeout=10)
        match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
        if match:
            return int(match.group(1))
    return 0


def candidate_bindirs() -> list[Path]:
    """Folders that may hold initdb and pg_ctl: PATH, `pg_config --bindir`, /usr/lib/postgresql."""
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
    return list(dict.fromkeys(candidates))


def find_postgres_bindir(preferred_major: int = PREFERRED_PG_MAJOR) -> Path | None:
    """A folder holding initdb and pg_ctl; major version `preferred_major` wins, then the newest."""
    usable = [d for d in candidate_bindirs() if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]
    if not usable:
        return None
    usable.sort(key=lambda d: (bindir_major(d) != preferred_major, -bindir_major(d)))
    return usable[0]


def cluster_parent() -> Path | None:
    """Where throwaway cluster folders go: /tmp (a short path, see `_make_folder`)."""
    return Path("/tmp") if Path("/tmp").is_dir() else None


@dataclass(frozen=True)
class OwnerRecord:
    """Who made a cluster folder: the process, its watchdog (None without one), the binaries."""

    owner: ProcessId
    watchdog: ProcessId | None
    bindir: Path

    def write(self, folder: Path) -> None:
        data = {"owner": self.owner.to_json(), "watchdog": self.watchdog.to_json() if self.watchdog else None,
                "bindir": str(self.bindir)}
        (folder / OWNER_FILE).write_text(json.dumps(data) + "\n")

    @classmethod
    def read(cls, folder: Path) -> OwnerRecord | None:
        """The record, when it is there, well formed and written by this user (a record someone
        else wrote is not trusted: it names the binaries that would be run)."""
        path = folder / OWNER_FILE
        try:
            if path.stat().st_uid != os.geteuid():
                return None
            data = json.loads(path.read_text())
            owner = ProcessId.from_json(data.get("owner"))
            bindir = Path(data["bindir"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        if owner is None:
            return None
        return cls(owner, ProcessId.from_json(data.get("watchdog")), bindir)

    def abandoned(self) -> bool:
        """Neither the process that made the folder nor its watchdog is alive."""
        return not self.owner.alive() and not (self.watchdog and self.watchdog.alive())


class EphemeralCluster:
    """A throwaway PostgreSQL cluster in a temporary folder, removed by `stop()`.

    It listens on a private Unix socket (and on 127.0.0.1:`tcp_port` when asked, which the tests
    use); every login needs `password` (a random one unless given), kept in memory only;
    durability is off because nothing here must survive. initdb and pg_ctl refuse to run as
    root, so as root they run as the `postgres` user.
    """

    def __init__(self, bindir: Path, tcp_port: int | None = None, password: str | None = None,
                 watch: ResourceWatch = NO_WATCH, settings: dict[str, str] | None = None) -> None:
        self.bindir = bindir
        self.settings = dict(settings or {})  # more server settings (the tests' max_connections)
        self.tcp_port = tcp_port
        self.password = password or secrets.token_urlsafe(24)
        self.watch = watch
        self.folder: Path | None = None

    @property
    def address(self) -> ServerAddress:
        assert self.folder is not None
        if self.tcp_port:
            return ServerAddress("127.0.0.1", self.tcp_port, "postgres", self.password, "postgres", {})
        return ServerAddress(str(self.folder / "socket"), 5432, "postgres", self.password, "postgres", {})

    @property
    def url(self) -> str:
        return self.address.url_for("postgres")

    @staticmethod
    def _as_owner(argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SERVER_USER, "--", *argv]
        return argv

    def _run(self, argv: list[str], timeout: float = 120,
             pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess[str]:
        """Run a server command (initdb, pg_ctl), known to the watchdog while it runs."""
        process = subprocess.Popen(
            self._as_owner(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True,  # a Ctrl-C meant for us must not reach the server first
            pass_fds=pass_fds,
        )
        self.watch.process_started(process.pid)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except BaseException:
            kill_pgid(process.pid)  # runuser and the command it started
            process.wait()
            raise
        finally:
            self.watch.process_ended(process.pid)
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    def _run_checked(self, argv: list[str], pass_fds: tuple[int, ...] = ()) -> None:
        result = self._run(argv, pass_fds=pass_fds)
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UsageError(f"could not start a throwaway PostgreSQL ({Path(argv[0]).name}): {last[0]}")

    def _make_folder(self) -> Path:
        # Lower-case, short path: Unix socket paths are limited to ~107 bytes, and URL host names
        # are case-folded by urllib.
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=cluster_parent()))
        # Recorded before anything else happens in it: a folder is never without its owner.
        OwnerRecord(ProcessId.current(), self.watch.identity, self.bindir).write(folder)
        self.watch.cluster_created(folder, self.bindir)
        (folder / "socket").mkdir(mode=PRIVATE_MODE)
        if os.geteuid() == 0:
            shutil.chown(folder, SERVER_USER)
            shutil.chown(folder / "socket", SERVER_USER)
        for private in (folder, folder / "socket"):
            private.chmod(PRIVATE_MODE)
        return folder

    def _password_pipe(self) -> int:
        """The reading end of a pipe holding the password, for `initdb --pwfile=/dev/fd/N`: the
        password never lands in a file. As root the server user must be able to open it."""
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, (self.password + "\n").encode())  # far below a pipe's buffer
        finally:
            os.close(write_end)
        if os.geteuid() == 0:  # a pipe belongs to its maker: reopening /dev/fd/N needs its owner
            server_user = pwd.getpwnam(SERVER_USER)
            os.fchown(read_end, server_user.pw_uid, server_user.pw_gid)
        return read_end

    def _initdb_argv(self, folder: Path, password_fd: int) -> list[str]:
        return [str(self.bindir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "--no-sync",
                "-E", "UTF8", "--locale=C.UTF-8", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                f"--pwfile=/dev/fd/{password_fd}"]

    def _server_options(self, folder: Path) -> str:
        if self.tcp_port:
            listen = f"-c listen_addresses=127.0.0.1 -p {self.tcp_port}"
        else:
            listen = "-c listen_addresses='' -p 5432"
        settings = {"max_connections": "200", **self.settings}
        return (f"{listen} -k {folder / 'socket'} -c unix_socket_permissions=0700 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off "
                + " ".join(f"-c {name}={value}" for name, value in settings.items()))

    def _initdb(self, folder: Path) -> None:
        password_fd = self._password_pipe()
        try:
            self._run_checked(self._initdb_argv(folder, password_fd), pass_fds=(password_fd,))
        finally:
            os.close(password_fd)

    def start(self) -> EphemeralCluster:
        """initdb and start; on any failure, whatever was made (folder, server) is removed."""
        self.folder = self._make_folder()
        try:
            self._initdb(self.folder)
            self._run_checked([str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                       "-l", str(self.folder / "server.log"), "-o", self._server_options(self.folder),
                       "-w", "-t", "60", "start"])
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server if one runs in the folder (its pid file says so), remove the folder.

        Whatever still runs on the folder afterwards (a server or initdb whose start was cut
        short by a kill) is killed, so no process outlives its data directory.
        """
        if self.folder is None:
            return
        if (self.folder / "data" / "postmaster.pid").exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                self._run([str(self.bindir / "pg_ctl"), "-D", str(self.folder / "data"),
                           "-m", "immediate", "-w", "stop"], timeout=60)
        kill_processes_naming(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.watch.cluster_removed(self.folder)
        self.folder = None

    @classmethod
    def abandoned_in(cls, folder: Path, bindir: Path) -> EphemeralCluster:
        """The cluster another run left in `folder`, to be stopped and removed with `stop()`."""
        cluster = cls(bindir)
        cluster.folder = folder
        return cluster

    def __enter__(self) -> EphemeralCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
