"""What a run tells its watchdog about the resources it creates and removes.

Owns: `ResourceWatch`, the interface through which the step runner, the throwaway cluster and
the server report each child process, cluster folder, temporary folder, server connection and
scratch database
as it comes and goes. This base class does nothing (scripts and tests that need no watchdog use
it as it is); `watchdog.WatchdogClient` passes every call on to the watchdog process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .identity import ProcessId


class ResourceWatch:
    """Told of every resource a run creates before it exists, and of its removal after it is
    gone, so that whatever is still listed when the run dies is exactly what it left."""

    @property
    def identity(self) -> ProcessId | None:
        """The watchdog process (recorded in a cluster folder: the folder is not stale while it
        lives, even when the run is gone), or None."""
        return None

    def process_started(self, pid: int) -> None:
        """A child in a process group of its own (killed with its group if the run dies)."""

    def process_ended(self, pid: int) -> None:
        pass

    def cluster_created(self, folder: Path, bindir: Path) -> None:
        pass

    def cluster_removed(self, folder: Path) -> None:
        pass

    def folder_created(self, folder: Path) -> None:
        """A temporary folder of the run's own (the step servers' output files)."""

    def folder_removed(self, folder: Path) -> None:
        pass

    def server_opened(self, connect: dict[str, Any], backend: dict[str, Any], run_id: str) -> None:
        """The server's psycopg2 connection arguments (password included: they go through the
        pipe only), the administrative session (`pid`, `started`) and the run id in the names."""

    def database_created(self, name: str) -> None:
        pass

    def database_dropped(self, name: str) -> None:
        pass


NO_WATCH = ResourceWatch()
