"""The watchdog: a process that removes what a run created when the run dies without doing it
itself (`kill -9`, a CI runner's time-out, a closed terminal).

It is started before anything is created, in a session of its own (a signal meant for the run's
process group does not reach it), with the reading end of a pipe as its stdin. The run writes
one JSON line per resource as it is created (a child process group, a throwaway cluster folder
and its binaries, the server's connection arguments and administrative session, each scratch
database) and one as it is removed. When the run ends for any reason the pipe reaches EOF:
whatever is still listed is what the run left, and only that is removed. A run that ended
cleanly says `done` first and nothing is listed, so the watchdog exits without touching
anything. Passwords travel only through the pipe: never on a command line, never printed.

Owns: `watchdog` (the run's side: start, `WatchdogClient`, close), `Tracked` (what is still
listed) with `Tracked.remove_all`, and `main()`, the watchdog process itself.

psycopg2 is imported in the watchdog only when it has databases to drop.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..inside_django.faults import backoff_delays, retry_window_s
from ..inside_django.protocol import package_home
from ..log import Log
from ..postgres.cluster import EphemeralCluster
from ..postgres.driver import load_driver
from ..postgres.server import SCRATCH_PREFIX, quote_ident
from ..processes.identity import ProcessId, kill_group
from ..processes.resources import NO_WATCH, ResourceWatch

# After a normal end the watchdog has nothing to do; after a kill it needs a few seconds; after
# a server outage it waits for the server (SERVER_WAIT_S, shorter in the tests) before it gives up.
EXIT_TIMEOUT_S = 60.0
BACKEND_GONE_TIMEOUT_S = 10.0
SERVER_WAIT_ENV = "TEST_MIGRATIONS_WATCHDOG_WAIT_S"
SERVER_WAIT_S = 120.0
PROG = "test_migrations"


def server_wait_s(environ: dict[str, str]) -> float:
    return retry_window_s(environ, SERVER_WAIT_ENV, SERVER_WAIT_S)


def watchdog_argv() -> list[str]:
    """The same Python, running this module's main() from wherever the package is imported
    (a folder or the one-file build): a list, never a shell string."""
    code = (f"import sys; sys.path.insert(0, {package_home()!r}); "
            "from migration_check.cleanup.watchdog import main; main()")
    return [sys.executable, "-c", code]


# ------------------------------------------------------------------------------------------------
# The run's side
# ------------------------------------------------------------------------------------------------


class WatchdogClient(ResourceWatch):
    """Tells the watchdog process about each resource (thread-safe); a watchdog that died makes
    every later call a no-op, after one warning: the run itself still cleans up."""

    def __init__(self, process: subprocess.Popen[str], log: Log) -> None:
        if process.stdin is None:  # start_watchdog opens it as a pipe: what the run writes to
            raise ValueError("the watchdog's stdin must be a pipe")
        self.process = process
        self.stdin = process.stdin
        self.log = log
        self._identity = ProcessId.of(process.pid)
        self._lock = threading.Lock()
        self._broken = False

    @property
    def identity(self) -> ProcessId | None:
        return self._identity

    def send(self, event: str, **data: Any) -> None:
        line = json.dumps({"event": event, **data}) + "\n"
        with self._lock:
            if self._broken:
                return
            try:
                self.stdin.write(line)
                self.stdin.flush()
            except (OSError, ValueError):
                self._broken = True
                self.log.info(f"{PROG}: warning: the watchdog is gone; a hard kill from now on may leave "
                              "scratch databases or a throwaway server behind")

    def process_started(self, pid: int) -> None:
        self.send("process_started", process=ProcessId.of(pid).to_json())

    def process_ended(self, pid: int) -> None:
        self.send("process_ended", pid=pid)

    def cluster_created(self, folder: Path, bindir: Path) -> None:
        self.send("cluster_created", folder=str(folder), bindir=str(bindir))

    def cluster_removed(self, folder: Path) -> None:
        self.send("cluster_removed", folder=str(folder))

    def folder_created(self, folder: Path) -> None:
        self.send("folder_created", folder=str(folder))

    def folder_removed(self, folder: Path) -> None:
        self.send("folder_removed", folder=str(folder))

    def server_opened(self, connect: dict[str, Any], backend: dict[str, Any], run_id: str) -> None:
        self.send("server_opened", connect=connect, backend=backend, run_id=run_id)

    def database_created(self, name: str) -> None:
        self.send("database_created", name=name)

    def database_dropped(self, name: str) -> None:
        self.send("database_dropped", name=name)

    def close(self) -> None:
        """The run cleaned up: say so, close the pipe, and wait for the watchdog to finish
        (it removes whatever the run's own cleanup could not)."""
        self.send("done")
        with self._lock:
            self._broken = True  # closed on purpose: a late message is not a dead watchdog
            with contextlib.suppress(OSError, ValueError):
                self.stdin.close()
        try:
            self.process.wait(timeout=EXIT_TIMEOUT_S + server_wait_s(dict(os.environ)))
        except subprocess.TimeoutExpired:
            self.log.info(f"{PROG}: warning: the watchdog did not finish within {EXIT_TIMEOUT_S:g}s")


def start_watchdog(log: Log) -> ResourceWatch:
    """Start the watchdog process; NO_WATCH (with a warning) when it cannot start.

    The run does not wait for it to be ready: what the run writes waits in the pipe, and the
    watchdog reads it all, up to the end-of-file, even when the run is killed first. A watchdog
    that dies instead makes the first write fail, which says so.
    """
    try:
        process = subprocess.Popen(
            watchdog_argv(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd="/",
            start_new_session=True,  # neither Ctrl-C nor a kill of our process group reaches it
        )
    except OSError as error:
        log.info(f"{PROG}: warning: could not start the watchdog ({error}); a hard kill may leave things behind")
        return NO_WATCH
    return WatchdogClient(process, log)


@contextlib.contextmanager
def watchdog(log: Log) -> Iterator[ResourceWatch]:
    """A watchdog for the duration of the block (started first, closed last)."""
    watch = start_watchdog(log)
    try:
        yield watch
    finally:
        if isinstance(watch, WatchdogClient):
            watch.close()


# ------------------------------------------------------------------------------------------------
# The watchdog's side
# ------------------------------------------------------------------------------------------------


@dataclass
class ServerLink:
    """How to reach the run's server, and the run's administrative session on it."""

    connect: dict[str, Any]
    backend: dict[str, Any]
    run_id: str

    def inside(self, folder: str) -> bool:
        """The server listens on a socket inside `folder` (a throwaway cluster of the run)."""
        host = str(self.connect.get("host") or "")
        return host == folder or host.startswith(folder.rstrip("/") + "/")


@dataclass
class Tracked:
    """What the run created and has not removed yet."""

    processes: dict[int, ProcessId] = field(default_factory=dict)
    clusters: dict[str, str] = field(default_factory=dict)  # folder -> bindir
    databases: set[str] = field(default_factory=set)
    folders: set[str] = field(default_factory=set)
    server: ServerLink | None = None
    done: bool = False

    def apply(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "process_started":
            process = ProcessId.from_json(message.get("process"))
            if process is not None:
                self.processes[process.pid] = process
        elif event == "process_ended" and message.get("pid") is not None:
            self.processes.pop(message["pid"], None)
        elif event == "cluster_created":
            self.clusters[message["folder"]] = message["bindir"]
        elif event == "cluster_removed":
            self.clusters.pop(message["folder"], None)
        elif event == "folder_created":
            self.folders.add(message["folder"])
        elif event == "folder_removed":
            self.folders.discard(message["folder"])
        elif event == "server_opened":
            self.server = ServerLink(message["connect"], message["backend"], message["run_id"])
        elif event == "database_created":
            self.databases.add(message["name"])
        elif event == "database_dropped":
            self.databases.discard(message["name"])
        elif event == "done":
            self.done = True

    def nothing_left(self) -> bool:
        return not (self.processes or self.clusters or self.databases or self.folders)

    def remove_all(self) -> list[str]:
        """Kill the run's children, drop its scratch databases, stop and remove its clusters;
        returns what was removed, in words."""
        removed = []
        for process in self.processes.values():
            kill_group(process)
        if self.processes:
            removed.append(f"{len(self.processes)} child process group(s)")
        if self.server is not None and not any(self.server.inside(folder) for folder in self.clusters):
            removed += drop_run_databases(self.server, self.databases, scan=not self.done)
        for folder, bindir in self.clusters.items():
            EphemeralCluster.abandoned_in(Path(folder), Path(bindir)).stop()
            removed.append(f"throwaway PostgreSQL in {folder}")
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(f"temporary folder {folder}")
        return removed


def connect(link: ServerLink) -> Any:
    driver = load_driver()
    try:
        connection = driver.connect(**link.connect)
    except driver.OperationalError:
        connection = driver.connect(**{**link.connect, "dbname": "postgres"})
    connection.autocommit = True
    return connection


def connect_waiting(link: ServerLink, wait_s: float) -> Any:
    """A connection to the run's server, tried with back-off for `wait_s` (a run that ended
    because the server was unreachable left its databases there: they go once it is back)."""
    for delay in [0.0, *backoff_delays(wait_s)]:
        time.sleep(delay)
        try:
            return connect(link)
        except Exception as error:  # noqa: BLE001 - any failure to connect is tried again
            last = error
    raise last


def end_run_session(cursor: Any, backend: dict[str, Any]) -> None:
    """End the run's administrative session (a CREATE DATABASE it was running is rolled back,
    and its lock released), and wait until it is gone."""
    query = "FROM pg_stat_activity WHERE pid = %s AND backend_start::text = %s"
    params = (backend["pid"], backend["started"])
    cursor.execute(f"SELECT pg_terminate_backend(pid) {query}", params)
    deadline = time.monotonic() + BACKEND_GONE_TIMEOUT_S
    while time.monotonic() < deadline:
        cursor.execute(f"SELECT count(*) {query}", params)
        if cursor.fetchone()[0] == 0:
            return
        time.sleep(0.1)


def drop_run_databases(link: ServerLink, listed: set[str], scan: bool) -> list[str]:
    """Drop the run's scratch databases: those listed and, after a kill (`scan`), every one
    named with the run's id (its names are unique to it: see server.Server.claim_run_id)."""
    own_prefix = f"{SCRATCH_PREFIX}{link.run_id}_"
    wait_s = server_wait_s(dict(os.environ))
    try:
        connection = connect_waiting(link, wait_s)
    except Exception as error:  # still unreachable: a later run's sweep drops them
        return [f"nothing on the server ({type(error).__name__}: cannot connect within {wait_s:g}s; a later "
                "run drops its scratch databases once the server is back)"]
    try:
        with connection.cursor() as cursor:
            end_run_session(cursor, link.backend)
            names = set(listed)
            if scan:
                cursor.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (own_prefix,))
                names |= {row[0] for row in cursor.fetchall()}
            dropped = []
            for name in sorted(n for n in names if n.startswith(SCRATCH_PREFIX)):
                with contextlib.suppress(Exception):
                    cursor.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
                    dropped.append(name)
    finally:
        connection.close()
    return [f"scratch database {name}" for name in dropped]


class Stop(Exception):
    """SIGTERM to the watchdog itself: clean up now instead of dying with the work undone."""


def stop_on_sigterm(signum: int, frame: object) -> None:
    raise Stop


def say(stream: TextIO, text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream.write(text + "\n")
        stream.flush()


def watch(lines: TextIO, tracked: Tracked) -> None:
    """Follow the run's messages until the pipe closes (or SIGTERM)."""
    with contextlib.suppress(Stop):
        for line in lines:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                tracked.apply(json.loads(line))


def main() -> None:
    """The watchdog process: follow the run, remove what it left."""
    for ignored in (signal.SIGINT, signal.SIGHUP):
        signal.signal(ignored, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    tracked = Tracked()
    watch(sys.stdin, tracked)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the cleanup itself is not interrupted
    if tracked.done and tracked.nothing_left():
        return
    removed = tracked.remove_all()
    if removed:
        say(sys.stderr, f"{PROG}: watchdog: the run ended without removing what it created; removed "
                        + ", ".join(removed))


if __name__ == "__main__":
    main()
