#!/usr/bin/env python3
"""Where the time of one scripts/test_migrations.py run goes, by phase (threads included).

    .venv/bin/python benchmarks/profile_tool.py [tool options...]

Imports the tool, wraps its phases with wall-clock and CPU accumulators, and runs its main() with
the given options (e.g. ``--app upstream``, ``--no-schema --no-data``). cProfile sees only the
main thread, while the tool tests apps in worker threads; these wrappers see every thread.
Printed per phase: calls, wall seconds summed over threads, and for manage.py steps the
command's wall time (start-up included).
"""

from __future__ import annotations

import collections
import functools
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import test_migrations as tm  # noqa: E402

TOTALS: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
LOCK = threading.Lock()


def timed(label_of):
    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                label = label_of(args) if callable(label_of) else label_of
                with LOCK:
                    TOTALS[label][0] += 1
                    TOTALS[label][1] += time.perf_counter() - started
        return wrapper
    return decorate


def step_label(args) -> str:
    command = list(args[1])
    if command[0] == "migrate":
        return "manage.py migrate (all)" if len(command) <= 3 else "manage.py migrate APP TARGET"
    return f"manage.py {command[0]}"


def main() -> int:
    tm.snapshot_schema = timed("snapshot_schema (4 per migration)")(tm.snapshot_schema)
    tm.fingerprint = timed("fingerprint (2 per migration)")(tm.fingerprint)
    tm.column_inventory = timed("column_inventory")(tm.column_inventory)
    tm.Seeder.seed = timed("Seeder.seed (2 per migration)")(tm.Seeder.seed)
    tm.ManagePy.run = timed(step_label)(tm.ManagePy.run)
    tm.WindowChain.applied_migrations = timed("applied_migrations")(tm.WindowChain.applied_migrations)
    tm.Server.create_database = timed("CREATE DATABASE")(tm.Server.create_database)
    tm.Server.drop_database = timed("DROP DATABASE")(tm.Server.drop_database)
    started = time.perf_counter()
    status = tm.main(sys.argv[1:] + ["-q"])
    total = time.perf_counter() - started
    print(f"\ntool run: {total:.2f}s wall, exit {status}")
    print(f"{'phase':40s} {'calls':>5s} {'wall s (sum over threads)':>26s}")
    for label, (calls, seconds) in sorted(TOTALS.items(), key=lambda item: -item[1][1]):
        print(f"{label:40s} {calls:5d} {seconds:26.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
