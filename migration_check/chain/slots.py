"""Database slots: a chain's database takes a name whose step server is already running.

In fork isolation every scratch database gets a step server (processes/step_server.py): the
project's `manage.py shell` with that database's DATABASE_URL, Django started once, a child
forked per step. Its start is 0.2 s of CPU on a small project and more on a large one (the
real-apps survey project: about 0.6 s), once per chain. The server itself connects to nothing
(each forked step connects, and is gone before the chain goes on), so it does not matter to it
which database has its name while it waits. So the run keeps a few names, its slots: a chain's
database is created under a free slot's name; once the chain is done and that database dropped,
the next chain's database is created under the same name and served by the same server. A
server is started per slot instead of per chain, and the slots' servers all start at once, while
the project checks and the template's build run (a server waits for its database only when its
first step comes).

Nothing a step sees changes: each step is still `manage.py ARGS` forked from a server whose
Django was started with the DATABASE_URL the step uses, and that database is the chain's own,
created (cloned or empty) and built for it as before. Only its name is no longer new.

There are as many slots as chains can run side by side (the run's workers), at most one per
chain: the run starts exactly that many servers for its chains, whatever order they come in. A
database wanted while every slot is taken (a chain's second database: a blocked migration's own,
the squash's replaced path, a rebuild past a failure) gets a new name and a server of its own, as
every database did before. `TM_SERVER_PER_DATABASE=1` in the tool's environment turns the slots
off (the tests compare both ways).

Owns: `Slots`, `slot_count`.

Uses: server (names, databases), steps (starting a server ahead of its first step).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..postgres.server import Server
from ..processes.steps import StepRunner

SERVER_PER_DATABASE_ENV = "TM_SERVER_PER_DATABASE"
SLOT_PURPOSE = "worker"


def slot_count(chains: int, workers: int, environ: Mapping[str, str]) -> int:
    """How many slots a run of `chains` chains on `workers` threads keeps (0: none)."""
    if environ.get(SERVER_PER_DATABASE_ENV, "") not in ("", "0"):
        return 0
    return min(chains, workers)


class Slots:
    """The run's slot names, which of them are free, and their servers. Safe to use from
    several threads."""

    def __init__(self, server: Server, runner: StepRunner, count: int) -> None:
        self.server = server
        self.runner = runner
        self.names = [server.new_database_name(f"{SLOT_PURPOSE}{number}") for number in range(1, count + 1)]
        self._free = list(reversed(self.names))  # taken from the end: the first slot first
        self._lock = threading.Lock()
        self._starting: list[threading.Thread] = []

    def start_servers(self) -> None:
        """Start every slot's step server now, side by side (fork isolation only); each is
        waited for by the first step on its database."""
        urls = [self.server.url_for(name) for name in self.names]
        self._starting = [threading.Thread(target=self.runner.start_server, args=(url,), daemon=True,
                                           name=f"slot-server-{number}") for number, url in enumerate(urls, 1)]
        for thread in self._starting:
            thread.start()

    def take(self) -> str | None:
        """A free slot's name, taken; None when every slot is in use."""
        with self._lock:
            return self._free.pop() if self._free else None

    def give_back(self, name: str) -> None:
        """`name`'s database is dropped: the next database may have the name."""
        with self._lock:
            if name in self.names and name not in self._free:
                self._free.append(name)

    def owns(self, name: str) -> bool:
        return name in self.names

    def close(self) -> None:
        """Stop the slots' servers (their databases are dropped by then)."""
        for thread in self._starting:
            thread.join()
        for name in self.names:
            self.runner.release(self.server.url_for(name))
