"""Database slots: a chain's database takes a name whose step server is already running.

In fork isolation every scratch database name gets a step server (processes/step_server.py):
the project's `manage.py shell` started with that DATABASE_URL on the first step there, Django
started once, a child forked per step. Its start is 0.2 s of CPU on a small project and more on
a large one (the real-apps survey project: about 0.6 s). The server itself holds no connection
(each forked step opens its own, and has exited before the chain goes on), so it does not matter
to it which database has its name while it waits. So the run keeps a few names, its slots: a
chain's database is created under a free slot's name; once the chain is done and that database
dropped, the next chain's database is created under the same name and served by the same
server. A server is started per slot used instead of per chain.

What a step sees does not change. Each step is still `manage.py ARGS` forked from a server
started with the DATABASE_URL the step uses, on a database that is the chain's own, created and
built for it as before. The server starts on the first step of the slot's first database, as it
did for every database: on that database, just created. A slot is bound to how its first
database started (a clone of a template, or empty) and only serves databases that start the same
way, so whatever the project's start-up read from the database (an `AppConfig.ready()` that
queries, which Django advises against) it read from a state with the same tables (templates of
the tree differ only in which other apps' newest migrations they hold).

There are as many slots as chains can run side by side (the run's workers), at most one per
chain. A database wanted while no slot of its kind is free (a chain's second database: a blocked
migration's own, the squash's replaced path, a rebuild past a failure) gets a new name and a
server of its own, as every database did before. `TM_SERVER_PER_DATABASE=1` in the tool's
environment turns the slots off (the tests compare both ways); `--isolation process` has none
(no servers).

Owns: `Slots`, `slot_count`.

Uses: server (names), steps (stopping a slot's server).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..postgres.server import Server
from ..processes.steps import StepRunner

SERVER_PER_DATABASE_ENV = "TM_SERVER_PER_DATABASE"
SLOT_PURPOSE = "worker"
EMPTY_START = "empty"  # the kind of a slot whose databases start empty
CLONE_START = "clone"  # the kind of a slot whose databases are clones of a template


def slot_count(chains: int, workers: int, isolation: str, environ: Mapping[str, str]) -> int:
    """How many slots a run of `chains` chains on `workers` threads keeps (0: none)."""
    if isolation != "fork" or environ.get(SERVER_PER_DATABASE_ENV, "") not in ("", "0"):
        return 0
    return min(chains, workers)


class Slots:
    """The run's slot names, which are free, and how each one's databases start. Safe to use
    from several threads."""

    def __init__(self, server: Server, runner: StepRunner, count: int) -> None:
        self.server = server
        self.runner = runner
        self.names = [server.new_database_name(f"{SLOT_PURPOSE}{number}") for number in range(1, count + 1)]
        self._free = list(self.names)  # the first free one is taken first
        self._kind: dict[str, str] = {}  # name -> how its databases start (bound by the first)
        self._lock = threading.Lock()

    def take(self, kind: str) -> str | None:
        """A free slot for a database that starts as `kind` (CLONE_START or EMPTY_START),
        taken; None when none is free. A slot never used is taken before one used again, so
        that a run of N chains of one kind starts exactly min(N, slots) servers, whatever order
        its chains come and go in (the benchmarks count them)."""
        with self._lock:
            unused = [name for name in self._free if name not in self._kind]
            reusable = [name for name in self._free if self._kind.get(name) == kind]
            if not unused and not reusable:
                return None
            name = (unused or reusable)[0]
            self._kind[name] = kind
            self._free.remove(name)
            return name

    def give_back(self, name: str) -> None:
        """`name` has no database any more: the next database of its kind may have the name."""
        with self._lock:
            if name in self.names and name not in self._free:
                self._free.append(name)
                self._free.sort(key=self.names.index)

    def owns(self, name: str) -> bool:
        return name in self.names

    def close(self) -> None:
        """Stop the slots' servers (their databases are dropped by then)."""
        for name in self.names:
            self.runner.release(self.server.url_for(name))
