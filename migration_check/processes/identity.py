"""Which process is which: a pid together with the moment it started, so that a recycled pid is
never mistaken for the process that once had it, and killing what a run started.

Owns: `ProcessId` (pid + start time, from /proc on Linux), `alive`, `kill_pgid` (SIGKILL a
process group the caller still holds the leader of, e.g. an unreaped `Popen`), `kill_group` (a
process group the run started, only while its leader is the same process) and `kill_processes_naming` (every
process whose command line names a folder of the run, e.g. a server started on it).

The standard library only: the watchdog imports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def start_time(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, field 22 of /proc/PID/stat); None when the
    process does not exist or /proc cannot tell."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces or ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


@dataclass(frozen=True)
class ProcessId:
    """A process as it was when it was recorded: its pid and its start time (None without /proc)."""

    pid: int
    started: int | None

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        return cls(pid, start_time(pid))

    @classmethod
    def current(cls) -> ProcessId:
        return cls.of(os.getpid())

    def to_json(self) -> dict[str, int | None]:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_json(cls, data: object) -> ProcessId | None:
        if not isinstance(data, dict) or not isinstance(data.get("pid"), int) or data["pid"] <= 0:
            return None
        started = data.get("started")
        return cls(data["pid"], started if isinstance(started, int) else None)

    def alive(self) -> bool:
        """Still running and the same process (a pid reused since has another start time)."""
        if PROC.is_dir():
            now = start_time(self.pid)
            return now is not None and (self.started is None or now == self.started)
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def kill_pgid(pgid: int) -> None:
    """SIGKILL the process group `pgid`; one that is gone already is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def kill_group(process: ProcessId) -> None:
    """SIGKILL the process group led by `process` (the run starts every child in a session of
    its own), unless the leader is gone and its pid may belong to someone else by now (with
    /proc: a leader whose start time was not seen had already ended when it was recorded)."""
    if not process.alive() or (PROC.is_dir() and process.started is None):
        return
    kill_pgid(process.pid)


def processes_naming(folder: Path) -> list[int]:
    """Pids whose command line names `folder` or a path inside it (Linux; [] elsewhere)."""
    needle = str(folder).encode()
    found = []
    for entry in PROC.glob("[0-9]*") if PROC.is_dir() else ():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(word == needle or word.startswith(needle + b"/") for word in words):
            found.append(int(entry.name))
    return [pid for pid in found if pid != os.getpid()]


def kill_processes_naming(folder: Path) -> list[int]:
    """SIGKILL every process started on `folder` (a server whose start was cut short, initdb);
    returns their pids."""
    pids = processes_naming(folder)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return pids
